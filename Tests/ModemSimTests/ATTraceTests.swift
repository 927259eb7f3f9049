import Foundation
import Testing
@testable import ModemSim

/// Collects trace lines from the simulator's queue.
final class TraceLog: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [ATTraceLine] = []
    func append(_ l: ATTraceLine) { lock.withLock { lines.append(l) } }
    var all: [ATTraceLine] { lock.withLock { lines } }
    var text: [String] { all.map(\.description) }
}

// The trace hook sees the AT dialogue as the module does: each host line once, each module line once, prompts
// before the host's answer to them. Command forms: ITU-T V.250 §5.2 (lines end in CR), 3GPP TS 27.005 §3.5.1
// (+CMGS prompt "> ", ESC cancels).
@Suite(.serialized) struct ATTraceTests {
    func bench(_ log: TraceLog) throws -> (ModemSimulator, ModemClient) {
        let link = NSTemporaryDirectory() + "modemsim-trace-\(UUID().uuidString.prefix(8))"
        let sim = ModemSimulator(profile: .simcom, linkPath: link, timing: .fast, events: { _ in }, trace: { log.append($0) })
        try sim.start()
        return (sim, try ModemClient(path: link))
    }

    @Test func hookSeesACommandAndItsAnswer() throws {
        let log = TraceLog()
        let (sim, c) = try bench(log)
        defer { sim.stop() }
        #expect(c.waitReady())
        #expect(c.command("ATE0").contains("OK"))
        #expect(c.command("AT+CGMI").contains("SIMCOM"))
        let t = log.text
        let cmd = try #require(t.firstIndex(of: "AT> AT+CGMI"))
        // Its answer follows: the manufacturer line, then OK.
        #expect(t[cmd...].contains { $0.hasPrefix("AT< SIMCOM") })
        #expect(t[cmd...].contains("AT< OK"))
        #expect(t.contains("AT< RDY") || t.contains { $0.hasPrefix("AT< +CPIN") })  // boot banners are module lines
        #expect(log.all.filter { $0.direction == .toModule }.allSatisfy { !$0.bytes.contains(0x0D) })
    }

    @Test func promptIsShownBeforeTheHostsAnswerToIt() throws {
        let log = TraceLog()
        let (sim, c) = try bench(log)
        defer { sim.stop() }
        #expect(c.waitReady())
        #expect(c.command("ATE0").contains("OK"))
        _ = c.take()
        c.write("AT+CMGS=10\r")
        _ = c.text(until: "> ")
        c.write([0x1B])
        _ = c.text(until: "OK")
        let t = log.text
        let cmd = try #require(t.firstIndex(of: "AT> AT+CMGS=10"))
        #expect(Array(t[(cmd + 1)...].prefix(2)) == ["AT< > ", "AT> <ESC>"])
    }

    @Test func rendering() {
        #expect(ATTraceLine(.toModule, Array("AT+CSQ".utf8)).description == "AT> AT+CSQ")
        #expect(ATTraceLine(.fromModule, Array("+CMTI: \"SM\",1".utf8)).description == "AT< +CMTI: \"SM\",1")
        #expect(ATTraceLine(.toModule, [0x45, 0x00, 0xFF], binary: true).description == "AT> hex(3): 4500ff")
        #expect(ATTraceLine(.toModule, Array("0011".utf8), terminator: "^Z").description == "AT> 0011 <^Z>")
        // Control bytes make a line binary even when not marked so.
        #expect(ATTraceLine(.fromModule, [0x41, 0x07]).description == "AT< hex(2): 4107")
        let long = ATTraceLine(.toModule, [UInt8](repeating: 0x41, count: 500)).description
        #expect(long.hasSuffix("… (500 bytes)"))
        #expect(long.count == 4 + ATTraceLine.maxShown + "… (500 bytes)".count)
        let longHex = ATTraceLine(.toModule, [UInt8](repeating: 0xAB, count: 200), binary: true).description
        #expect(longHex.hasPrefix("AT> hex(200): abab"))
        #expect(longHex.hasSuffix("… (200 bytes)"))
    }

    @Test func splitterHoldsAPartialLineUntilFlushed() {
        var s = ATTraceSplitter()
        #expect(s.module(Array("\r\nOK\r\n\r\n> ".utf8)) == [ATTraceLine(.fromModule, Array("OK".utf8))])
        #expect(s.module([]) == [])
        #expect(s.flush() == ATTraceLine(.fromModule, Array("> ".utf8)))
        #expect(s.flush() == nil)  // flushing took it: nothing is shown twice
    }
}
