// A scripted in-memory modem for the engine and driver unit tests, on a virtual clock so timeouts
// cost no wall time. (Real-pty integration tests live in ATEnginePtyTests.swift.)
import Testing
@testable import BearerDriver

struct ScriptStep {
    /// Exact bytes the driver must write for this step (a command with its CR, or a payload).
    var expect: [UInt8]
    /// Bytes the modem answers with.
    var reply: [UInt8]
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Script helpers: `step("AT+CSQ", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n")` expects "AT+CSQ\r".
func step(_ command: String, _ reply: String) -> ScriptStep {
    ScriptStep(expect: bytes(command + "\r"), reply: bytes(reply))
}

func payloadStep(_ payload: [UInt8], _ reply: String) -> ScriptStep {
    ScriptStep(expect: payload, reply: bytes(reply))
}

struct ScriptedTransport: ByteTransport {
    var steps: [ScriptStep]
    var stepIndex = 0
    var inbound: [UInt8] = []
    var written: [UInt8] = []
    var pendingWrite: [UInt8] = []
    var mismatches = 0
    var clock: UInt64 = 1_000
    /// Bytes that appear at a given virtual time (URCs out of the blue).
    var timed: [(at: UInt64, bytes: [UInt8])] = []
    /// Bytes handed out per read, to exercise lines split across reads.
    var chunk = 64
    var paused = 0

    init(_ steps: [ScriptStep] = [], initial: String = "") {
        self.steps = steps
        inbound = bytes(initial)
    }

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(SerialError) -> Int {
        let n = min(buffer.count, inbound.count, chunk)
        for i in 0..<n { buffer[i] = inbound[i] }
        inbound.removeFirst(n)
        return n
    }

    mutating func write(_ data: UnsafeRawBufferPointer, timeoutMs: Int) throws(SerialError) {
        written.append(contentsOf: data)
        pendingWrite.append(contentsOf: data)
        guard stepIndex < steps.count else { return }
        let want = steps[stepIndex].expect
        if pendingWrite.count >= want.count {
            if pendingWrite.prefix(want.count).elementsEqual(want) {  // no temporary array: the malloc test runs through here
                inbound.append(contentsOf: steps[stepIndex].reply)
                pendingWrite.removeFirst(want.count)
                stepIndex += 1
            } else {
                mismatches += 1
                pendingWrite.removeAll()
            }
        }
    }

    mutating func waitReadable(timeoutMs: Int) throws(SerialError) -> Bool {
        if !inbound.isEmpty { return true }
        let limit = clock + UInt64(timeoutMs)
        if let i = timed.indices.min(by: { timed[$0].at < timed[$1].at }), timed[i].at <= limit {
            clock = max(clock, timed[i].at)
            inbound.append(contentsOf: timed[i].bytes)
            timed.remove(at: i)
            return true
        }
        clock = limit
        return false
    }

    func nowMs() -> UInt64 { clock }

    mutating func pause(ms: Int) {
        paused += ms
        clock += UInt64(ms)
    }

    var finished: Bool { stepIndex == steps.count && mismatches == 0 }
}

func makeEngine(_ steps: [ScriptStep], initial: String = "", rules: ATLineRules = ModemDialect.generic.rules,
                urcSlots: Int = 8, lineCapacity: Int = 600) -> ATEngine<ScriptedTransport> {
    ATEngine(transport: ScriptedTransport(steps, initial: initial), lineCapacity: lineCapacity,
             urcSlots: urcSlots, rules: rules)
}

extension UnsafeRawBufferPointer {
    var text: String { String(decoding: self, as: UTF8.self) }
}

@Suite struct ATTestTransportTests {
    @Test func scriptAnswersOnlyTheExpectedCommand() throws {
        var t = ScriptedTransport([step("AT", "\r\nOK\r\n")])
        try bytes("ATX\r").withUnsafeBytes { try t.write($0, timeoutMs: 0) }
        #expect(t.mismatches == 1)
        #expect(t.inbound.isEmpty)
        try bytes("AT\r").withUnsafeBytes { try t.write($0, timeoutMs: 0) }
        #expect(t.inbound == bytes("\r\nOK\r\n"))
    }

    @Test func virtualClockAdvancesOnTimeout() throws {
        var t = ScriptedTransport()
        let ready = try t.waitReadable(timeoutMs: 250)
        #expect(!ready)
        #expect(t.nowMs() == 1_250)
    }
}
