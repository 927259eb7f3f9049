// Module UDP sockets, bridged to real UDP sockets on 127.0.0.1. One shared core (open, send, receive, close) and a
// small command table per dialect, following each vendor's TCP/IP AT manual.

final class SimSocket {
    let id: Int
    let endpoint: LoopbackUDPSocket
    var rx: [([UInt8], UDPPeer)] = []
    var remote: UDPPeer?            // fixed peer for Quectel "UDP" client sockets and SIM800 connections
    var udpMode = 0                 // SIM800 AT+CIPUDPMODE: 0 normal (one peer), 1 extended (any peer)
    var sendTo: UDPPeer?            // SIM800 AT+CIPUDPMODE=<n>,2: where the next datagrams go
    var receivedTotal = 0, readTotal = 0
    init(id: Int, endpoint: LoopbackUDPSocket) { self.id = id; self.endpoint = endpoint }
    var pendingBytes: Int { rx.reduce(0) { $0 + $1.0.count } }
}

extension ModemEngine {
    static func socketCommands(for dialect: SocketDialect) -> [String: Handler] {
        switch dialect {
        case .none: return [:]
        case .simcom: return simcomSockets
        case .quectel: return quectelSockets
        case .ublox: return ubloxSockets
        case .sim800: return sim800Sockets
        }
    }

    /// The URC a module prints when the network closes socket `id`.
    func networkClosedURC(_ id: Int) -> String {
        switch profile.socketDialect {
        case .simcom: "+IPCLOSE: \(id),1"
        case .quectel: "+QIURC: \"closed\",\(id)"
        case .ublox: "+UUSOCL: \(id)"
        case .sim800: cip.mux == 1 ? "\(id), CLOSED" : "CLOSED"
        case .none: ""
        }
    }

    // MARK: Shared core

    func openSocket(id: Int, localPort: Int) -> SimSocket? {
        guard sockets[id] == nil, (0..<profile.socketCount).contains(id) else { return nil }
        let endpoint: LoopbackUDPSocket
        do {
            endpoint = try LoopbackUDPSocket(port: localPort, queue: queue) { [weak self] bytes, peer in
                self?.datagramArrived(socket: id, bytes: bytes, from: peer)
            }
        } catch {
            logger.warning("cannot open bridge socket", metadata: ["error": "\(error)"])
            return nil
        }
        let s = SimSocket(id: id, endpoint: endpoint)
        sockets[id] = s
        emit(NetworkEvent("socket-open", [("id", .int(id)), ("dialect", .string(profile.socketDialect.rawValue)),
                                          ("local", .string("127.0.0.1:\(endpoint.port)"))]))
        return s
    }

    func closeSocket(_ id: Int, byNetwork: Bool) {
        guard let s = sockets.removeValue(forKey: id) else { return }
        s.endpoint.close()
        if packetGatewaySocket == id { packetGatewaySocket = nil }
        emit(NetworkEvent("socket-close", [("id", .int(id)), ("by", .string(byNetwork ? "network" : "module"))]))
        if byNetwork { urc(networkClosedURC(id)) }
    }

    func closeAllSockets(reportToModule: Bool) {
        for id in sockets.keys.sorted() { closeSocket(id, byNetwork: reportToModule) }
    }

    /// Sends one datagram through the bridge. Addresses outside 127/8 are carried to the same port on 127.0.0.1,
    /// except the opposite party's when a packet gateway is configured: those go out of its public socket.
    func sendDatagram(_ socket: SimSocket, _ bytes: [UInt8], to requested: UDPPeer) -> Bool {
        if let relay = packetGateway, relay.carriesUplink(to: requested) {
            return sendThroughPacketGateway(relay, socket, bytes, to: requested)
        }
        let host = requested.host == "localhost" ? "127.0.0.1" : requested.host
        let via = host.hasPrefix("127.") ? UDPPeer(host: host, port: requested.port)
            : UDPPeer(host: "127.0.0.1", port: requested.port)
        guard (1...65535).contains(requested.port), socket.endpoint.send(bytes, to: via) else { return false }
        var fields: [(String, JSONValue)] = [("id", .int(socket.id)), ("len", .int(bytes.count)),
                                             ("peer", .string(requested.description)), ("data", .string(Hex.encode(bytes)))]
        if via != requested { fields.append(("via", .string(via.description))) }
        emit(NetworkEvent("udp-tx", fields))
        afterDatagram(socket.id)
        return true
    }

