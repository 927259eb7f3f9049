// A command in flight without blocking (ATEngine+Command.swift) and poll's back-pressure, over the scripted
// transport. Prompt and result shapes: TS 27.005 §3.5.1 (AT+CMGS, "> ", Ctrl-Z, +CMGS: <mr>).
import Testing
@testable import BearerDriver

@Suite struct ATEngineCommandTests {
    static let hex = bytes("0011000B916407281553F80000AA0AE8329BFD4697D9EC37")

    static func cmgs() -> ATCommand {
        var c = ATCommand("AT+CMGS=")
        c.int(23)
        return c
    }

    @Test func urcsComeOutWhileTheCommandRuns() throws {
        var t = ScriptedTransport([step("AT+CMGS=23", "\r\n> "), payloadStep(Self.hex + [0x1A], "")])
        // The network takes 30 s; twelve URCs (more than the 8 slots) arrive meanwhile, then the answer.
        let urcs = (0..<12).map { "\r\n+CMTI: \"SM\",\($0)\r\n" }.joined()
        t.timed = [(at: 5_000, bytes: bytes(urcs)), (at: 31_000, bytes: bytes("\r\n+CMGS: 42\r\n\r\nOK\r\n"))]
        let e = ATEngine(transport: t, urcSlots: 8, rules: ModemDialect.generic.rules)
        try Self.hex.withUnsafeBytes { try e.start(Self.cmgs(), timeoutMs: 60_000, payload: .smsPDU(hex: $0)) }
        #expect(e.commandInFlight && e.transport.written == bytes("AT+CMGS=23\r"))
        var indexes: [String] = []
        var response: [String]?
        while response == nil && e.transport.nowMs() < 70_000 {
            if let u = e.nextURC() { indexes.append(u.line.text); continue }
            if let r = try e.advance() { response = (0..<r.count).compactMap { r.line($0)?.text }; break }
            try e.poll(timeoutMs: 1_000)
        }
        #expect(response == ["+CMGS: 42"])
        #expect(indexes == (0..<12).map { "+CMTI: \"SM\",\($0)" })
        #expect(e.stats.urcOverflows == 0 && !e.commandInFlight)
        #expect(e.transport.finished)  // the PDU and Ctrl-Z went at the prompt
    }

    @Test func theBlockingFormOverflowsOnTheSameBurst() throws {
        var t = ScriptedTransport([step("AT+CMGS=23", "\r\n> "), payloadStep(Self.hex + [0x1A], "")])
        let urcs = (0..<12).map { "\r\n+CMTI: \"SM\",\($0)\r\n" }.joined()
        t.timed = [(at: 5_000, bytes: bytes(urcs)), (at: 31_000, bytes: bytes("\r\n+CMGS: 42\r\n\r\nOK\r\n"))]
        let e = ATEngine(transport: t, urcSlots: 8, rules: ModemDialect.generic.rules)
        try Self.hex.withUnsafeBytes { _ = try e.run(Self.cmgs(), timeoutMs: 60_000, payload: .smsPDU(hex: $0)) }
        #expect(e.stats.urcOverflows == 4)
    }

    @Test func pollStopsAtEachURC() throws {
        var t = ScriptedTransport()
        t.chunk = 256
        t.timed = [(at: 1_001, bytes: bytes((0..<20).map { "\r\n+CREG: \($0 % 6)\r\n" }.joined()))]
        let e = ATEngine(transport: t, urcSlots: 2, rules: ModemDialect.generic.rules)
        var taken = 0
        for _ in 0..<40 {
            try e.poll(timeoutMs: 10)
            while e.nextURC() != nil { taken += 1 }
        }
        #expect(taken == 20 && e.stats.urcOverflows == 0)
    }

    @Test func oneCommandAtATime() throws {
        let e = makeEngine([step("AT+CSQ", "")])
        #expect(throws: ATError.commandInvalid) { try e.advance() }  // nothing in flight
        try e.start(ATCommand("AT+CSQ"), timeoutMs: 1_000)
        #expect(throws: ATError.commandInvalid) { try e.start(ATCommand("AT"), timeoutMs: 1_000) }
        #expect(e.transport.written == bytes("AT+CSQ\r"))  // the refused one wrote nothing
        #expect(try e.advance() == nil)
    }

    @Test func noPromptByTheDeadlineLeavesInputModeAndTimesOut() throws {
        let e = makeEngine([step("AT+CMGS=23", "")])
        try Self.hex.withUnsafeBytes { try e.start(Self.cmgs(), timeoutMs: 500, payload: .smsPDU(hex: $0)) }
        try e.poll(timeoutMs: 600)
        #expect(e.commandReady)
        #expect(throws: ATError.timeout) { try e.advance() }
        #expect(e.transport.written == bytes("AT+CMGS=23\r") + [ASCII.esc])
        #expect(!e.commandInFlight && e.stats.timeouts == 1)
    }

    @Test func payloadLongerThanTheStoreIsRefusedBeforeWriting() throws {
        let e = ATEngine(transport: ScriptedTransport(), payloadCapacity: 8, rules: ModemDialect.generic.rules)
        #expect(throws: ATError.invalidArgument) {
            try Self.hex.withUnsafeBytes { try e.start(Self.cmgs(), payload: .smsPDU(hex: $0)) }
        }
        #expect(e.transport.written.isEmpty && !e.commandInFlight)
    }
}
