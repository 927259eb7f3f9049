// Heap use on the per-line path, counted by ordo-one/malloc-interposer when it is loaded into the test
// process (the package's test bundle links it through HandsetCoreTests). Found with dlsym so this target
// needs no new dependency; without the interposer the suite is skipped, not passed vacuously.
import Testing
import Glibc
@testable import BearerDriver

// Swift Testing's own tasks allocate on other threads while we count; only this thread's count.
nonisolated(unsafe) private var countedThread: pthread_t = 0
nonisolated(unsafe) private var threadMallocs: Int64 = 0

private struct Interposer {
    typealias Void0 = @convention(c) () -> Void
    typealias Int0 = @convention(c) () -> Int32
    typealias Hook = @convention(c) (Int) -> Void
    typealias SetHook = @convention(c) (Hook?) -> Void
    let enable: Void0
    let disable: Void0
    let setHook: SetHook

    static func load() -> Interposer? {
        let h = dlopen(nil, RTLD_NOW)
        guard let e = dlsym(h, "malloc_interposer_enable"), let d = dlsym(h, "malloc_interposer_disable"),
              let s = dlsym(h, "malloc_interposer_set_allocation_hook"),
              let installed = dlsym(h, "malloc_interposer_global_hooks_installed"),
              unsafeBitCast(installed, to: Int0.self)() != 0 else { return nil }
        return Interposer(enable: unsafeBitCast(e, to: Void0.self), disable: unsafeBitCast(d, to: Void0.self),
                          setHook: unsafeBitCast(s, to: SetHook.self))
    }

    /// mallocs performed on this thread by `body`.
    func mallocs(_ body: () throws -> Void) rethrows -> Int64 {
        countedThread = pthread_self()
        threadMallocs = 0
        setHook { _ in if pthread_equal(pthread_self(), countedThread) != 0 { threadMallocs += 1 } }
        enable()
        defer {
            disable()
            setHook(nil)
        }
        try body()
        return threadMallocs
    }
}

/// Answers every command line with the same canned reply, from memory allocated up front, so the
/// harness itself never touches the heap while counting.
private struct CannedModem: ByteTransport {
    let reply: UnsafeMutableRawBufferPointer
    var readPos: Int
    var clock: UInt64 = 0

    init(_ text: String) {
        let b = Array(text.utf8)
        reply = UnsafeMutableRawBufferPointer.allocate(byteCount: b.count, alignment: 1)
        reply.copyBytes(from: b)
        readPos = b.count
    }

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(SerialError) -> Int {
        let n = min(buffer.count, reply.count - readPos, 64)
        if n > 0 { buffer.baseAddress!.copyMemory(from: reply.baseAddress! + readPos, byteCount: n) }
        readPos += n
        return n
    }

    mutating func write(_ bytes: UnsafeRawBufferPointer, timeoutMs: Int) throws(SerialError) {
        if bytes.count > 0 && bytes[bytes.count - 1] == 0x0D { readPos = 0 }  // `.last` allocates in unoptimised builds
    }

    mutating func waitReadable(timeoutMs: Int) throws(SerialError) -> Bool {
        if readPos < reply.count { return true }
        clock += UInt64(timeoutMs)
        return false
    }

    func nowMs() -> UInt64 { clock }
}

@Suite(.enabled(if: Interposer.load() != nil, "malloc-interposer not loaded in this process"))
struct ATEngineAllocationTests {
    // Answer, a URC between answer and OK, a registration URC, +CMTI, garbage, a stray OK, a two-line +CMT.
    static let reply = "\r\n+CSQ: 20,99\r\n\r\n+CEREG: 5\r\n\r\nOK\r\n"
        + "\r\n+CREG: 1,\"00C3\",\"0000A1B2\",7\r\n\r\n+CMTI: \"SM\",7\r\n\u{7F}\u{01}junk\r\nOK\r\n"
        + "\r\n+CMT: ,24\r\n\(deliverPDU)\r\n"

    @Test func commandsAndURCsDoNotAllocatePerLine() throws {
        let interposer = try #require(Interposer.load())
        let modem = CannedModem(Self.reply)
        defer { modem.reply.deallocate() }
        let d = ATDriver(transport: modem, dialect: .generic)
        var events = 0
        func round() throws {
            _ = try d.signalQuality()
            while let e = try d.nextEvent(timeoutMs: 0) {
                if case .other = e { Issue.record("unexpected URC") }
                events += 1
            }
        }
        try round()  // warm-up: lazy runtime metadata, first touch of buffers
        let lines = d.engine.stats.lines
        let rounds = 500
        let count = try interposer.mallocs {
            for _ in 0..<rounds { try round() }
        }
        #expect(events == 4 * (rounds + 1))
        #expect(d.engine.stats.lines - lines == 9 * rounds)
        #expect(count == 0, "mallocs on the AT line path: \(count)")
    }

    /// 500 rounds of a socket close whose reply carries pushed data and a close URC: the count of mallocs.
    func socketRounds(_ reply: String, dialect: ModemDialect, dataLength: Int, closedSocket: Int) throws -> Int64 {
        let interposer = try #require(Interposer.load())
        let modem = CannedModem(reply)
        defer { modem.reply.deallocate() }
        let d = ATDriver(transport: modem, dialect: dialect)
        var data = 0, closed = 0
        func round() throws {
            d.openSockets[0] = true
            try d.closeSocket(0)
            while let e = try d.nextEvent(timeoutMs: 0) {
                switch e {
                case .socketData(0, let from, let bytes) where from?.port == 4500 && bytes.count == dataLength: data += 1
                case .socketClosed(let id) where id == closedSocket: closed += 1
                default: Issue.record("unexpected event")
                }
            }
        }
        try round()
        let count = try interposer.mallocs {
            for _ in 0..<500 { try round() }
        }
        #expect(data == 501 && closed == 501)
        #expect(d.engine.stats.timeouts == 0 && d.engine.stats.badRawLengths == 0)
        return count
    }

    /// The socket URC table (SIM800: pushed data with its sender, a numbered close, a vendor final) costs no heap either.
    @Test func socketURCTableDoesNotAllocatePerLine() throws {
        let count = try socketRounds("\r\n+RECEIVE,0,4,10.0.0.1:4500\r\n\u{1}\r\n\u{3}\r\n3, CLOSED\r\n\r\n0, CLOSE OK\r\n",
                                     dialect: .sim800, dataLength: 4, closedSocket: 3)
        #expect(count == 0, "mallocs on the socket URC path: \(count)")
    }

    /// SIM800 single-connection data, split off the line by its length (`+IPD,<len>:<data>`), costs no heap either.
    @Test func inlineSocketDataDoesNotAllocate() throws {
        let count = try socketRounds("\r\nRECV FROM:10.0.0.1:4500\r\n+IPD,7:\r\n:\u{0}+\u{FF}CLOSED\r\n\r\nCLOSE OK\r\n",
                                     dialect: .sim800Single, dataLength: 7, closedSocket: 0)
        #expect(count == 0, "mallocs on the inline data path: \(count)")
    }
}
