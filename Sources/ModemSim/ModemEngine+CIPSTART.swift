// SIMCom SIM800 family sockets: the TCPIP application toolkit, in single- (AT+CIPMUX=0) and multi-connection
// (AT+CIPMUX=1) mode, UDP only (bridged like the other dialects). Shapes from the SIM800 Series AT Command Manual
// V1.09 (2015-08-03), chapter 8: §8.2.1 +CIPMUX (IP INITIAL only), §8.2.2 +CIPSTART (OK, then `CONNECT OK` /
// `<n>, CONNECT OK`, `CONNECT FAIL`, `ALREADY CONNECT`), §8.2.3 +CIPSEND (`> `, then `SEND OK` / `<n>, SEND OK`
// instead of OK), §8.2.6 +CIPCLOSE (`CLOSE OK` / `<id>, CLOSE OK`), §8.2.7 +CIPSHUT (`SHUT OK`), §8.2.8 +CLPORT,
// §8.2.9 +CSTT (IP INITIAL → IP START), §8.2.10 +CIICR (→ IP GPRSACT), §8.2.11 +CIFSR (the bare address, no
// final result; → IP STATUS), §8.2.12 +CIPSTATUS, §8.2.15 +CIPHEAD (`+IPD,<len>:` single, `+RECEIVE,<n>,<len>:`
// multi), §8.2.20 +CIPSRIP (`RECV FROM:<ip>:<port>` single, `+RECEIVE,<n>,<len>,<ip>:<port>` multi), §8.2.25
// +CIPUDPMODE (0 normal, 1 extended: any sender, 2 set the address to send to), §8.2.26 +CIPRXGET (1: announce
// with `+CIPRXGET: 1[,<id>]`, 2: read `+CIPRXGET: 2,[<id>,]<len>,<left>[,<ip>:<port>]` then the bytes, 4: query).
// The modules print a space after the connection number (`0, CONNECT OK`); the manual's tables show none. Sections
// past §8.2.3 were read in the same toolkit chapter of the SIM7000 Series AT Command Manual V1.06 (numbered one
// higher from §8.2.12 on there: it adds AT+CIFSREX).
// Simplifications: a read returns one datagram (a UDP boundary is never merged), the single-connection Ctrl-Z
// form of +CIPSEND and transparent mode are not simulated, TCP is refused with ERROR.

/// The toolkit's state (SIM800 manual §8.2.2 <state>); reset by a reboot.
struct CIPState {
    enum Phase: String { case initial = "IP INITIAL", start = "IP START", gprsact = "IP GPRSACT", status = "IP STATUS" }
    var mux = 0
    var phase = Phase.initial
    var apn = "CMNET"           // §8.2.9: the default APN
    var head = 0                // AT+CIPHEAD
    var srip = 0                // AT+CIPSRIP
    var rxget = 0               // AT+CIPRXGET mode 0 (push) or 1 (announce, read with mode 2)
    var localPorts: [Int: Int] = [:]   // AT+CLPORT, taken by the next AT+CIPSTART of that connection
    var udpModes: [Int: Int] = [:]     // AT+CIPUDPMODE=<n>,<0|1> given before the connection started
}

extension ModemEngine {
    /// Connection number and the index of the first argument after it: multi mode names the connection first.
    func cipConnection(_ c: ATCommand) -> (id: Int, next: Int)? {
        if cip.mux == 0 { return (0, 0) }
        guard let id = c.int(0), (0..<profile.socketCount).contains(id) else { return nil }
        return (id, 1)
    }

    /// `<n>, TEXT` in multi-connection mode, `TEXT` in single.
    func cipNumbered(_ id: Int, _ text: String) -> String { cip.mux == 1 ? "\(id), \(text)" : text }

    /// A datagram for connection `s`: dropped in normal UDP mode unless it comes from the connection's peer,
    /// else announced (AT+CIPRXGET=1) or pushed with the headers AT+CIPHEAD / AT+CIPSRIP ask for.
    func cipDatagram(_ s: SimSocket, _ bytes: [UInt8], from peer: UDPPeer, wasEmpty: Bool) {
        if s.udpMode == 0, let r = s.remote, r != peer {
            emit(NetworkEvent("udp-filtered", [("id", .int(s.id)), ("peer", .string(peer.description))]))
            return
        }
        if cip.rxget == 1 {
            s.rx.append((bytes, peer))
            if wasEmpty { urc(cip.mux == 1 ? "+CIPRXGET: 1,\(s.id)" : "+CIPRXGET: 1") }
            return
        }
        var out: [UInt8] = [0x0D, 0x0A]
        if cip.mux == 1 {
            let header = cip.srip == 1 ? "+RECEIVE,\(s.id),\(bytes.count),\(peer.host):\(peer.port)"
                : "+RECEIVE,\(s.id),\(bytes.count):"
            out += Array("\(header)\r\n".utf8)
        } else {
            if cip.srip == 1 { out += Array("RECV FROM:\(peer.host):\(peer.port)\r\n".utf8) }
            if cip.head == 1 { out += Array("+IPD,\(bytes.count):".utf8) }
        }
        urc(out + bytes, raw: true)
    }

