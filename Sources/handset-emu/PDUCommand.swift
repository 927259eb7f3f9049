import ArgumentParser
import BearerDriver
import Foundation

/// `handset-emu pdu ...`: the SMS PDU codec on the command line, for bench testers and interop checks.
/// Output goes to stdout, one item per line; malformed input exits non-zero with a message on stderr.
struct PDUCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pdu",
        abstract: "Encode and decode SMS PDUs (3GPP TS 23.040) as AT+CMGS sends and AT+CMGR / +CMT show them.",
        discussion: """
            PDUs are hex, with the SMSC field first, exactly as the module takes and prints them in PDU mode \
            (AT+CMGF=0, TS 27.005).
            """,
        subcommands: [Encode.self, Decode.self])

    static func fail(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        return ExitCode.failure
    }

    static func describe(_ e: SMSPDUError) -> String {
        switch e {
        case .badHex: "not hex (odd number of digits or a non-hex character)"
        case .truncated: "truncated: the PDU ends inside a field it announces"
        case .unsupportedMessageType: "unsupported message type (TP-MTI 3 or SMS-COMMAND)"
        case .badAddress: "bad address: more than 20 digits, or an SMSC field over 11 octets"
        case .badUserDataHeader: "bad user data header: UDHL or an information element runs past its end"
        case .userDataTooLong: "user data too long: TP-UDL above 140 octets / 160 septets"
        case .bufferTooSmall: "PDU too long (more than \(SMSPDU.maxOctets) octets)"
        case .badParameter: "bad parameter"
        }
    }
}

