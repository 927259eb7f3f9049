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

    /// SIMCom SIM7600 (the SIM800 family has a table of its own: `sim800`).
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
        var u = SocketURCTable()
        u.add(SocketURC("RECV FROM:", .sender, sender: 0))  // RECV FROM:<ip>:<port>, before the data (AT+CIPSRIP=1)
        u.add(SocketURC("+RECEIVE,", .data, id: 0))         // +RECEIVE,<link>,<len> (multi-socket push)
        u.add(SocketURC("+IPD", .data))                     // +IPD<len>: no link number, the lowest open link
        u.add(SocketURC("+CIPSEND:", .ignore))
        u.add(SocketURC("+CIPCLOSE:", .ignore))
        u.add(SocketURC("+NETOPEN:", .ignore))
        u.add(SocketURC("+CIPOPEN:", .ignore))
        u.add(SocketURC("+CIPEVENT:", .bearerDown))         // +CIPEVENT: NETWORK CLOSED UNEXPECTEDLY
        u.add(SocketURC("+IPCLOSE:", .closed, id: 0))       // +IPCLOSE: <link>,<reason>
        let sockets = SocketCommands(
            style: .simcomCIP, netOpen: "AT+NETOPEN", netOpenURC: "+NETOPEN:", netClose: "AT+NETCLOSE",
            open: "AT+CIPOPEN=", openURC: "+CIPOPEN:", send: "AT+CIPSEND=", sendPrompt: 0x3E, promptDelayMs: 0,
            read: "", readAnswer: "", close: "AT+CIPCLOSE=", maxPayload: 1500, maxSockets: 10, hexReceive: false,
            urcs: u)
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
        var u = SocketURCTable()
        u.add(SocketURC("+QIOPEN:", .ignore))
        u.add(SocketURC("+QIURC: \"pdpdeact\"", .bearerDown))
        u.add(SocketURC("+QIURC: \"recv\"", .readable, id: 1))    // +QIURC: "recv",<id>: field 0 is empty
        u.add(SocketURC("+QIURC: \"closed\"", .closed, id: 1))    // +QIURC: "closed",<id>
        var sockets = SocketCommands(
            style: .quectelQI, netOpen: "AT+QIACT=1", netOpenURC: "", netClose: "AT+QIDEACT=1",
            open: "AT+QIOPEN=1,", openURC: "+QIOPEN:", send: "AT+QISEND=", sendPrompt: 0x3E, promptDelayMs: 0,
            read: "AT+QIRD=", readAnswer: "+QIRD:", close: "AT+QICLOSE=", maxPayload: 1460, maxSockets: 12,
            hexReceive: false, urcs: u)
        sockets.contextAPN = "AT+QICSGP="
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
        var u = SocketURCTable()
        u.add(SocketURC("+UUSORF:", .readable, id: 0))  // +UUSORF: <socket>,<length>
        u.add(SocketURC("+UUSOCL:", .closed, id: 0))    // +UUSOCL: <socket>
        let sockets = SocketCommands(
            style: .ubloxUSO, netOpen: "AT+CGACT=1,1", netOpenURC: "", netClose: "AT+CGACT=0,1",
            open: "AT+USOCR=17", openURC: "", send: "AT+USOST=", sendPrompt: 0x40, promptDelayMs: 50,
            read: "AT+USORF=", readAnswer: "+USORF:", close: "AT+USOCL=", maxPayload: 1024, maxSockets: 7,
            hexReceive: true, urcs: u)
        return ModemDialect(vendor: .ublox, name: "ublox", rules: r, setup: setup, setupCount: 1,
                            smsFullURC: "", asksCEREG: true, sockets: sockets, smsSendTimeoutMs: 180_000,
                            pinCounter: .upincnt)
    }
}

