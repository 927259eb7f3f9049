import Benchmark
import BearerDriver

// The AT engine's per-line path and SMS reassembly. Each iteration parses 1,000 URC lines fed in 64-byte reads
// (as a UART driver would hand them over) and drains them, or decodes and reassembles one 4-part SMS.
// Run with --scale: the AT rows are then per line; mallocs per line should be 0.

/// Serves one fixed block of lines per refill, in small reads.
struct BlockTransport: ByteTransport {
    let block: UnsafeRawBufferPointer
    var cursor = 0
    var remaining = 0
    mutating func refill() { cursor = 0; remaining = block.count }
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(SerialError) -> Int {
        let n = min(64, remaining, buffer.count)
        if n > 0 { buffer.baseAddress!.copyMemory(from: block.baseAddress! + cursor, byteCount: n) }
        cursor += n
        remaining -= n
        return n
    }
    mutating func write(_ bytes: UnsafeRawBufferPointer, timeoutMs: Int) throws(SerialError) {}
    mutating func waitReadable(timeoutMs: Int) throws(SerialError) -> Bool { remaining > 0 }
    func nowMs() -> UInt64 { 0 }
    mutating func pause(ms: Int) {}
}

func urcBlock(lines: Int) -> UnsafeRawBufferPointer {
    let samples = ["+CREG: 1,\"1A2B\",\"01C3D4E5\",7", "+CMTI: \"SM\",3", "+QIURC: \"recv\",0", "+CEREG: 5", "+CGREG: 1"]
    var text = ""
    for i in 0..<lines { text += "\r\n" + samples[i % samples.count] + "\r\n" }
    let bytes = Array(text.utf8)
    let p = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
    p.copyBytes(from: bytes)
    return UnsafeRawBufferPointer(p)
}

/// A 4-part SMS-DELIVER (8-bit, 16-bit ports 16400, 8-bit concat ref 7) as +CMGR would show each part.
func fourPartSMS() -> [[UInt8]] {
    (1...4).map { seq -> [UInt8] in
        var tpdu: [UInt8] = [0x44, 0x0B, 0x91, 0x51, 0x55, 0x10, 0x99, 0xF9, 0x00, 0x00, 0x04,
                             0x62, 0x11, 0x12, 0x01, 0x91, 0x60, 0x00]  // DELIVER, UDHI; OA +15550199; PID; DCS 8-bit; SCTS
        let udh: [UInt8] = [0x0B, 0x05, 0x04, 0x40, 0x10, 0x40, 0x10, 0x00, 0x03, 0x07, 0x04, UInt8(seq)]
        let data = [UInt8](repeating: UInt8(seq), count: 120)
        tpdu.append(UInt8(udh.count + data.count))
        tpdu += udh + data
        return Array(("00" + tpdu.map { String(format: "%02X", $0) }.joined()).utf8)
    }
}

let benchmarks: @Sendable () -> Void = {
    let config = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .cpuTotal, .mallocCountTotal],
        timeUnits: .nanoseconds, warmupIterations: 5, scalingFactor: .kilo,
        maxDuration: .milliseconds(800), maxIterations: 100_000)

    Benchmark("0 ATLine harness baseline (empty iteration)", configuration: config) { b in
        for i in b.scaledIterations { blackHole(i) }
    }

    let block = urcBlock(lines: 1_000)
    let engine = ATEngine(transport: BlockTransport(block: block))
    Benchmark("AT URC lines parsed and drained", configuration: config) { _ in
        engine.transport.refill()
        var seen = 0
        while engine.transport.remaining > 0 {
            try? engine.poll(timeoutMs: 0)
            while let u = engine.nextURC() { seen &+= u.line.count }
        }
        blackHole(seen)
    }

    let sms = SMSFixture()
    let once = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal], timeUnits: .nanoseconds, warmupIterations: 5,
        maxDuration: .milliseconds(800), maxIterations: 100_000)
    Benchmark("4-part SMS decoded and reassembled", configuration: once) { _ in
        blackHole(sms.run())
    }
}

/// Buffers allocated once, so an iteration measures only decoding and reassembly.
final class SMSFixture: @unchecked Sendable {
    var reassembler = SMSReassembler<4, 4>(timeout: 600)
    let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 600, alignment: 8)
    let parts: [UnsafeRawBufferPointer] = fourPartSMS().map { bytes in
        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        p.copyBytes(from: bytes)
        return UnsafeRawBufferPointer(p)
    }

    func run() -> Int {
        var total = 0
        for hex in parts {
            guard let m = try? SMSPDU.decode(hex: hex) else { continue }
            if case .complete(let r)? = try? reassembler.accept(m, now: 0, into: out) { total = r.count }
        }
        precondition(total == 480, "reassembly failed")
        return total
    }
}