    func datagramArrived(socket id: Int, bytes: [UInt8], from peer: UDPPeer, via: String? = nil) {
        guard let s = sockets[id] else { return }
        var fields: [(String, JSONValue)] = [("id", .int(id)), ("len", .int(bytes.count)), ("peer", .string(peer.description)),
                                             ("data", .string(Hex.encode(bytes)))]
        if let via { fields.append(("via", .string(via))) }
        emit(NetworkEvent("udp-rx", fields))
        let wasEmpty = s.rx.isEmpty
        switch profile.socketDialect {
        case .simcom:
            var out: [UInt8] = [0x0D, 0x0A]
            if simcomRecvFrom { out += Array("RECV FROM:\(peer)\r\n".utf8) }
            out += Array("+IPD\(bytes.count)\r\n".utf8) + bytes
            urc(out, raw: true)
        case .quectel:
            s.rx.append((bytes, peer))
            s.receivedTotal += bytes.count
            if wasEmpty { urc("+QIURC: \"recv\",\(id)") }
        case .ublox:
            s.rx.append((bytes, peer))
            urc("+UUSORF: \(id),\(bytes.count)")
        case .sim800:
            cipDatagram(s, bytes, from: peer, wasEmpty: wasEmpty)
        case .none: break
        }
        afterDatagram(id)
    }

    /// socket-close fault: the network drops the socket after a datagram.
    func afterDatagram(_ id: Int) {
        guard faults.isArmed(.socketClose), faults.fires(.socketClose) else { return }
        emit(NetworkEvent("fault", [("name", .string(FaultKind.socketClose.rawValue)), ("id", .int(id))]))
        queue.async { [weak self] in self?.closeSocket(id, byNetwork: true) }
    }

    static func peer(_ c: ATCommand, host: Int, port: Int) -> UDPPeer? {
        guard let h = c.string(host), let p = c.int(port) else { return nil }
        return UDPPeer(host: h, port: p)
    }

    // MARK: SIMCom SIM7600 (AT manual §15, TCP/IP)

    static let simcomSockets: [String: Handler] = [
        "+NETOPEN": { e, c in
            if c.form == .read { return Reply(line: "+NETOPEN: \(e.netOpen ? 1 : 0)") }
            guard !e.netOpen else { return Reply(line: "+IP ERROR: Network is already opened", .error) }
            guard e.isRegistered, e.attached else { var r = Reply(); r.after = [Array("+NETOPEN: 1".utf8)]; return r }
            e.netOpen = true
            var r = Reply()
            r.after = [Array("+NETOPEN: 0".utf8)]
            return r
        },
        "+NETCLOSE": { e, _ in
            guard e.netOpen else { return Reply(line: "+NETCLOSE: 2", .error) }
            e.closeAllSockets(reportToModule: false)
            e.netOpen = false
            var r = Reply()
            r.after = [Array("+NETCLOSE: 0".utf8)]
            return r
        },
        "+CIPOPEN": { e, c in
            if c.form == .read {
                return Reply(lines: e.sockets.keys.sorted().map { "+CIPOPEN: \($0),\"UDP\",,,\(e.sockets[$0]!.endpoint.port)" })
            }
            guard c.form == .set, let link = c.int(0), c.string(1)?.uppercased() == "UDP" else { return Reply(.error) }
            var r = Reply()
            guard e.netOpen, e.openSocket(id: link, localPort: c.int(4) ?? 0) != nil else {
                r.after = [Array("+CIPOPEN: \(link),\(e.netOpen ? 4 : 2)".utf8)]
                return r
            }
            r.after = [Array("+CIPOPEN: \(link),0".utf8)]
            return r
        },
        "+CIPSEND": { e, c in
            guard c.form == .set, let link = c.int(0), let len = c.int(1), (1...1500).contains(len),
                  let peer = peer(c, host: 2, port: 3), let s = e.sockets[link] else { return Reply(.error) }
            return e.prompt(e.profile.socketPrompt, then: .socketPayload(length: len) { [weak e] data in
                guard let e, e.sendDatagram(s, data, to: peer) else { return Reply(.error) }
                var r = Reply()
                r.after = [Array("+CIPSEND: \(link),\(len),\(len)".utf8)]
                return r
            })
        },
        "+CIPCLOSE": { e, c in
            guard c.form == .set, let link = c.int(0), e.sockets[link] != nil else { return Reply(.error) }
            e.closeSocket(link, byNetwork: false)
            var r = Reply()
            r.after = [Array("+CIPCLOSE: \(link),0".utf8)]
            return r
        },
        "+CIPSRIP": { e, c in
            if c.form == .read { return Reply(line: "+CIPSRIP: \(e.simcomRecvFrom ? 1 : 0)") }
            guard let v = c.int(0), v == 0 || v == 1 else { return Reply(.error) }
            e.simcomRecvFrom = v == 1
            return Reply()
        },
        "+CIPHEAD": { _, _ in Reply() },
        "+CIPCCFG": { _, _ in Reply() },
        "+CIPMODE": { _, c in c.form == .set && c.int(0) != 0 ? Reply(.error) : Reply() }, // transparent mode: not simulated
        "+IPADDR": { e, _ in e.netOpen ? Reply(line: "+IPADDR: 10.0.0.2") : Reply(.error) },
    ]