// SIMCom SIM800 family. Sources: SIM800 Series AT Command Manual V1.09 (2015-08-03), chapter 8 "AT Commands for
// TCPIP Application Toolkit": §8.2.1 +CIPMUX, §8.2.2 +CIPSTART (`<n>,CONNECT OK` / `<n>,CONNECT FAIL` /
// `<n>,ALREADY CONNECT`), §8.2.3 +CIPSEND (`<n>,SEND OK` / `<n>,SEND FAIL`), §8.2.6 +CIPCLOSE (`<id>,CLOSE OK`),
// §8.2.7 +CIPSHUT (`SHUT OK`; URC `+PDP: DEACT`), §8.2.8 +CLPORT, §8.2.9 +CSTT, §8.2.10 +CIICR, §8.2.11 +CIFSR
// (the bare address, no OK), §8.2.15 +CIPHEAD (`+RECEIVE,<n>,<len>:` in multi-IP mode), §8.2.20 +CIPSRIP
// (`+RECEIVE,<n>,<len>,<ip>:<port>` in multi-IP mode), §8.2.25 +CIPUDPMODE (mode 1 extended, 2 set the address
// to send to), §8.2.26 +CIPRXGET. Modules print a space after the connection number (`0, CONNECT OK`), which the
// manual's tables leave out; numbered rows take either. The V1.09 text of §8.2.1-§8.2.3 was read directly; the
// shapes of the other sections were read in the same toolkit chapter of the SIM7000 Series AT Command Manual V1.06
// (§8.2.6-§8.2.11, §8.2.16 CIPHEAD, §8.2.21 CIPSRIP, §8.2.26 CIPUDPMODE, §8.2.27 CIPRXGET there: it adds AT+CIFSREX).

extension ModemDialect {
    /// SIMCom SIM800 / SIM808 / SIM868 / SIM900 (2G; sockets with AT+CIPSTART in multi-connection mode).
    public static var sim800: ModemDialect { cipstartToolkit(name: "sim800", asksCEREG: false) }

    /// SIMCom SIM7000 (LTE Cat-M/NB-IoT): the same TCPIP toolkit (SIM7000 Series AT Command Manual V1.06 ch. 8, read
    /// for the SIM800 table above), not the SIM7500/SIM7600 NETOPEN/CIPOPEN set; EPS registration URCs too.
    public static var sim7000: ModemDialect { cipstartToolkit(name: "sim7000", asksCEREG: true) }

    static func cipstartToolkit(name: StaticString, asksCEREG: Bool) -> ModemDialect {
        var r = standardRules()
        r.add(ATLineRule("+RECEIVE,", body: .rawBytes(lengthField: 1)))
        r.add(ATLineRule("RECV FROM:"))
        r.add(ATLineRule("CONNECT", numbered: true))           // <n>, CONNECT OK / <n>, CONNECT FAIL
        r.add(ATLineRule("ALREADY CONNECT", numbered: true))
        r.add(ATLineRule("CLOSED", numbered: true))            // <n>, CLOSED: the remote side or the network
        r.add(ATLineRule("+PDP: DEACT"))
        r.add(ATLineRule(final: "SEND OK", numbered: true, .ok))
        r.add(ATLineRule(final: "SEND FAIL", numbered: true, .failed(.sendFailed)))
        r.add(ATLineRule(final: "CLOSE OK", numbered: true, .ok))
        r.add(ATLineRule(final: "SHUT OK", .ok))
        var setup = InlineArray<4, StaticString>(repeating: "")
        setup[0] = "AT+CIPMUX=1"   // multi-connection: every socket line names its connection (IP INITIAL only)
        setup[1] = "AT+CIPSRIP=1"  // the sender in +RECEIVE
        setup[2] = "AT+CIPHEAD=1"  // the +RECEIVE header
        var u = SocketURCTable()
        u.add(SocketURC("+RECEIVE,", .data, id: 0, sender: 2))  // +RECEIVE,<n>,<len>[,<ip>:<port>]
        u.add(SocketURC("RECV FROM:", .sender, sender: 0))      // single-connection form of the sender
        u.add(SocketURC("CLOSED", .closed, id: 0, numbered: true))
        u.add(SocketURC("+PDP: DEACT", .bearerDown))
        u.add(SocketURC("CONNECT", .ignore, numbered: true))    // a late open result; `openUDP` waits for its own
        u.add(SocketURC("ALREADY CONNECT", .ignore, numbered: true))
        return ModemDialect(vendor: .simcom, name: name, rules: r, setup: setup, setupCount: 3, smsFullURC: "",
                            asksCEREG: asksCEREG, sockets: cipstartSockets(urcs: u, single: false), smsSendTimeoutMs: 60_000,
                            pinCounter: .spic)  // V1.09 §6.2.3: +SPIC: <pin1>,<pin2>,<puk1>,<puk2>; PIN1 is field 0
    }
}

