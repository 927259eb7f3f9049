// The SIM800 family's socket builders (SocketStyle.simcomCIPSTART), in multi-connection mode or, for a dialect with
// `singleConnection`, single-connection mode (no connection numbers; connection 0 here). A UDP "connection" has
// one destination, so a socket is started towards a placeholder and each datagram's destination is set with
// AT+CIPUDPMODE=<n>,2 when it differs from the last; extended mode (AT+CIPUDPMODE=<n>,1) takes datagrams from
// any sender. SIM800 Series AT Command Manual V1.09 §8.2.2, §8.2.3, §8.2.8, §8.2.25 (+CIPUDPMODE).

extension ATDriver {
    /// Destination of a freshly started socket until the first datagram names its own. A UDP connect sends
    /// nothing, so no packet ever goes there.
    static var placeholderRemote: UDPEndpoint { UDPEndpoint(address: 0x7F00_0001, port: 9) }

    /// AT+CLPORT=<n>,"UDP",<port>, AT+CIPUDPMODE=<n>,1, AT+CIPSTART=<n>,"UDP",<ip>,<port>, then `<n>, CONNECT OK`
    /// (single-connection mode: the same without `<n>`).
    func openCIPSTART(localPort: Int, _ s: SocketCommands) throws(ATError) -> Int {
        var id = 0
        while id < min(s.maxSockets, openSockets.count) && openSockets[id] { id += 1 }
        if id >= min(s.maxSockets, openSockets.count) { throw .noSuchSocket }
        let numbered = !s.singleConnection
        var port = ATCommand(s.bind)
        if numbered { port.int(id) }
        port.quoted("UDP")
        port.int(localPort)
        try engine.run(port, timeoutMs: 2000)
        var mode = ATCommand(s.aim)
        if numbered { mode.int(id) }
        mode.int(1)
        try engine.run(mode, timeoutMs: 2000)
        var c = ATCommand(s.open)
        if numbered { c.int(id) }
        c.quoted("UDP")
        c.quoted(ipv4: Self.placeholderRemote.address)
        c.int(Int(Self.placeholderRemote.port))
        try engine.run(c, timeoutMs: 10_000)
        // §8.2.2: up to 75 s in multi-IP mode.
        let line = try engine.awaitURC(ATLineRule(s.openURC, numbered: numbered),
                                       or: ATLineRule(s.openTaken, numbered: numbered), timeoutMs: 75_000).line
        var f = ATFields(line)
        if numbered { guard let got = f.int(), got == id else { throw .malformedResponse } }
        guard let result = f.string() else { throw .malformedResponse }
        if result.equals(s.openTaken) { throw .socketError(2) }  // the module still holds this connection
        if !result.equals(s.openOK) { throw .socketError(1) }
        openSockets[id] = true
        socketRemote[id] = Self.placeholderRemote
        return id
    }

    /// Points socket `id` at `remote` (AT+CIPUDPMODE=<n>,2,"<ip>",<port>) unless it already is.
    func aimCIPSTART(socket id: Int, at remote: UDPEndpoint, _ s: SocketCommands) throws(ATError) {
        if socketRemote[id] == remote { return }
        var c = ATCommand(s.aim)
        if !s.singleConnection { c.int(id) }
        c.int(2)
        c.quoted(ipv4: remote.address)
        c.int(Int(remote.port))
        try engine.run(c, timeoutMs: 2000)
        socketRemote[id] = remote
    }
}