    // MARK: Quectel BG96 (TCP/IP AT Commands Manual §2)

    static let quectelSockets: [String: Handler] = [
        "+QICSGP": { e, c in
            if c.form == .read || c.form == .test { return Reply() }
            guard let ctx = c.int(0) else { return Reply(.error) }
            if let apn = c.string(2) { e.pdpContexts[ctx] = ("IP", apn) }
            return Reply()
        },
        "+QIACT": { e, c in
            switch c.form {
            case .read: return Reply(lines: e.pdpActive.sorted().map { "+QIACT: \($0),1,1,\"10.0.0.\($0 + 1)\"" })
            case .set:
                guard let ctx = c.int(0), (1...16).contains(ctx), e.isRegistered, e.attached else { return Reply(.error) }
                e.pdpActive.insert(ctx)
                return Reply()
            default: return Reply()
            }
        },
        "+QIDEACT": { e, c in
            e.closeAllSockets(reportToModule: false)
            e.pdpActive.remove(c.int(0) ?? 1)
            return Reply()
        },
        "+QIOPEN": { e, c in
            guard c.form == .set, let ctx = c.int(0), let id = c.int(1), let type = c.string(2)?.uppercased(),
                  type == "UDP" || type == "UDP SERVICE" else { return Reply(.error) }
            var r = Reply()
            guard e.pdpActive.contains(ctx) else { r.after = [Array("+QIOPEN: \(id),561".utf8)]; return r }
            guard let s = e.openSocket(id: id, localPort: c.int(5) ?? 0) else {
                r.after = [Array("+QIOPEN: \(id),563".utf8)] // socket identity has been used / cannot bind
                return r
            }
            if type == "UDP" { s.remote = peer(c, host: 3, port: 4) }
            r.after = [Array("+QIOPEN: \(id),0".utf8)]
            return r
        },
        "+QISEND": { e, c in
            guard c.form == .set, let id = c.int(0), let s = e.sockets[id] else { return Reply(.error) }
            guard let len = c.int(1), (1...1460).contains(len) else { return Reply(.error) }
            guard let peer = c.args.count >= 4 ? peer(c, host: 2, port: 3) : s.remote else { return Reply(.error) }
            return e.prompt(e.profile.socketPrompt, then: .socketPayload(length: len) { [weak e] data in
                guard let e, e.sendDatagram(s, data, to: peer) else { return Reply(.text("SEND FAIL")) }
                return Reply(.text("SEND OK"))
            })
        },
        "+QIRD": { e, c in
            guard c.form == .set, let id = c.int(0), let s = e.sockets[id] else { return Reply(.error) }
            if c.int(1) == 0 {
                return Reply(line: "+QIRD: \(s.receivedTotal),\(s.readTotal),\(s.receivedTotal - s.readTotal)")
            }
            guard !s.rx.isEmpty else { return Reply(line: "+QIRD: 0") }
            let (bytes, from) = s.rx.removeFirst() // UDP SERVICE reads one whole datagram
            s.readTotal += bytes.count
            var r = Reply(line: "+QIRD: \(bytes.count),\"\(from.host)\",\(from.port)")
            r.lines.append(bytes)
            return r
        },
        "+QICLOSE": { e, c in
            guard c.form == .set, let id = c.int(0) else { return Reply(.error) }
            e.closeSocket(id, byNetwork: false)
            return Reply()
        },
        "+QISTATE": { e, _ in
            Reply(lines: e.sockets.keys.sorted().map {
                "+QISTATE: \($0),\"UDP SERVICE\",\"127.0.0.1\",0,\(e.sockets[$0]!.endpoint.port),2,1,\($0),0,\"uart1\""
            })
        },
        "+QICFG": { _, _ in Reply() },
    ]