extension ModemDialect {
    /// The SIM800 family in single-connection mode (AT+CIPMUX=0, chosen by `dialect = sim800-single`; detection
    /// picks `sim800`): one connection, no connection numbers, and pushed data on the line itself:
    /// `RECV FROM:<ip>:<port>` (AT+CIPSRIP=1) then `+IPD,<len>:<data>` (AT+CIPHEAD=1, §8.2.15), split by length.
    /// Sends are `AT+CIPSEND=<len>` (`SEND OK`), the destination set with `AT+CIPUDPMODE=2,<ip>,<port>`; close is
    /// `AT+CIPCLOSE` (`CLOSE OK`); a network close is `CLOSED`.
    public static var sim800Single: ModemDialect {
        var r = standardRules()
        r.add(ATLineRule("+IPD,", body: .inlineBytes(lengthField: 0)))
        r.add(ATLineRule("RECV FROM:"))
        r.add(ATLineRule("CONNECT"))  // CONNECT OK / CONNECT FAIL
        r.add(ATLineRule("ALREADY CONNECT"))
        r.add(ATLineRule("CLOSED"))
        r.add(ATLineRule("+PDP: DEACT"))
        r.add(ATLineRule(final: "CLOSE OK", .ok))
        r.add(ATLineRule(final: "SHUT OK", .ok))
        var setup = InlineArray<4, StaticString>(repeating: "")
        setup[0] = "AT+CIPMUX=0"
        setup[1] = "AT+CIPSRIP=1"  // RECV FROM:<ip>:<port> before the data
        setup[2] = "AT+CIPHEAD=1"  // +IPD,<len>: before the data: without it the data could not be framed
        var u = SocketURCTable()
        u.add(SocketURC("RECV FROM:", .sender, sender: 0))
        u.add(SocketURC("+IPD,", .data))                        // the one connection
        u.add(SocketURC("CLOSED", .closed))                      // the one connection
        u.add(SocketURC("+PDP: DEACT", .bearerDown))
        u.add(SocketURC("CONNECT", .ignore))                    // a late open result; `openUDP` waits for its own
        u.add(SocketURC("ALREADY CONNECT", .ignore))
        return ModemDialect(vendor: .simcom, name: "sim800-single", rules: r, setup: setup, setupCount: 3,
                            smsFullURC: "", asksCEREG: false, sockets: cipstartSockets(urcs: u, single: true),
                            smsSendTimeoutMs: 60_000,
                            pinCounter: .spic)
    }

    /// The TCPIP toolkit's socket commands (SIM800 manual V1.09 ch. 8): six numbered connections (AT+CIPMUX=1),
    /// or one (AT+CIPMUX=0), whose close takes no number.
    static func cipstartSockets(urcs: SocketURCTable, single: Bool) -> SocketCommands {
        var sockets = SocketCommands(
            style: .simcomCIPSTART, netOpen: "AT+CIICR", netOpenURC: "", netClose: "AT+CIPSHUT",
            open: "AT+CIPSTART=", openURC: "CONNECT", send: "AT+CIPSEND=", sendPrompt: 0x3E, promptDelayMs: 0,
            read: "", readAnswer: "", close: single ? "AT+CIPCLOSE" : "AT+CIPCLOSE=", maxPayload: 1460,
            maxSockets: single ? 1 : 6, hexReceive: false, urcs: urcs)
        sockets.netReset = "AT+CIPSHUT"
        sockets.netPrepare = single ? "AT+CIPMUX=0" : "AT+CIPMUX=1"
        sockets.netAPN = "AT+CSTT="
        sockets.netAddress = "AT+CIFSR"
        sockets.openOK = "CONNECT OK"
        sockets.openTaken = "ALREADY CONNECT"
        sockets.bind = "AT+CLPORT="
        sockets.aim = "AT+CIPUDPMODE="
        sockets.singleConnection = single
        return sockets
    }
}
