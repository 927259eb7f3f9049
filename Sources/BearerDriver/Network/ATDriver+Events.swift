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

    /// A socket URC through the dialect's table (`SocketCommands.urcs`): the first row that matches decides.
    private func socketEvent(_ u: ATURC, _ s: SocketCommands) -> ATEvent? {
        let line = u.line
        for i in 0..<s.urcs.count {
            let row = s.urcs.row(i)
            if !row.match.matches(line) { continue }
            switch row.meaning {
            case .ignore:
                return nil
            case .sender:
                if let from = endpoint(line, row) { pendingSender = from }
                return nil
            case .data:
                defer { pendingSender = nil }
                return .socketData(socket: dataSocket(line, row), from: endpoint(line, row) ?? pendingSender, bytes: u.body)
            case .readable:
                guard let id = field(line, row, row.id) else { return .other(line: line) }
                return .socketReadable(socket: id)
            case .closed:
                guard let id = row.id < 0 ? Optional(dataSocket(line, row)) : field(line, row, row.id) else { return .other(line: line) }
                if id >= 0 && id < openSockets.count { openSockets[id] = false }
                return .socketClosed(socket: id)
            case .bearerDown:
                for k in 0..<openSockets.count { openSockets[k] = false }
                return .socketClosed(socket: -1)  // the whole bearer went down
            }
        }
        return .other(line: line)
    }

    /// Field `index` of a row's line as an integer; nil when the row names none or it is not a number.
    private func field(_ line: UnsafeRawBufferPointer, _ row: SocketURC, _ index: Int) -> Int? {
        if index < 0 { return nil }
        var f = row.match.fields(line)
        f.skip(index)
        return f.int()
    }

    /// The socket of pushed data or a close: its id field (0 when unreadable), or with none named the lowest open
    /// socket (SIMCom `+IPD`, SIM800 single-connection `+IPD,` and `CLOSED`).
    private func dataSocket(_ line: UnsafeRawBufferPointer, _ row: SocketURC) -> Int {
        if row.id >= 0 { return field(line, row, row.id) ?? 0 }
        var id = 0
        while id < openSockets.count && !openSockets[id] { id += 1 }
        return id < openSockets.count ? id : 0
    }

    /// The `<ip>:<port>` field of a row's line, if the row has one and it parses.
    private func endpoint(_ line: UnsafeRawBufferPointer, _ row: SocketURC) -> UDPEndpoint? {
        if row.sender < 0 { return nil }
        var f = row.match.fields(line)
        f.skip(row.sender)
        guard let text = f.next(), let colon = text.firstIndex(of: ASCII.colon),
              let addr = UDPEndpoint.parseAddress(text.prefix(colon)),
              let port = parseDecimal(text.suffix(from: colon + 1)), port <= 65535 else { return nil }
        return UDPEndpoint(address: addr, port: UInt16(port))
    }
}
