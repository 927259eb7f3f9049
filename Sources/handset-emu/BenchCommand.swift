import ArgumentParser
import BearerDriver
import Foundation

/// `handset-emu bench`: probes a modem on a serial device with the firmware's own driver and prints a report.
/// stdout carries `key: value` lines; `--trace` writes the AT dialogue to stderr.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Probe a real (or simulated) modem and print identity, SIM, registration, signal and SMS centre.",
        discussion: """
        Opens DEVICE with the firmware's driver (ATDriver over termios), syncs on AT, detects the dialect (or uses \
        --profile) and prints one `key: value` line per item. Items the module does not answer read \
        `unavailable (<error>)`.

        --udp HOST:PORT opens a module UDP socket, sends one datagram and reports whether an answer came back \
        within --udp-timeout seconds. --sms NUMBER sends a short 8-bit SMS in PDU mode.

        Exit status: 0 report complete, 1 a requested UDP/SMS test failed, 2 DEVICE cannot be opened, 3 no answer.

        Examples:
          handset-emu bench --device /dev/ttyUSB0
          handset-emu bench --device /dev/ttyUSB0 --profile simcom --trace
        """)

    @Option(help: "Serial device of the modem (e.g. /dev/ttyUSB0, or a simulator's --link path).")
    var device: String

    @Option(help: "Baud rate (9600...921600).")
    var baud: UInt32 = 115_200

    @Flag(help: "RTS/CTS hardware flow control.")
    var rtscts = false

    @Option(help: "Dialect: auto, simcom, sim800, quectel, ublox or generic.")
    var profile: String = "auto"

    @Option(help: "UDP socket test: send a datagram to HOST:PORT (IPv4) and wait for an answer.")
    var udp: String?

    @Option(name: .customLong("udp-timeout"), help: "Seconds to wait for the UDP answer.")
    var udpTimeout: Double = 3

    @Option(help: "APN to define (AT+CGDCONT) before the UDP test; the module's default when omitted.")
    var apn: String?

    @Option(help: "Send a test SMS (8-bit, PDU mode) to this number.")
    var sms: String?

    @Flag(help: "Print the AT dialogue with timestamps on stderr.")
    var trace = false

    static let dialects: [String: ModemDialect] = [
        "simcom": .simcom, "sim800": .sim800, "quectel": .quectel, "ublox": .ublox, "generic": .generic,
    ]

    func validate() throws {
        guard profile == "auto" || Self.dialects[profile] != nil else {
            throw ValidationError("unknown profile '\(profile)'; use auto, simcom, sim800, quectel, ublox or generic")
        }
        guard (9600...921_600).contains(baud) else { throw ValidationError("--baud must be 9600...921600") }
        if let udp, Self.endpoint(udp) == nil { throw ValidationError("--udp wants IPV4:PORT, got '\(udp)'") }
        guard udpTimeout > 0 && udpTimeout <= 120 else { throw ValidationError("--udp-timeout must be 0...120 s") }
    }

    static func endpoint(_ text: String) -> UDPEndpoint? {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]), port > 0
        else { return nil }
        let host = Array(text[..<colon].utf8)
        guard let addr = host.withUnsafeBytes({ UDPEndpoint.parseAddress($0) }) else { return nil }
        return UDPEndpoint(address: addr, port: port)
    }

    func run() throws {
        let tracer = trace ? ATTracer() : nil
        let port: SerialPort
        do {
            port = try Array(device.utf8).withUnsafeBytes { b in
                try SerialPort(pathBytes: b, baud: baud, rtscts: rtscts)
            }
        } catch {
            let why = (error as? SerialError).map { "\($0.kind): \(String(cString: strerror($0.errno)))" } ?? "\(error)"
            Self.fail("cannot open \(device): \(why)")
            throw ExitCode(2)
        }
        let driver = ATDriver(transport: TracingTransport(base: port, tracer: tracer),
                              dialect: Self.dialects[profile] ?? .generic)
        defer { port.close() }
        do {
            try driver.start(autodetect: profile == "auto")
        } catch {
            Self.fail("no answer from \(device) at \(baud) baud: \(error)")
            throw ExitCode(3)
        }
        let report = BenchReport(driver: driver)
        report.line("device", device)
        report.line("dialect", "\(driver.dialect.name)")
        report.identity()
        report.network()
        var failed = false
        if let udp, let remote = Self.endpoint(udp) {
            failed = !report.udpTest(to: remote, text: udp, apn: apn, timeoutMs: Int(udpTimeout * 1000)) || failed
        }
        if let sms { failed = !report.smsTest(to: sms) || failed }
        if failed { throw ExitCode(1) }
    }

    static func fail(_ message: String) {
        FileHandle.standardError.write(Data("bench: \(message)\n".utf8))
    }
}