    // MARK: u-blox SARA-R4 (AT manual §25, Internet protocol transport layer)

    static let ubloxSockets: [String: Handler] = [
        "+USOCR": { e, c in
            guard c.form == .set, c.int(0) == 17 else { return Reply(.cme(4)) } // only UDP is bridged
            guard let id = (0..<e.profile.socketCount).first(where: { e.sockets[$0] == nil }),
                  e.isRegistered, e.openSocket(id: id, localPort: c.int(1) ?? 0) != nil else { return Reply(.cme(3)) }
            return Reply(line: "+USOCR: \(id)")
        },
        "+USOST": { e, c in
            guard c.form == .set, let id = c.int(0), let s = e.sockets[id], let peer = peer(c, host: 1, port: 2),
                  let len = c.int(3), (1...1024).contains(len) else { return Reply(.cme(50)) }
            if c.args.count >= 5 {
                let data = e.ubloxHexMode ? Hex.decode(c.args[4].text) ?? [] : Array(c.args[4].text.utf8)
                guard data.count == len, e.sendDatagram(s, data, to: peer) else { return Reply(.cme(50)) }
                return Reply(line: "+USOST: \(id),\(len)")
            }
            return e.prompt(e.profile.socketPrompt, then: .socketPayload(length: len) { [weak e] data in
                guard let e, e.sendDatagram(s, data, to: peer) else { return Reply(.cme(3)) }
                return Reply(line: "+USOST: \(id),\(len)")
            })
        },
        "+USORF": { e, c in
            guard c.form == .set, let id = c.int(0), let s = e.sockets[id], let len = c.int(1) else { return Reply(.cme(50)) }
            if len == 0 { return Reply(line: "+USORF: \(id),\(s.pendingBytes)") }
            guard !s.rx.isEmpty else { return Reply(line: "+USORF: \(id),\"\",0,0,\"\"") }
            let (bytes, from) = s.rx.removeFirst()
            let chunk = Array(bytes.prefix(len)) // the rest of a UDP datagram is lost, as on the module
            let body: [UInt8] = e.ubloxHexMode ? Array(Hex.encode(chunk).utf8) : chunk
            var line = Array("+USORF: \(id),\"\(from.host)\",\(from.port),\(chunk.count),\"".utf8)
            line += body + Array("\"".utf8)
            var r = Reply()
            r.lines = [line]
            return r
        },
        "+USOCL": { e, c in
            guard c.form == .set, let id = c.int(0), e.sockets[id] != nil else { return Reply(.cme(50)) }
            e.closeSocket(id, byNetwork: false)
            return Reply()
        },
        "+UDCONF": { e, c in
            if c.form == .read { return Reply() }
            if c.int(0) == 1 {
                if c.args.count == 1 { return Reply(line: "+UDCONF: 1,\(e.ubloxHexMode ? 1 : 0)") }
                e.ubloxHexMode = c.int(1) == 1
            }
            return Reply()
        },
        "+USOER": { _, _ in Reply(line: "+USOER: 0") },
    ]
}
