// The AT receive path: an ATEngine reads the input as the modem's output through an in-memory transport on a
// virtual clock; every URC and response line is then parsed as ATFields and NetworkRegistration.
// Byte 0: bits 0-1 pick the dialect, bits 2-5 the read chunk (1-16 bytes), bits 6-7 what the engine does:
// 0 runs AT, 1 runs AT+CREG?, 2 runs AT+CMGL=4, 3 runs AT+CMGS=5 with a payload after the prompt.
import BearerDriver

struct FuzzTransport: ByteTransport {
    let input: UnsafeRawBufferPointer
    var pos = 0
    var clock: UInt64 = 1_000
    let chunk: Int

    var drained: Bool { pos >= input.count }

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(SerialError) -> Int {
        let n = min(buffer.count, chunk, input.count - pos)
        for i in 0..<n { buffer[i] = input[pos + i] }
        pos += n
        clock += 1
        return n
    }
    mutating func write(_ bytes: UnsafeRawBufferPointer, timeoutMs: Int) throws(SerialError) { clock += 1 }
    mutating func waitReadable(timeoutMs: Int) throws(SerialError) -> Bool {
        if pos < input.count { return true }
        clock += UInt64(max(timeoutMs, 1))
        return false
    }
    func nowMs() -> UInt64 { clock }
    mutating func pause(ms: Int) { clock += UInt64(max(ms, 0)) }
}

func parseLine(_ line: UnsafeRawBufferPointer, readAnswer: Bool) {
    _ = NetworkRegistration.parse(line, readAnswer: readAnswer)
    var f = ATFields(line)
    var n = 0
    while !f.isAtEnd && n < 64 {
        _ = f.optionalInt(); _ = f.optionalHex(); _ = f.string()
        n += 1
    }
    var g = ATFields(line, after: "+CMT:")
    _ = g.string(); _ = g.int()
    _ = UDPEndpoint.parseAddress(line)
}

func drainURCs<T: ByteTransport>(_ e: ATEngine<T>) {
    while let u = e.nextURC() {
        parseLine(u.line, readAnswer: false)
        parseLine(u.body, readAnswer: false)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzATParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let all = UnsafeRawBufferPointer(start: data, count: size)
    let b = all[0]
    let dialect: ModemDialect
    switch b & 3 {
    case 0: dialect = .generic
    case 1: dialect = .simcom
    case 2: dialect = .quectel
    default: dialect = .ublox
    }
    let t = FuzzTransport(input: UnsafeRawBufferPointer(rebasing: all[1...]), chunk: 1 + Int(b >> 2 & 15))
    let e = ATEngine(transport: t, lineCapacity: 128, responseCapacity: 512, urcSlots: 4, urcSlotCapacity: 256,
                     rules: dialect.rules)
    e.defaultTimeoutMs = 200
    do {
        let r: ATResponse
        switch b >> 6 {
        case 1: r = try e.run("AT+CREG?")
        case 2: r = try e.run("AT+CMGL=4")
        case 3:
            var body: (UInt64, UInt8) = (0x0011_2233_4455_6677, 0x88)
            r = try withUnsafeBytes(of: &body) { p throws(ATError) in
                try e.run(ATCommand("AT+CMGS=5"), payload: ATPayload(bytes: UnsafeRawBufferPointer(rebasing: p[0..<9])))
            }
        default: r = try e.run("AT")
        }
        for i in 0..<r.count { if let l = r.line(i) { parseLine(l, readAnswer: true) } }
    } catch {}
    drainURCs(e)
    var rounds = 0
    while !e.transport.drained && rounds < 10_000 {
        do { try e.poll(timeoutMs: 50) } catch { e.resynchronise() }
        drainURCs(e)
        rounds += 1
    }
    _ = e.takeRebootIndication()
    _ = e.stats
    return 0
}