/// Reads each item and prints it; a failed item reads `unavailable (...)` and the report goes on.
struct BenchReport {
    let driver: ATDriver<TracingTransport<SerialPort>>

    func line(_ key: String, _ value: String) {
        FileHandle.standardOutput.write(Data("\(key): \(value)\n".utf8))
    }

    func text(_ command: StaticString) -> Result<String, any Error> {
        var buf = [UInt8](repeating: 0, count: 128)
        do {
            let n = try buf.withUnsafeMutableBytes { b in try driver.identity(command, into: b) }
            return .success(Self.unquoted(String(decoding: buf[0..<n], as: UTF8.self)))
        } catch {
            return .failure(error)
        }
    }

    func item(_ key: String, _ command: StaticString) {
        switch text(command) {
        case .success(let v): line(key, v)
        case .failure(let e): line(key, "unavailable (\(e))")
        }
    }

    static func unquoted(_ s: String) -> String {
        s.count >= 2 && s.hasPrefix("\"") && s.hasSuffix("\"") ? String(s.dropFirst().dropLast()) : s
    }

    func identity() {
        item("manufacturer", "AT+CGMI")
        item("model", "AT+CGMM")
        item("revision", "AT+CGMR")
        item("imei", "AT+CGSN")
        do { line("sim", "\(try driver.simState())") } catch { line("sim", "unavailable (\(error))") }
        item("imsi", "AT+CIMI")
        // ICCID has no 27.007 command: the vendors' own, then the common aliases.
        var iccid: Result<String, any Error> = .failure(ATError.unsupported)
        for c: StaticString in ["AT+CCID", "AT+QCCID", "AT+CICCID", "AT+ICCID"] {
            iccid = text(c)
            if case .success = iccid { break }
        }
        switch iccid {
        case .success(let v): line("iccid", v)
        case .failure(let e): line("iccid", "unavailable (\(e))")
        }
    }

    func network() {
        for (key, domain) in [("registration-cs", RegistrationDomain.circuit), ("registration-ps", .packet),
                              ("registration-eps", .eps)] {
            do {
                let r = try driver.registration(domain)
                var v = "\(r.status) (\(r.status.rawValue))"
                if let a = r.area { v += " area=\(String(a, radix: 16, uppercase: true))" }
                if let c = r.cell { v += " cell=\(String(c, radix: 16, uppercase: true))" }
                if let t = r.accessTechnology { v += " act=\(t)" }
                line(key, v)
            } catch {
                line(key, "unavailable (\(error))")
            }
        }
        do {
            let q = try driver.signalQuality()
            let dbm = q.dBm.map { "\($0) dBm" } ?? "unknown"
            line("signal", "rssi=\(q.rssi) (\(dbm)) ber=\(q.ber)\(q.ber == 99 ? " (unknown)" : "")")
        } catch {
            line("signal", "unavailable (\(error))")
        }
        do {
            let o = try driver.currentOperator()
            let name = String(decoding: o.name, as: UTF8.self)
            var v = name.isEmpty ? "none (mode \(o.mode))" : "\"\(name)\""
            if let t = o.accessTechnology { v += " act=\(t)" }
            line("operator", v)
        } catch {
            line("operator", "unavailable (\(error))")
        }
        var buf = [UInt8](repeating: 0, count: 64)
        do {
            let n = try buf.withUnsafeMutableBytes { b in try driver.serviceCentre(into: b) }
            line("sms-centre", String(decoding: buf[0..<n], as: UTF8.self))
        } catch {
            line("sms-centre", "unavailable (\(error))")
        }
    }

    /// Opens a module socket, sends one datagram, waits for any answer; true when one came back.
    func udpTest(to remote: UDPEndpoint, text: String, apn: String?, timeoutMs: Int) -> Bool {
        guard driver.dialect.sockets != nil else {
            line("udp", "unsupported (the \(driver.dialect.name) dialect has no socket commands)")
            return false
        }
        let payload = Array("handset-emu bench \(Int(Date().timeIntervalSince1970))".utf8)
        var socket: Int?
        defer { if let socket { _ = try? driver.closeSocket(socket) } }
        do {
            if let apn { try Array(apn.utf8).withUnsafeBytes { b in try driver.defineContext(apn: b) } }
            if !(try driver.isAttached()) { try driver.attach(timeoutMs: 30_000) }
            try driver.activateBearer(timeoutMs: 30_000)
            let id = try driver.openUDP()
            socket = id
            let t0 = Date()
            try payload.withUnsafeBytes { b in try driver.sendUDP(socket: id, to: remote, payload: b) }
            if let (n, from) = try awaitDatagram(socket: id, timeoutMs: timeoutMs) {
                let ms = Int(Date().timeIntervalSince(t0) * 1000)
                line("udp", "sent \(payload.count) bytes to \(text), answer \(n) bytes\(from.map { " from \(Self.show($0))" } ?? "") after \(ms) ms")
                return true
            }
            line("udp", "sent \(payload.count) bytes to \(text), no answer within \(timeoutMs) ms")
            return false
        } catch {
            line("udp", "failed (\(error))")
            return false
        }
    }

