// Test-side serial client: opens the simulator's pty slave the way a host program opens /dev/ttyUSB0.
import Foundation
import Glibc
@testable import ModemSim

final class ModemClient {
    let fd: Int32
    private(set) var received: [UInt8] = []

    init(path: String) throws {
        let f = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK)
        guard f >= 0 else { throw SystemCallError(call: "open \(path)", errno: errno) }
        var t = termios()
        tcgetattr(f, &t)
        cfmakeraw(&t)
        tcsetattr(f, TCSANOW, &t)
        fd = f
    }

    deinit { close(fd) }

    func write(_ text: String) { write(Array(text.utf8)) }

    func write(_ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n > 0 { off += n } else { usleep(1000) }
        }
    }

    /// Reads until `done` holds for everything read since the last `take`, or the timeout passes.
    @discardableResult
    func read(timeout: TimeInterval = 3, until done: ([UInt8]) -> Bool) -> [UInt8] {
        let deadline = Date().addingTimeInterval(timeout)
        while !done(received), Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 20) > 0 else { continue }
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 { received += buf[0..<n] }
        }
        return received
    }

    func text(timeout: TimeInterval = 3, until needle: String) -> String {
        String(decoding: read(timeout: timeout) { String(decoding: $0, as: UTF8.self).contains(needle) }, as: UTF8.self)
    }

    /// Everything read so far, and forget it.
    func take() -> String {
        defer { received = [] }
        return String(decoding: received, as: UTF8.self)
    }

    static let finals = ["\r\nOK\r\n", "\r\nERROR\r\n", "+CME ERROR:", "+CMS ERROR:", "SEND OK\r\n", "SEND FAIL\r\n"]

    /// Sends one command line and returns the answer up to and including its final result code.
    func command(_ line: String, timeout: TimeInterval = 3) -> String {
        _ = take()
        write(line + "\r")
        read(timeout: timeout) { bytes in
            let s = String(decoding: bytes, as: UTF8.self)
            return ModemClient.finals.contains { f in s.contains(f) && (!f.hasPrefix("+") || s.hasSuffix("\r\n")) }
        }
        return take()
    }

    /// Waits for the prompt after AT+CMGS / AT+CIPSEND and friends.
    func commandToPrompt(_ line: String, prompt: String, timeout: TimeInterval = 3) -> String {
        _ = take()
        write(line + "\r")
        read(timeout: timeout) { String(decoding: $0, as: UTF8.self).hasSuffix(prompt) }
        return take()
    }

    /// Sends "AT" until the module answers OK (it is silent while booting).
    func waitReady(timeout: TimeInterval = 5) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if command("AT", timeout: 0.3).contains("OK") { return true }
        }
        return false
    }
}

/// Collects network events from any thread.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [NetworkEvent] = []
    func append(_ e: NetworkEvent) { lock.lock(); items.append(e); lock.unlock() }
    var all: [NetworkEvent] { lock.lock(); defer { lock.unlock() }; return items }
    func clear() { lock.lock(); items = []; lock.unlock() }
    func named(_ name: String) -> [NetworkEvent] { all.filter { $0.name == name } }

    func wait(for name: String, count: Int = 1, timeout: TimeInterval = 3) -> [NetworkEvent] {
        let deadline = Date().addingTimeInterval(timeout)
        while named(name).count < count, Date() < deadline { usleep(10_000) }
        return named(name)
    }
}

/// A running simulator with a connected client, torn down by `close()`.
struct Bench {
    let sim: ModemSimulator
    let client: ModemClient
    let events: EventLog
    let link: String

    init(_ profile: ModemProfile, faults: String = "", seed: UInt64 = 1, smpp: SMPPOptions? = nil,
         packetGateway: PacketGatewayConfig? = nil) throws {
        let log = EventLog()
        link = NSTemporaryDirectory() + "modemsim-\(profile.name)-\(UUID().uuidString.prefix(8))"
        sim = ModemSimulator(profile: profile, linkPath: link, faults: try FaultPlan(spec: faults, seed: seed),
                             smpp: smpp, packetGateway: packetGateway, timing: .fast, events: { log.append($0) })
        try sim.start()
        client = try ModemClient(path: link)
        events = log
    }

    /// Boots, turns echo off and waits for registration.
    func ready() -> Bool {
        guard client.waitReady() else { return false }
        guard client.command("ATE0").contains("OK") else { return false }
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline {
            if client.command("AT+CREG?").contains("+CREG: 0,1") { return true }
            usleep(20_000)
        }
        return false
    }

    func close() { sim.stop() }
}

/// A plain UDP socket on 127.0.0.1 standing in for a server on the Internet.
final class UDPPeerSocket {
    let fd: Int32
    let port: Int
    init() {
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var a = LoopbackUDPSocket.loopback(port: 0)
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            getsockname(s, $0, &len) } }
        fd = s
        port = Int(UInt16(bigEndian: a.sin_port))
    }
    deinit { close(fd) }

    func receive(timeout: Int32 = 2000) -> (bytes: [UInt8], port: Int)? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, timeout) > 0 else { return nil }
        var buf = [UInt8](repeating: 0, count: 2048)
        var from = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let n = buf.withUnsafeMutableBytes { b in withUnsafeMutablePointer(to: &from) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, b.baseAddress, b.count, 0, $0, &len) } } }
        return n >= 0 ? (Array(buf[0..<n]), Int(UInt16(bigEndian: from.sin_port))) : nil
    }

    func send(_ bytes: [UInt8], to port: Int) {
        var a = LoopbackUDPSocket.loopback(port: port)
        _ = bytes.withUnsafeBytes { b in withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } }
    }
}
