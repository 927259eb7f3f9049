// The SIM800 dialect (AT+CIPSTART sockets, multi-connection mode) against a scripted module. Shapes from the
// SIM800 Series AT Command Manual V1.09, chapter 8: §8.2.2 CIPSTART (`<n>, CONNECT OK`), §8.2.3 CIPSEND
// (`<n>, SEND OK` / `<n>, SEND FAIL` instead of OK), §8.2.6 CIPCLOSE (`<n>, CLOSE OK`), §8.2.7 CIPSHUT (`SHUT OK`,
// URC `+PDP: DEACT`), §8.2.11 CIFSR (the bare address), §8.2.20 CIPSRIP (`+RECEIVE,<n>,<len>,<ip>:<port>`),
// §8.2.15 CIPHEAD (`+RECEIVE,<n>,<len>:`), §8.2.25 CIPUDPMODE.
import Testing
@testable import BearerDriver

@Suite struct ATDriverSIM800Tests {
    static let open: [ScriptStep] = [
        step("AT+CLPORT=0,\"UDP\",5000", "\r\nOK\r\n"),
        step("AT+CIPUDPMODE=0,1", "\r\nOK\r\n"),
        step("AT+CIPSTART=0,\"UDP\",\"127.0.0.1\",9", "\r\nOK\r\n\r\n0, CONNECT OK\r\n"),
    ]

    @Test func openSendsToEachDestinationOncePushedDataAndNetworkClose() throws {
        let other = UDPEndpoint(address: 0x0A00_0002, port: 4501)
        var t = ScriptedTransport(Self.open + [
            step("AT+CIPUDPMODE=0,2,\"10.0.0.1\",4500", "\r\nOK\r\n"),
            step("AT+CIPSEND=0,4", "\r\n> "),
            payloadStep(datagram, "\r\n0, SEND OK\r\n"),
            step("AT+CIPSEND=0,4", "\r\n> "),  // same destination: not set again
            payloadStep(datagram, "\r\n0, SEND OK\r\n"),
            step("AT+CIPUDPMODE=0,2,\"10.0.0.2\",4501", "\r\nOK\r\n"),
            step("AT+CIPSEND=0,4", "\r\n> "),
            payloadStep(datagram, "\r\n0,SEND OK\r\n"),  // the manual's spelling, without the space
        ])
        t.timed = [(at: 5_000, bytes: bytes("\r\n+RECEIVE,0,4,10.0.0.1:4500\r\n") + datagram + bytes("\r\n\r\n0, CLOSED\r\n"))]
        let d = ATDriver(transport: t, dialect: .sim800)
        let s = try d.openUDP(localPort: 5000)
        #expect(s == 0 && d.isSocketOpen(0))
        for to in [peer, peer, other] {
            try datagram.withUnsafeBytes { try d.sendUDP(socket: s, to: to, payload: $0) }
        }
        #expect(d.engine.transport.finished)
        guard case .socketData(let id, let from, let data)? = try d.nextEvent(timeoutMs: 10_000) else {
            Issue.record("no data")
            return
        }
        #expect(id == 0 && from == peer && Array(data) == datagram)
        guard case .socketClosed(0)? = try d.nextEvent(timeoutMs: 1_000) else { Issue.record("no close"); return }
        #expect(!d.isSocketOpen(0))
        var small = [UInt8](repeating: 0, count: 8)
        #expect(throws: ATError.unsupported) { try small.withUnsafeMutableBytes { _ = try d.receiveUDP(socket: 0, into: $0) } }
    }

    @Test func dataWithoutSenderAndBearerLoss() throws {
        var t = ScriptedTransport(Self.open)
        // +CIPHEAD=1 without +CIPSRIP: the length ends with a colon; then the network drops the PDP context.
        t.timed = [(at: 3_000, bytes: bytes("\r\n+RECEIVE,0,4:\r\n") + datagram + bytes("\r\n\r\n+PDP: DEACT\r\n"))]
        let d = ATDriver(transport: t, dialect: .sim800)
        _ = try d.openUDP(localPort: 5000)
        guard case .socketData(0, let from, let data)? = try d.nextEvent(timeoutMs: 5_000) else { Issue.record("no data"); return }
        #expect(from == nil && Array(data) == datagram)
        #expect(d.engine.stats.badRawLengths == 0)
        guard case .socketClosed(-1)? = try d.nextEvent(timeoutMs: 5_000) else { Issue.record("no bearer loss"); return }
        #expect(!d.isSocketOpen(0))
    }

