// URCs → typed events, in arrival order.

extension ATDriver {
    /// The next event, waiting up to `timeoutMs` for one. Acknowledgement URCs that need no action
    /// (`+CIPSEND:`, `+CIPCLOSE:` after our own close) are absorbed. Returns nil early when the command in
    /// flight needs `engine.advance()`; URCs keep coming out while it runs.
    public func nextEvent(timeoutMs: Int = 0) throws(ATError) -> ATEvent? {
        let deadline = engine.transport.nowMs() + UInt64(max(timeoutMs, 0))
        var polled = false
        while true {
            if engine.takeRebootIndication() {
                for i in 0..<openSockets.count { openSockets[i] = false }
                return .moduleRebooted
            }
            let overflows = engine.stats.urcOverflows
            if overflows != seenOverflows {
                seenOverflows = overflows
                return .urcOverflow
            }
            if let u = engine.nextURC() {
                if let e = event(for: u) { return e }
                continue
            }
            // URCs first; then the command in flight gets its turn (ATEngine+Command.swift).
            if engine.commandReady { return nil }
            let now = engine.transport.nowMs()
            if polled && now >= deadline { return nil }
            try engine.poll(timeoutMs: now >= deadline ? 0 : Int(deadline - now))
            polled = true
        }
    }

    func event(for u: ATURC) -> ATEvent? {
        let line = u.line
        if ATLineRules.isReadyIndication(line) { return nil }  // reported via the reboot flag
        if let reg = NetworkRegistration.parse(line, readAnswer: false) { return .registration(reg) }
        if line.hasPrefix("+CMTI:") {
            var f = ATFields(line, after: "+CMTI:")
            f.skip()
            guard let index = f.int() else { return .other(line: line) }
            return .smsStored(index: index)
        }
        if line.hasPrefix("+CMT:") {
            var f = ATFields(line, after: "+CMT:")
            var length: Int?
            while !f.isAtEnd, let v = f.next() { length = parseDecimal(v) }
            guard let length, u.body.count > 0 else { return .other(line: line) }
            return .smsReceived(tpduLength: length, pduHex: u.body)
        }
        if !dialect.smsFullURC.isEmptyString && line.hasPrefix(dialect.smsFullURC) { return .smsStorageFull }
        if let s = dialect.sockets { return socketEvent(u, s) }
        return .other(line: line)
    }

    private func socketEvent(_ u: ATURC, _ s: SocketCommands) -> ATEvent? {
        let line = u.line
        switch s.style {
        case .simcomCIP:
            if line.hasPrefix("RECV FROM:") {
                // RECV FROM:<ip>:<port>
                let rest = line.suffix(from: 10)
                if let colon = rest.firstIndex(of: ASCII.colon),
                   let addr = UDPEndpoint.parseAddress(rest.prefix(colon)),
                   let port = parseDecimal(rest.suffix(from: colon + 1)), port <= 65535 {
                    pendingSender = UDPEndpoint(address: addr, port: UInt16(port))
                }
                return nil
            }
            if line.hasPrefix("+RECEIVE,") {
                var f = ATFields(line, after: "+RECEIVE,")
                let id = f.int() ?? 0
                defer { pendingSender = nil }
                return .socketData(socket: id, from: pendingSender, bytes: u.body)
            }
            if line.hasPrefix("+IPD") {
                // +IPD carries no link number: it belongs to the lowest open link.
                var id = 0
                while id < openSockets.count && !openSockets[id] { id += 1 }
                defer { pendingSender = nil }
                return .socketData(socket: id < openSockets.count ? id : 0, from: pendingSender, bytes: u.body)
            }
            if line.hasPrefix("+CIPSEND:") || line.hasPrefix("+CIPCLOSE:") || line.hasPrefix("+NETOPEN:")
                || line.hasPrefix("+CIPOPEN:") {
                return nil
            }
            if line.hasPrefix("+CIPEVENT:") {
                for i in 0..<openSockets.count { openSockets[i] = false }
                return .socketClosed(socket: -1)  // the whole bearer went down
            }
        case .quectelQI:
            if line.hasPrefix("+QIOPEN:") { return nil }
            if line.hasPrefix("+QIURC: \"pdpdeact\"") {
                for i in 0..<openSockets.count { openSockets[i] = false }
                return .socketClosed(socket: -1)
            }
        case .ubloxUSO:
            break
        }
        if line.hasPrefix(s.receiveURC) {
            var f = ATFields(line, after: s.receiveURC)
            if s.style == .quectelQI { f = ATFields(line, after: "+QIURC:"); f.skip() }
            guard let id = f.int() else { return .other(line: line) }
            return .socketReadable(socket: id)
        }
        if line.hasPrefix(s.closedURC) {
            var f = ATFields(line, after: s.closedURC)
            if s.style == .quectelQI { f = ATFields(line, after: "+QIURC:"); f.skip() }
            guard let id = f.int() else { return .other(line: line) }
            if id >= 0 && id < openSockets.count { openSockets[id] = false }
            return .socketClosed(socket: id)
        }
        return .other(line: line)
    }
}
