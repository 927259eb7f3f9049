// The dialect instances. Facts from the vendors' AT manuals: SIMCom SIM7500/SIM7600 Series AT Command
// Manual and TCP/IP application note; Quectel BG96 TCP/IP AT Commands Manual and EC25 AT manual;
// u-blox SARA-R4 / SARA-U2 AT Commands Manual (UBX-17003787, UBX-13002752); 3GPP TS 27.007 / 27.005.

extension ModemDialect {
    /// URCs every 27.007 / 27.005 module may send.
    static func standardRules() -> ATLineRules {
        var r = ATLineRules()
        r.add(ATLineRule("+CREG:"))
        r.add(ATLineRule("+CGREG:"))
        r.add(ATLineRule("+CEREG:"))
        r.add(ATLineRule("+CMTI:"))
        r.add(ATLineRule("+CMT:", body: .nextLine))  // TS 27.005 §3.4.1, PDU mode: header then PDU
        r.add(ATLineRule("+CDSI:"))
        r.add(ATLineRule("+CDS:", body: .nextLine))
        r.add(ATLineRule("+CBM:", body: .nextLine))
        r.add(ATLineRule("RING"))
        r.add(ATLineRule("+CRING:"))
        r.add(ATLineRule("+CLIP:"))
        r.add(ATLineRule("+CUSD:"))
        r.add(ATLineRule("+CIEV:"))
        r.add(ATLineRule("+CPIN:"))
        r.add(ATLineRule("+CFUN:"))
        r.add(ATLineRule("Call Ready"))
        r.add(ATLineRule("PB DONE"))
        return r
    }

    public static var generic: ModemDialect {
        ModemDialect(vendor: .generic, name: "generic", rules: standardRules(),
                     setup: InlineArray(repeating: ""), setupCount: 0, smsFullURC: "",
                     asksCEREG: true, sockets: nil, smsSendTimeoutMs: 60_000, pinCounter: .cpinr)
    }

    /// SIMCom SIM7600 (and SIM800 for everything but sockets, which use CIPSTART there).
    public static var simcom: ModemDialect {
        var r = standardRules()
        r.add(ATLineRule("+SMSFULL"))
        r.add(ATLineRule("RECV FROM:"))
        r.add(ATLineRule("+IPD", body: .rawBytes(lengthField: 0)))
        r.add(ATLineRule("+RECEIVE,", body: .rawBytes(lengthField: 1)))
        r.add(ATLineRule("+NETOPEN:"))
        r.add(ATLineRule("+CIPOPEN:"))
        r.add(ATLineRule("+CIPSEND:"))
        r.add(ATLineRule("+IPCLOSE:"))
        r.add(ATLineRule("+CIPCLOSE:"))
        r.add(ATLineRule("+CIPEVENT:"))
        var setup = InlineArray<4, StaticString>(repeating: "")
        setup[0] = "AT+CIPSRIP=1"  // show RECV FROM before data
        setup[1] = "AT+CIPHEAD=1"  // +IPD<len> header
        let sockets = SocketCommands(
            style: .simcomCIP, netOpen: "AT+NETOPEN", netOpenURC: "+NETOPEN:", netClose: "AT+NETCLOSE",
            open: "AT+CIPOPEN=", openURC: "+CIPOPEN:", send: "AT+CIPSEND=", sendPrompt: 0x3E, promptDelayMs: 0,
            receiveURC: "+IPD", read: "", readAnswer: "", close: "AT+CIPCLOSE=", closedURC: "+IPCLOSE:",
            maxPayload: 1500, maxSockets: 10, hexReceive: false)
        return ModemDialect(vendor: .simcom, name: "simcom", rules: r, setup: setup, setupCount: 2,
                            smsFullURC: "+SMSFULL", asksCEREG: true, sockets: sockets, smsSendTimeoutMs: 60_000,
                            pinCounter: .spic)
    }

    /// Quectel BG96 / EG25 (M66 shares the SMS side; its sockets are the older QIOPEN form).
    public static var quectel: ModemDialect {
        var r = standardRules()
        r.add(ATLineRule("+QIND:"))
        r.add(ATLineRule("+QIOPEN:"))
        r.add(ATLineRule("+QIURC:"))
        r.add(ATLineRule("+QIRD:", unsolicited: false, body: .rawBytes(lengthField: 0)))
        r.add(ATLineRule("POWERED DOWN"))
        var setup = InlineArray<4, StaticString>(repeating: "")
        setup[0] = "AT+QINDCFG=\"smsfull\",1"  // report full SMS storage as +QIND: "smsfull",<mem>
        let sockets = SocketCommands(
            style: .quectelQI, netOpen: "AT+QIACT=1", netOpenURC: "", netClose: "AT+QIDEACT=1",
            open: "AT+QIOPEN=1,", openURC: "+QIOPEN:", send: "AT+QISEND=", sendPrompt: 0x3E, promptDelayMs: 0,
            receiveURC: "+QIURC: \"recv\"", read: "AT+QIRD=", readAnswer: "+QIRD:", close: "AT+QICLOSE=",
            closedURC: "+QIURC: \"closed\"", maxPayload: 1460, maxSockets: 12, hexReceive: false)
        return ModemDialect(vendor: .quectel, name: "quectel", rules: r, setup: setup, setupCount: 1,
                            smsFullURC: "+QIND: \"smsfull\"", asksCEREG: true, sockets: sockets,
                            smsSendTimeoutMs: 120_000, pinCounter: .qpinc)
    }

    /// u-blox SARA-R4 / SARA-U2.
    public static var ublox: ModemDialect {
        var r = standardRules()
        r.add(ATLineRule("+UUSORF:"))
        r.add(ATLineRule("+UUSORD:"))
        r.add(ATLineRule("+UUSOCL:"))
        r.add(ATLineRule("+UUPSDA:"))
        r.add(ATLineRule("+UUPSDD:"))
        var setup = InlineArray<4, StaticString>(repeating: "")
        setup[0] = "AT+UDCONF=1,1"  // hex mode for +USORF; the binary @ syntax of +USOST ignores it
        let sockets = SocketCommands(
            style: .ubloxUSO, netOpen: "AT+CGACT=1,1", netOpenURC: "", netClose: "AT+CGACT=0,1",
            open: "AT+USOCR=17", openURC: "", send: "AT+USOST=", sendPrompt: 0x40, promptDelayMs: 50,
            receiveURC: "+UUSORF:", read: "AT+USORF=", readAnswer: "+USORF:", close: "AT+USOCL=",
            closedURC: "+UUSOCL:", maxPayload: 1024, maxSockets: 7, hexReceive: true)
        return ModemDialect(vendor: .ublox, name: "ublox", rules: r, setup: setup, setupCount: 1,
                            smsFullURC: "", asksCEREG: true, sockets: sockets, smsSendTimeoutMs: 180_000,
                            pinCounter: .upincnt)
    }
}