    @Test func sendFailAndRefusedOpen() throws {
        let d = makeDriver(Self.open + [
            step("AT+CIPUDPMODE=0,2,\"10.0.0.1\",4500", "\r\nOK\r\n"),
            step("AT+CIPSEND=0,4", "\r\n> "),
            payloadStep(datagram, "\r\n0, SEND FAIL\r\n"),
            step("AT+CLPORT=1,\"UDP\",0", "\r\nOK\r\n"),
            step("AT+CIPUDPMODE=1,1", "\r\nOK\r\n"),
            step("AT+CIPSTART=1,\"UDP\",\"127.0.0.1\",9", "\r\nOK\r\n\r\n1, CONNECT FAIL\r\n"),
            step("AT+CLPORT=1,\"UDP\",0", "\r\nOK\r\n"),
            step("AT+CIPUDPMODE=1,1", "\r\nOK\r\n"),
            step("AT+CIPSTART=1,\"UDP\",\"127.0.0.1\",9", "\r\nOK\r\n\r\n1, ALREADY CONNECT\r\n"),
        ], dialect: .sim800)
        _ = try d.openUDP(localPort: 5000)
        #expect(throws: ATError.sendFailed) { try datagram.withUnsafeBytes { try d.sendUDP(socket: 0, to: peer, payload: $0) } }
        #expect(throws: ATError.socketError(1)) { try d.openUDP() }
        #expect(d.isSocketOpen(0) && !d.isSocketOpen(1))
        // A connection the module still holds (the host restarted) is refused at once, not after 75 s.
        let t0 = d.engine.transport.nowMs()
        #expect(throws: ATError.socketError(2)) { try d.openUDP() }
        #expect(d.engine.transport.nowMs() - t0 < 1_000 && !d.isSocketOpen(1))
        #expect(d.engine.transport.finished)
    }

    @Test func bearerUpAndDownTakeTheAPNAgainAndTheBareAddress() throws {
        let d = makeDriver([
            step("AT+CGDCONT=1,\"IP\",\"internet\"", "\r\nOK\r\n"),
            step("AT+CIPSHUT", "\r\nSHUT OK\r\n"),
            step("AT+CIPMUX=1", "\r\nOK\r\n"),
            step("AT+CSTT=\"internet\"", "\r\nOK\r\n"),
            step("AT+CIICR", "\r\nOK\r\n"),
            step("AT+CIFSR", "\r\n10.0.0.2\r\n"),  // no final result follows
            step("AT+CIPCLOSE=0", "\r\n0, CLOSE OK\r\n"),
            step("AT+CIPSHUT", "\r\nSHUT OK\r\n"),
        ], dialect: .sim800)
        try bytes("internet").withUnsafeBytes { try d.defineContext(apn: $0) }
        let t0 = d.engine.transport.nowMs()
        try d.activateBearer()
        #expect(d.engine.transport.nowMs() - t0 < 1_000)  // nothing waited for a final result after the address
        d.openSockets[0] = true
        try d.closeSocket(0)
        try d.deactivateBearer()
        #expect(d.engine.transport.finished)
        #expect(d.engine.stats.timeouts == 0 && d.engine.stats.strayLines == 0)
    }