    private func awaitDatagram(socket id: Int, timeoutMs: Int) throws -> (Int, UDPEndpoint?)? {
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        var buf = [UInt8](repeating: 0, count: 1500)
        while Date() < deadline {
            let left = max(1, Int(deadline.timeIntervalSinceNow * 1000))
            guard let e = try driver.nextEvent(timeoutMs: min(left, 200)) else { continue }
            switch e {
            case .socketData(let s, let from, let bytes) where s == id: return (bytes.count, from)
            case .socketReadable(let s) where s == id:
                let r = try buf.withUnsafeMutableBytes { b in try driver.receiveUDP(socket: id, into: b) }
                if r.count > 0 { return (r.count, r.from) }
            case .socketClosed(let s) where s == id || s == -1: throw ATError.noSuchSocket
            default: continue
            }
        }
        return nil
    }

    static func show(_ e: UDPEndpoint) -> String {
        let a = e.address
        return "\(a >> 24).\(a >> 16 & 0xFF).\(a >> 8 & 0xFF).\(a & 0xFF):\(e.port)"
    }

    /// Sends one 8-bit SMS-SUBMIT; true when the module returned a message reference.
    func smsTest(to number: String) -> Bool {
        let data = Array("handset-emu bench".utf8)
        do {
            let to = try Array(number.utf8).withUnsafeBytes { b in try SMSAddress(number: b) }
            var pdu = [UInt8](repeating: 0, count: 200)
            let r = try data.withUnsafeBytes { d in
                try pdu.withUnsafeMutableBytes { o in
                    try SMSPDU.encodeSubmit(to: to, data: d, part: 0, options: SMSSubmitOptions(), into: o)
                }
            }
            var hex = [UInt8](repeating: 0, count: 2 * r.octets)
            _ = try pdu[0..<r.octets].withUnsafeBytes { p in
                try hex.withUnsafeMutableBytes { o in try SMSHex.encode(p, into: o) }
            }
            let mr = try hex.withUnsafeBytes { h in try driver.smsSend(pduHex: h, tpduLength: r.tpduLength) }
            line("sms", "sent \(data.count) bytes to \(number), message reference \(mr)")
            return true
        } catch {
            line("sms", "failed (\(error))")
            return false
        }
    }
}

/// Prints what crosses the serial line, one line per AT line, with seconds since start.
final class ATTracer {
    private let start = Date()
    private var pending: [UInt8] = []

    func sent(_ bytes: UnsafeRawBufferPointer) {
        flushPending()
        emit(">", Array(bytes))
    }

    func received(_ bytes: UnsafeRawBufferPointer) {
        for b in bytes {
            if b == 0x0A {
                if !pending.isEmpty { emit("<", pending) }
                pending.removeAll(keepingCapacity: true)
            } else if b != 0x0D {
                pending.append(b)
            }
        }
    }

    /// A prompt (`> `, `@`) has no line end: show it before our next write.
    private func flushPending() {
        if !pending.isEmpty { emit("<", pending) }
        pending.removeAll(keepingCapacity: true)
    }

    private func emit(_ dir: String, _ bytes: [UInt8]) {
        var s = String(format: "[%8.3f] ", Date().timeIntervalSince(start)) + dir + " "
        for b in bytes {
            switch b {
            case 0x0D: s += "\\r"
            case 0x0A: s += "\\n"
            case 0x20...0x7E: s.unicodeScalars.append(Unicode.Scalar(b))
            default: s += String(format: "\\x%02X", b)
            }
        }
        FileHandle.standardError.write(Data((s + "\n").utf8))
    }
}

/// A transport that shows the bytes it carries to an optional tracer.
struct TracingTransport<Base: ByteTransport>: ByteTransport {
    var base: Base
    let tracer: ATTracer?

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(SerialError) -> Int {
        let n = try base.read(into: buffer)
        if n > 0, let tracer { tracer.received(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) }
        return n
    }

    mutating func write(_ bytes: UnsafeRawBufferPointer, timeoutMs: Int) throws(SerialError) {
        tracer?.sent(bytes)
        try base.write(bytes, timeoutMs: timeoutMs)
    }

    mutating func waitReadable(timeoutMs: Int) throws(SerialError) -> Bool {
        try base.waitReadable(timeoutMs: timeoutMs)
    }

    func nowMs() -> UInt64 { base.nowMs() }
    mutating func pause(ms: Int) { base.pause(ms: ms) }
}
