// UDP through the module's own socket commands. The strings come from the dialect's SocketCommands;
// only the argument order differs per style. Payloads always go length-prefixed after the prompt.

extension ATDriver {
    func socketCommands() throws(ATError) -> SocketCommands {
        guard let s = dialect.sockets else { throw .unsupported }
        return s
    }

    func checkSocket(_ id: Int, _ s: SocketCommands) throws(ATError) {
        if id < 0 || id >= s.maxSockets || id >= openSockets.count || !openSockets[id] { throw .noSuchSocket }
    }

    /// Opens a UDP socket bound to `localPort` (0: any); returns the module's socket id.
    public func openUDP(localPort: Int = 0) throws(ATError) -> Int {
        let s = try socketCommands()
        if localPort < 0 || localPort > 65535 { throw .invalidArgument }
        switch s.style {
        case .ubloxUSO:
            var c = ATCommand(s.open)
            if localPort > 0 { c.raw(","); c.int(localPort) }
            let r = try engine.run(c, timeoutMs: 5000)
            guard var f = r.fields("+USOCR:"), let id = f.int() else { throw .malformedResponse }
            if id >= openSockets.count { throw .malformedResponse }
            openSockets[id] = true
            return id
        case .simcomCIPSTART:
            return try openCIPSTART(localPort: localPort, s)
        case .simcomCIP, .quectelQI:
            var id = 0
            while id < min(s.maxSockets, openSockets.count) && openSockets[id] { id += 1 }
            if id >= min(s.maxSockets, openSockets.count) { throw .noSuchSocket }
            var c = ATCommand(s.open)
            c.int(id)
            if s.style == .simcomCIP {
                c.quoted("UDP")  // AT+CIPOPEN=<link>,"UDP",,,<localport>
                c.empty()
                c.empty()
                c.int(localPort)
            } else {
                c.quoted("UDP SERVICE")  // AT+QIOPEN=1,<id>,"UDP SERVICE","127.0.0.1",0,<localport>,0
                c.quoted("127.0.0.1")
                c.int(0)
                c.int(localPort)
                c.int(0)
            }
            let r = try engine.run(c, timeoutMs: 10_000)
            // The result usually follows the OK as a URC, but may come inside the response.
            let line: UnsafeRawBufferPointer
            if let i = r.index(of: s.openURC), let l = r.line(i) {
                line = l
            } else {
                line = try engine.awaitURC(s.openURC, timeoutMs: 150_000).line
            }
            var f = ATFields(line, after: s.openURC)
            guard let got = f.int(), let err = f.int() else { throw .malformedResponse }
            if got != id { throw .malformedResponse }
            if err != 0 { throw .socketError(err) }
            openSockets[id] = true
            return id
        }
    }

    /// Sends one datagram. The payload follows the prompt as raw bytes, its length declared first.
    public func sendUDP(socket id: Int, to remote: UDPEndpoint, payload: UnsafeRawBufferPointer) throws(ATError) {
        try startSendUDP(socket: id, to: remote, payload: payload)
        try engine.finishCommand()
    }

    /// `sendUDP` without waiting: the payload is copied; `engine.advance()` answers non-nil once it was sent.
    public func startSendUDP(socket id: Int, to remote: UDPEndpoint, payload: UnsafeRawBufferPointer) throws(ATError) {
        let s = try socketCommands()
        try checkSocket(id, s)
        if payload.count == 0 || payload.count > s.maxPayload { throw .invalidArgument }
        var c = ATCommand(s.send)
        switch s.style {
        case .simcomCIPSTART:
            try aimCIPSTART(socket: id, at: remote, s)
            if !s.singleConnection { c.int(id) }  // AT+CIPSEND=[<n>,]<len>; the destination was set above
            c.int(payload.count)
        case .simcomCIP, .quectelQI:
            c.int(id)  // AT+CIPSEND=<link>,<len>,"ip",port / AT+QISEND=<id>,<len>,"ip",port
            c.int(payload.count)
            c.quoted(ipv4: remote.address)
            c.int(Int(remote.port))
        case .ubloxUSO:
            c.int(id)  // AT+USOST=<socket>,"ip",port,<len> then @
            c.quoted(ipv4: remote.address)
            c.int(Int(remote.port))
            c.int(payload.count)
        }
        let p = ATPayload(bytes: payload, prompt: s.sendPrompt, terminator: nil, delayMs: s.promptDelayMs)
        try engine.start(c, timeoutMs: 20_000, payload: p)
    }