    @Test func detectsTheFamilyBeforeSIMComsOtherModules() {
        for id in ["SIMCOM_SIM800L", "SIM800 R14.18", "SIM808 R14.18", "SIMCOM_SIM868", "SIM900 R11.0"] {
            bytes(id).withUnsafeBytes { #expect("\(ModemDialect.detect($0).name)" == "sim800", "\(id)") }
        }
        bytes("SIMCOM_SIM7600E-H").withUnsafeBytes { #expect("\(ModemDialect.detect($0).name)" == "simcom") }
        for id in ["SIMCOM_SIM7000E", "SIM7000G R1529"] {
            bytes(id).withUnsafeBytes { d in
                let dialect = ModemDialect.detect(d)
                #expect("\(dialect.name)" == "sim7000" && dialect.sockets?.style == .simcomCIPSTART && dialect.asksCEREG, "\(id)")
            }
        }
    }
}

/// Single-connection mode (`dialect = sim800-single`, AT+CIPMUX=0): no connection numbers, and data on the line
/// itself after `+IPD,<len>:` (SIM800 manual V1.09 §8.2.15 CIPHEAD, §8.2.20 CIPSRIP `RECV FROM:<ip>:<port>`).
@Suite struct ATDriverSIM800SingleTests {
    static let open: [ScriptStep] = [
        step("AT+CLPORT=\"UDP\",5000", "\r\nOK\r\n"),
        step("AT+CIPUDPMODE=1", "\r\nOK\r\n"),
        step("AT+CIPSTART=\"UDP\",\"127.0.0.1\",9", "\r\nOK\r\n\r\nCONNECT OK\r\n"),
    ]
    /// Bytes a line reader could take for the end of the header or of a line: CR, LF, a colon, NUL, a URC's text.
    static let awkward: [UInt8] = [0x0D, 0x0A, 0x3A, 0x00] + Array("\r\n+IPD,3:OK\r\n".utf8) + [0xFF]

    @Test func dataAfterTheColonIsSplitByLengthWhateverItHolds() throws {
        var t = ScriptedTransport(Self.open + [
            step("AT+CIPUDPMODE=2,\"10.0.0.1\",4500", "\r\nOK\r\n"),
            step("AT+CIPSEND=4", "\r\n> "),
            payloadStep(datagram, "\r\nSEND OK\r\n"),
            step("AT+CIPCLOSE", "\r\nCLOSE OK\r\n"),
        ])
        t.chunk = 3  // the header and the data split across reads
        t.timed = [(at: 2_000, bytes: bytes("\r\nRECV FROM:10.0.0.1:4500\r\n+IPD,\(Self.awkward.count):") + Self.awkward
                        + bytes("RECV FROM:10.0.0.2:4501\r\n+IPD,4:") + datagram + bytes("\r\nCLOSED\r\n"))]
        let d = ATDriver(transport: t, dialect: .sim800Single)
        let s = try d.openUDP(localPort: 5000)
        #expect(s == 0 && d.isSocketOpen(0))
        try datagram.withUnsafeBytes { try d.sendUDP(socket: s, to: peer, payload: $0) }
        guard case .socketData(0, let from, let data)? = try d.nextEvent(timeoutMs: 5_000) else { Issue.record("no data"); return }
        #expect(from == peer && Array(data) == Self.awkward)
        guard case .socketData(0, let from2, let data2)? = try d.nextEvent(timeoutMs: 1_000) else { Issue.record("no data"); return }
        #expect(from2 == UDPEndpoint(address: 0x0A00_0002, port: 4501) && Array(data2) == datagram)
        guard case .socketClosed(0)? = try d.nextEvent(timeoutMs: 1_000) else { Issue.record("no close"); return }
        #expect(!d.isSocketOpen(0))
        d.openSockets[0] = true
        try d.closeSocket(0)
        #expect(d.engine.transport.finished)
        #expect(d.engine.stats.badRawLengths == 0 && d.engine.stats.strayLines == 0 && d.engine.stats.garbageBytes == 0)
    }

    @Test func aHeaderWithoutItsColonIsDroppedAndCounted() throws {
        var t = ScriptedTransport(Self.open)
        t.timed = [(at: 1_000, bytes: bytes("\r\n+IPD,4\r\n\r\n+CMTI: \"SM\",3\r\n"))]
        let d = ATDriver(transport: t, dialect: .sim800Single)
        _ = try d.openUDP(localPort: 5000)
        guard case .smsStored(3)? = try d.nextEvent(timeoutMs: 3_000) else { Issue.record("the next URC was lost"); return }
        #expect(d.engine.stats.badRawLengths == 1)
    }

    @Test func bearerStartsInSingleMode() throws {
        let d = makeDriver([
            step("AT+CGDCONT=1,\"IP\",\"internet\"", "\r\nOK\r\n"),
            step("AT+CIPSHUT", "\r\nSHUT OK\r\n"),
            step("AT+CIPMUX=0", "\r\nOK\r\n"),
            step("AT+CSTT=\"internet\"", "\r\nOK\r\n"),
            step("AT+CIICR", "\r\nOK\r\n"),
            step("AT+CIFSR", "\r\n10.0.0.2\r\n"),
        ], dialect: .sim800Single)
        try bytes("internet").withUnsafeBytes { try d.defineContext(apn: $0) }
        try d.activateBearer()
        #expect(d.engine.transport.finished && d.engine.stats.timeouts == 0)
    }
}

@Suite struct ATLineRuleTests {
    @Test func numberedRowsNeedTheConnectionNumber() {
        let r = ATLineRule("CLOSED", numbered: true)
        for (line, match) in [("0, CLOSED", true), ("12,CLOSED", true), ("5, CLOSED extra", true), ("CLOSED", false),
                              (", CLOSED", false), ("0 CLOSED", false), ("0,  CLOSED", false), ("x, CLOSED", false)] {
            bytes(line).withUnsafeBytes { #expect(r.matches($0) == match, "\(line)") }
        }
        let n = bytes("3, CLOSED").withUnsafeBytes { b -> Int? in
            var f = r.fields(b)
            return f.int()
        }
        #expect(n == 3)
    }

    @Test func vendorFinalsEndOnlyTheCommandInFlight() throws {
        // "1, SEND OK" out of the blue is a stray line, never a URC; inside a command it is its final result.
        var t = ScriptedTransport([step("AT+CIPCLOSE=1", "\r\n1, CLOSE OK\r\n")], initial: "\r\n1, SEND OK\r\n")
        t.chunk = 5
        let e = ATEngine(transport: t, rules: ModemDialect.sim800.rules)
        try e.poll(timeoutMs: 100)
        #expect(e.stats.strayLines == 1 && e.pendingURCs == 0)
        try e.run("AT+CIPCLOSE=1")
        #expect(e.stats.timeouts == 0 && e.transport.finished)
    }
}