extension PDUCommand {
    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encode binary data as SMS-SUBMIT parts (8-bit data, DCS 0x04).",
            discussion: """
                Prints one line per part: SMSC field 00 followed by the TPDU, uppercase hex, exactly what to send \
                after the AT+CMGS=<length> prompt. Data longer than one part (140 octets of user data, UDH \
                included) is split, with a concatenation IE in every part. Ports and references up to 255 use \
                the 8-bit IEs (0x04, 0x00), larger ones the 16-bit IEs (0x05, 0x08).

                Examples:
                  handset-emu pdu encode --to +15550100000 --port 16400 --data C0FFEE
                  handset-emu pdu encode --to +15550100000 --data C0FFEE --cmgs
                """)

        @Option(help: "Destination number: +<digits> (international) or <digits> (unknown type), at most 20 digits.")
        var to: String

        @Option(help: "Destination application port; adds a port addressing IE (TS 23.040 §9.2.3.24.3/4).")
        var port: UInt16?

        @Option(name: .customLong("src-port"), help: "Source application port (default 0; needs --port).")
        var srcPort: UInt16?

        @Option(help: "Concatenation reference, 0-65535; the same for every part of one message.")
        var ref: UInt16 = 0

        @Option(help: "The data to send, as hex.")
        var data: String

        @Flag(name: .customLong("wide-ports"), help: "Always use 16-bit port addressing (IEI 0x05).")
        var widePorts = false

        @Flag(name: .customLong("wide-ref"), help: "Always use a 16-bit concatenation reference (IEI 0x08).")
        var wideRef = false

        @Flag(name: .customLong("status-report"), help: "Ask for a status report (TP-SRR).")
        var statusReport = false

        @Flag(name: .customLong("cmgs"), help: "Print the AT+CMGS=<length> line before each part.")
        var cmgs = false

        func validate() throws {
            if srcPort != nil && port == nil { throw ValidationError("--src-port needs --port.") }
        }

        func run() throws {
            let ascii = Array(data.utf8)
            var bytes = [UInt8](repeating: 0, count: ascii.count / 2 + 1)
            let hex = ascii.withUnsafeBytes { src in
                bytes.withUnsafeMutableBytes { dst in Result { () throws(SMSPDUError) in try SMSHex.decode(src, into: dst) } }
            }
            guard case .success(let n) = hex else { throw PDUCommand.fail("--data is not hex") }
            bytes.removeSubrange(n...)

            let dest = Array(to.utf8).withUnsafeBytes { raw in
                Result { () throws(SMSPDUError) in try SMSAddress(number: raw) }
            }
            guard case .success(let destination) = dest else {
                throw PDUCommand.fail("--to must be +<digits> or <digits>, 1 to 20 digits")
            }
            var o = SMSSubmitOptions()
            o.destinationPort = port
            o.sourcePort = srcPort ?? 0
            o.widePorts = widePorts
            o.reference = ref
            o.wideReference = wideRef
            o.requestStatusReport = statusReport
            guard let parts = SMSPDU.submitPartCount(dataCount: bytes.count, options: o) else {
                throw PDUCommand.fail("\(bytes.count) octets need more than 255 parts")
            }
            for i in 0..<parts {
                var pdu = [UInt8](repeating: 0, count: SMSPDU.maxOctets)
                let r = bytes.withUnsafeBytes { src in
                    pdu.withUnsafeMutableBytes { dst in
                        Result { () throws(SMSPDUError) in
                            try SMSPDU.encodeSubmit(to: destination, data: src, part: i, options: o, into: dst)
                        }
                    }
                }
                let (octets, tpduLength): (Int, Int)
                switch r {
                case .success(let v): (octets, tpduLength) = v
                case .failure(let e): throw PDUCommand.fail(PDUCommand.describe(e))
                }
                if cmgs { print("AT+CMGS=\(tpduLength)") }
                print(hexString(pdu[0..<octets], uppercase: true))
            }
        }
    }

    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode one PDU (an SMS-DELIVER as +CMGR / +CMT show it) into key: value lines.",
            discussion: """
                Keys: type, smsc, from (to for SMS-SUBMIT), pid, dcs, alphabet, scts, port-dst, port-src, \
                concat-ref, concat-total, concat-seq, udh-skipped, then data (hex, for 8-bit data) or text \
                (UTF-8; backslash, CR and LF escaped as \\\\, \\r, \\n). Absent fields print as -. SMS-SUBMIT and \
                SMS-STATUS-REPORT are decoded too. User data shorter than TP-UDL is an error (8-bit data always; \
                text unless --lenient).

                Example (python-gsmmodem's Test2 SMS-DELIVER, with an empty SMSC field):
                  handset-emu pdu decode 00040B917228214365F700003130805120618005D4F29C2E03
                """)

        @Argument(help: "The PDU as hex, SMSC field first.")
        var hex: String

        @Flag(name: .customLong("no-smsc"), help: "The PDU has no SMSC field (some modems' +CDS).")
        var noSMSC = false

        @Flag(help: "Text whose user data is shorter than TP-UDL: print what is there (with a clipped: line) and exit 0.")
        var lenient = false

        func run() throws {
            let r = Array(hex.utf8).withUnsafeBytes { raw in
                Result { () throws(SMSPDUError) in try SMSPDU.decode(hex: raw, smscPresent: !noSMSC) }
            }
            let m: SMSMessage
            switch r {
            case .success(let v): m = v
            case .failure(let e): throw PDUCommand.fail("malformed PDU: \(PDUCommand.describe(e))")
            }
            if m.clipped && !lenient {
                let unit = m.alphabet == .gsm7 ? "septets" : "octets"
                throw PDUCommand.fail("malformed PDU: user data shorter than TP-UDL: TP-UDL announces \(m.announcedUserData) "
                                      + "\(unit), the PDU carries \(m.carriedUserData) (--lenient prints what is there)")
            }
            for (key, value) in Self.lines(m) { print("\(key): \(value)") }
        }

        static func lines(_ m: SMSMessage) -> [(String, String)] {
            var out: [(String, String)] = []
            let type = switch m.type {
            case .deliver: "SMS-DELIVER"
            case .submit: "SMS-SUBMIT"
            case .statusReport: "SMS-STATUS-REPORT"
            }
            out.append(("type", type))
            out.append(("smsc", m.smsc.isEmpty ? "-" : address(m.smsc)))
            out.append((m.type == .submit ? "to" : "from", address(m.address)))
            if m.type != .deliver { out.append(("message-ref", String(m.messageReference))) }
            if m.type == .statusReport {
                out.append(("scts", timestamp(m.timestamp)))
                out.append(("discharge", timestamp(m.dischargeTime)))
                out.append(("status", String(m.status)))
                return out
            }
            out.append(("pid", hexString([m.protocolIdentifier], uppercase: true)))
            out.append(("dcs", hexString([m.dataCoding], uppercase: true)))
            let alphabet = switch m.alphabet {
            case .gsm7: "gsm7"
            case .data8: "8bit"
            case .ucs2: "ucs2"
            }
            out.append(("alphabet", alphabet))
            if m.type == .deliver { out.append(("scts", timestamp(m.timestamp))) }
            let p = m.header.ports
            out.append(("port-dst", p.map { String($0.destination) } ?? "-"))
            out.append(("port-src", p.map { String($0.source) } ?? "-"))
            let c = m.header.concat
            out.append(("concat-ref", c.map { String($0.reference) } ?? "-"))
            out.append(("concat-total", c.map { String($0.total) } ?? "-"))
            out.append(("concat-seq", c.map { String($0.sequence) } ?? "-"))
            out.append(("udh-skipped", String(m.header.skipped)))
            if m.clipped { out.append(("clipped", "user data shorter than TP-UDL")) }
            if m.alphabet == .data8 {
                out.append(("data", hexString((0..<m.payloadCount).map { m[payload: $0] }, uppercase: true)))
            } else {
                var buf = [UInt8](repeating: 0, count: SMSText.maxUTF8)
                let n = buf.withUnsafeMutableBytes { m.writeText(into: $0) }
                var text = ""
                for ch in String(decoding: buf[0..<n], as: UTF8.self) {
                    switch ch {
                    case "\\": text += "\\\\"
                    case "\r": text += "\\r"
                    case "\n": text += "\\n"
                    case "\r\n": text += "\\r\\n"
                    default: text.append(ch)
                    }
                }
                out.append(("text", text))
            }
            return out
        }

        static func address(_ a: SMSAddress) -> String {
            var buf = [UInt8](repeating: 0, count: SMSAddress.capacity + 1)
            let n = buf.withUnsafeMutableBytes { a.write(into: $0) }
            return String(decoding: buf[0..<n], as: UTF8.self)
        }

        static func timestamp(_ t: SMSTimestamp) -> String {
            let q = Int(t.quarterHours)
            let zone = String(format: "%@%02d:%02d", q < 0 ? "-" : "+", abs(q) / 4, abs(q) % 4 * 15)
            return String(format: "20%02d-%02d-%02dT%02d:%02d:%02d", t.year, t.month, t.day, t.hour, t.minute, t.second)
                + zone
        }
    }
}