    /// Reads one buffered datagram into `buffer`; returns its length (0 when none) and sender.
    /// SIMCom (SIM7600 and SIM800) pushes data in `ATEvent.socketData` instead and answers `.unsupported`.
    /// Quectel announces new data only once the buffer was drained: read until 0 comes back.
    public func receiveUDP(socket id: Int, into buffer: UnsafeMutableRawBufferPointer) throws(ATError) -> (count: Int, from: UDPEndpoint?) {
        let s = try socketCommands()
        if s.read.isEmptyString { throw .unsupported }
        try checkSocket(id, s)
        var c = ATCommand(s.read)
        c.int(id)
        // Quectel's "UDP SERVICE" form takes no length and returns one datagram (BG96 TCP/IP AN §2.3.8).
        if s.style == .ubloxUSO { c.int(min(buffer.count, s.maxPayload)) }
        let r = try engine.run(c, timeoutMs: 5000)
        guard let i = r.index(of: s.readAnswer), let header = r.line(i) else { throw .malformedResponse }
        var f = ATFields(header, after: s.readAnswer)
        switch s.style {
        case .quectelQI:
            // +QIRD: <len>,"<ip>",<port> then <len> raw bytes (a separate record).
            guard let n = f.int() else { throw .malformedResponse }
            if n == 0 { return (0, nil) }
            guard let ip = f.string(), let addr = UDPEndpoint.parseAddress(ip), let port = f.int(),
                  let data = r.line(i + 1), data.count == n else { throw .malformedResponse }
            if n > buffer.count { throw .responseOverflow }
            buffer.copyMemory(from: data)
            return (n, UDPEndpoint(address: addr, port: UInt16(truncatingIfNeeded: port)))
        case .ubloxUSO:
            // +USORF: <socket>,"<ip>",<port>,<len>,"<hex>"; no data: +USORF: <socket>,0 or +USORF: <socket>,""
            guard f.int() != nil else { throw .malformedResponse }
            guard let ipField = f.string() else { return (0, nil) }
            guard let addr = UDPEndpoint.parseAddress(ipField) else { return (0, nil) }
            guard let port = f.int(), let n = f.int(), let hex = f.string() else { throw .malformedResponse }
            guard let got = decodeHex(hex, into: buffer), got == n else { throw .malformedResponse }
            return (n, UDPEndpoint(address: addr, port: UInt16(truncatingIfNeeded: port)))
        case .simcomCIP, .simcomCIPSTART:
            throw .unsupported
        }
    }

    public func closeSocket(_ id: Int) throws(ATError) {
        let s = try socketCommands()
        try checkSocket(id, s)
        var c = ATCommand(s.close)
        if !s.singleConnection { c.int(id) }  // single: AT+CIPCLOSE
        openSockets[id] = false
        socketRemote[id] = nil
        do throws(ATError) {
            try engine.run(c, timeoutMs: 10_000)
        } catch {
            // Closing a socket the network already closed is not a failure worth surfacing.
            if error == .timeout { throw error }
        }
    }

    /// Closes every socket the module may still hold from before this driver started (the host restarted while the
    /// module kept its power, so the module's sockets outlived the process that opened them). Errors are ignored:
    /// most ids will not have been open.
    public func closeAllSockets() {
        guard let s = try? socketCommands() else { return }
        for id in 0..<min(s.maxSockets, openSockets.count) {
            var c = ATCommand(s.close)
            if !s.singleConnection { c.int(id) }
            _ = try? engine.run(c, timeoutMs: 10_000)
            openSockets[id] = false
            socketRemote[id] = nil
        }
    }

    public func isSocketOpen(_ id: Int) -> Bool { id >= 0 && id < openSockets.count && openSockets[id] }
}