    static func cipFlag(_ name: String, _ get: @escaping @Sendable (ModemEngine) -> Int,
                        _ set: @escaping @Sendable (ModemEngine, Int) -> Void) -> Handler {
        { e, c in
            switch c.form {
            case .read: return Reply(line: "\(name): \(get(e))")
            case .test: return Reply(line: "\(name): (0,1)")
            case .exec: return Reply(.error)
            case .set:
                guard let v = c.int(0), v == 0 || v == 1 else { return Reply(.error) }
                set(e, v)
                return Reply()
            }
        }
    }

    static let sim800Sockets: [String: Handler] = [
        "+CIPMUX": { e, c in
            switch c.form {
            case .read: return Reply(line: "+CIPMUX: \(e.cip.mux)")
            case .test: return Reply(line: "+CIPMUX: (0,1)")
            case .exec: return Reply(.error)
            case .set:
                // §8.2.1: only in IP INITIAL with no connection.
                guard let v = c.int(0), v == 0 || v == 1, e.cip.phase == .initial, e.sockets.isEmpty else {
                    return Reply(.error)
                }
                e.cip.mux = v
                return Reply()
            }
        },
        "+CSTT": { e, c in
            switch c.form {
            case .read: return Reply(line: "+CSTT: \"\(e.cip.apn)\",\"\",\"\"")
            case .test: return Reply(line: "+CSTT: \"APN\",\"USER\",\"PWD\"")
            case .exec, .set:
                guard e.cip.phase == .initial else { return Reply(.error) }
                if c.form == .set { e.cip.apn = c.args.first?.text ?? "" }
                e.cip.phase = .start
                return Reply()
            }
        },
        "+CIICR": { e, c in
            guard c.form == .exec, e.cip.phase == .start, e.isRegistered, e.attached else { return Reply(.error) }
            e.cip.phase = .gprsact
            e.pdpActive.insert(1)
            return Reply()
        },
        "+CIFSR": { e, c in
            guard c.form == .exec, e.cip.phase == .gprsact || e.cip.phase == .status else { return Reply(.error) }
            e.cip.phase = .status
            return Reply(line: "10.0.0.2", .none)  // §8.2.11: the address alone
        },
        "+CIPSHUT": { e, c in
            guard c.form == .exec else { return Reply(.error) }
            e.closeAllSockets(reportToModule: false)
            e.cip.phase = .initial
            e.cip.localPorts = [:]
            e.cip.udpModes = [:]
            e.pdpActive.remove(1)
            return Reply(.text("SHUT OK"))
        },
        "+CLPORT": { e, c in
            switch c.form {
            case .read:
                if e.cip.mux == 0 { return Reply(line: "+CLPORT: 0,\(e.cip.localPorts[0] ?? 0)") }
                return Reply(lines: (0..<e.profile.socketCount).map { "+CLPORT: \($0),0,\(e.cip.localPorts[$0] ?? 0)" })
            case .test: return Reply(line: "+CLPORT: (\"TCP\",\"UDP\"),(0-65535)")
            case .exec: return Reply(.error)
            case .set:
                guard let (id, k) = e.cipConnection(c), let mode = c.string(k)?.uppercased(), mode == "TCP" || mode == "UDP",
                      let port = c.int(k + 1), (0...65535).contains(port) else { return Reply(.error) }
                if mode == "UDP" { e.cip.localPorts[id] = port }
                return Reply()
            }
        },
        "+CIPSTART": { e, c in
            guard c.form == .set, let (id, k) = e.cipConnection(c), let mode = c.string(k)?.uppercased(),
                  let remote = peer(c, host: k + 1, port: k + 2) else { return Reply(.error) }
            guard mode == "UDP" else { return Reply(.error) }  // only UDP is bridged
            // §8.2.2: multi-IP needs IP STATUS (after CSTT, CIICR, CIFSR); single also starts from IP INITIAL.
            if e.cip.phase == .initial && e.cip.mux == 0 && e.isRegistered && e.attached { e.cip.phase = .status }
            guard e.cip.phase == .status else { return Reply(.error) }
            var r = Reply()
            if e.sockets[id] != nil {
                r.after = [Array(e.cipNumbered(id, "ALREADY CONNECT").utf8)]
                return r
            }
            guard let s = e.openSocket(id: id, localPort: e.cip.localPorts[id] ?? 0) else {
                r.after = [Array(e.cipNumbered(id, "CONNECT FAIL").utf8)]
                return r
            }
            s.remote = remote
            s.udpMode = e.cip.udpModes.removeValue(forKey: id) ?? 0
            r.after = [Array(e.cipNumbered(id, "CONNECT OK").utf8)]
            return r
        },
        "+CIPSEND": { e, c in
            if c.form == .test { return Reply(line: e.cip.mux == 1 ? "+CIPSEND: (0-5),1460" : "+CIPSEND: 1460") }
            // The Ctrl-Z terminated form (no length) is not simulated.
            guard c.form == .set, let (id, k) = e.cipConnection(c), let len = c.int(k), (1...1460).contains(len),
                  let s = e.sockets[id], let to = s.udpMode == 1 ? s.sendTo ?? s.remote : s.remote else { return Reply(.error) }
            return e.prompt(e.profile.socketPrompt, then: .socketPayload(length: len) { [weak e] data in
                guard let e else { return Reply(.error) }
                let sent = e.sendDatagram(s, data, to: to)
                return Reply(.text(e.cipNumbered(id, sent ? "SEND OK" : "SEND FAIL")))
            })
        },
        "+CIPCLOSE": { e, c in
            let id: Int
            if e.cip.mux == 1 {
                guard c.form == .set, let n = c.int(0) else { return Reply(.error) }
                id = n
            } else {
                guard c.form == .exec || c.form == .set else { return Reply(.error) }
                id = 0
            }
            guard e.sockets[id] != nil else { return Reply(.error) }
            e.closeSocket(id, byNetwork: false)
            return Reply(.text(e.cipNumbered(id, "CLOSE OK")))
        },
        "+CIPSTATUS": { e, c in
            guard c.form == .exec else { return Reply() }
            var r = Reply()
            if e.cip.mux == 1 {
                r.after = [Array("STATE: \(e.cip.phase.rawValue)".utf8)]
                for id in e.sockets.keys.sorted() {
                    let p = e.sockets[id]?.remote
                    r.after.append(Array("C: \(id),0,\"UDP\",\"\(p?.host ?? "")\",\"\(p?.port ?? 0)\",\"CONNECTED\"".utf8))
                }
            } else {
                r.after = [Array("STATE: \(e.sockets[0] != nil ? "CONNECT OK" : e.cip.phase.rawValue)".utf8)]
            }
            return r
        },
        "+CIPHEAD": cipFlag("+CIPHEAD", { $0.cip.head }) { e, v in e.cip.head = v },
        "+CIPSRIP": cipFlag("+CIPSRIP", { $0.cip.srip }) { e, v in e.cip.srip = v },
        "+CIPUDPMODE": { e, c in
            if c.form == .read {
                if e.cip.mux == 0 { return Reply(line: "+CIPUDPMODE: \(e.sockets[0]?.udpMode ?? 0)") }
                return Reply(lines: (0..<e.profile.socketCount).map { "+CIPUDPMODE: \($0),\(e.sockets[$0]?.udpMode ?? 0)" })
            }
            guard c.form == .set, let (id, k) = e.cipConnection(c), let mode = c.int(k), (0...2).contains(mode) else {
                return Reply(.error)
            }
            if mode == 2 {
                // The address to send to: an extended-mode connection only.
                guard let s = e.sockets[id], s.udpMode == 1, let to = peer(c, host: k + 1, port: k + 2),
                      (1...65535).contains(to.port) else { return Reply(.error) }
                s.sendTo = to
                return Reply()
            }
            if let s = e.sockets[id] { s.udpMode = mode } else { e.cip.udpModes[id] = mode }
            return Reply()
        },
        "+CIPRXGET": { e, c in
            switch c.form {
            case .read: return Reply(line: "+CIPRXGET: \(e.cip.rxget)")
            case .test: return Reply(line: "+CIPRXGET: (0-4),(1-1460)")
            case .exec: return Reply(.error)
            case .set:
                guard let mode = c.int(0) else { return Reply(.error) }
                switch mode {
                case 0, 1:
                    e.cip.rxget = mode
                    return Reply()
                case 2, 4:
                    let id = e.cip.mux == 1 ? c.int(1) : 0
                    guard let id, let s = e.sockets[id], e.cip.rxget == 1 else { return Reply(.error) }
                    let conn = e.cip.mux == 1 ? "\(id)," : ""
                    if mode == 4 { return Reply(line: "+CIPRXGET: 4,\(conn)\(s.pendingBytes)") }
                    guard let want = c.int(e.cip.mux == 1 ? 2 : 1), (1...1460).contains(want) else { return Reply(.error) }
                    guard !s.rx.isEmpty else { return Reply(line: "+CIPRXGET: 2,\(conn)0,0") }
                    let (bytes, from) = s.rx.removeFirst()
                    let chunk = Array(bytes.prefix(want))  // the rest of a datagram is lost, as with UDP reads
                    let sender = e.cip.srip == 1 ? ",\(from.host):\(from.port)" : ""
                    var r = Reply(line: "+CIPRXGET: 2,\(conn)\(chunk.count),\(s.pendingBytes)\(sender)")
                    r.lines.append(chunk)
                    return r
                default:
                    return Reply(.error)  // mode 3 (hex) is not simulated
                }
            }
        },
        "+CIPQSEND": { _, c in c.form == .set && c.int(0) != 0 ? Reply(.error) : Reply() },  // quick send: not simulated
        "+CIPSPRT": { _, _ in Reply() },
        "+CIPMODE": { _, c in c.form == .set && c.int(0) != 0 ? Reply(.error) : Reply() },  // transparent mode: not simulated
    ]
}
