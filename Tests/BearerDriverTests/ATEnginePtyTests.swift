// The driver over a REAL pty pair: the test plays a scripted modem on the master side in a thread,
// the driver opens the slave like a serial device. Exchanges follow TS 27.007 / 27.005 and the
// SIMCom and u-blox manuals (see the unit tests for the line-level cases).
import Testing
import Foundation
import CHandsetShim
@testable import BearerDriver

/// A tiny scripted modem on the pty master: waits for each expected write, answers, and can push
/// unsolicited bytes after a delay. Returns the number of steps completed.
final class PtyModem: @unchecked Sendable {
    let fd: Int32
    let steps: [ScriptStep]
    let unsolicited: [(afterStep: Int, delayMs: Int, bytes: [UInt8])]
    private let done = DispatchSemaphore(value: 0)
    private(set) var completed = 0

    init(fd: Int32, steps: [ScriptStep], unsolicited: [(afterStep: Int, delayMs: Int, bytes: [UInt8])] = []) {
        self.fd = fd
        self.steps = steps
        self.unsolicited = unsolicited
    }

    func start() {
        Thread.detachNewThread { self.run() }
    }

    /// Waits for the script to end; true when every step was seen.
    func finish(timeoutMs: Int = 5000) -> Bool {
        _ = done.wait(timeout: .now() + .milliseconds(timeoutMs))
        return completed == steps.count
    }

    private func send(_ b: [UInt8]) {
        var port = SerialPort(adopting: fd)
        try? b.withUnsafeBytes { try port.write($0, timeoutMs: 1000) }
    }

    private func run() {
        var port = SerialPort(adopting: fd)
        var input: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 512)
        let deadline = hs_monotonic_ms() + 8000
        for u in unsolicited where u.afterStep == 0 {
            hs_sleep_ms(UInt32(u.delayMs))
            send(u.bytes)
        }
        while completed < steps.count && hs_monotonic_ms() < deadline {
            guard (try? port.waitReadable(timeoutMs: 50)) == true else { continue }
            guard let n = try? buf.withUnsafeMutableBytes({ try port.read(into: $0) }) else { break }
            input += buf.prefix(n)
            let want = steps[completed].expect
            if input.count >= want.count {
                if Array(input.prefix(want.count)) != want { break }
                input.removeFirst(want.count)
                send(steps[completed].reply)
                completed += 1
                for u in unsolicited where u.afterStep == completed {
                    hs_sleep_ms(UInt32(u.delayMs))
                    send(u.bytes)
                }
            }
        }
        done.signal()
    }
}

@Suite(.serialized) struct ATEnginePtyTests {
    @Test func startSignalURCsAndSMSSendOverARealPty() throws {
        let pty = try PtyPair()
        defer { pty.close() }
        let submit = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
        let modem = PtyModem(fd: pty.master.fd, steps: [
            step("AT", "AT\r\r\nOK\r\n"),
            step("ATE0", "ATE0\r\r\nOK\r\n"),
            step("AT+CMEE=1", "\r\nOK\r\n"),
            step("AT+CGMM", "\r\nSARA-R410M-02B\r\n\r\nOK\r\n"),
            step("AT+UDCONF=1,1", "\r\nOK\r\n"),
            step("AT+CMGF=0", "\r\nOK\r\n"),
            step("AT+CNMI=2,1,0,0,0", "\r\nOK\r\n"),
            step("AT+CSQ", "\r\n+CSQ: 18,99\r\n\r\n+CMTI: \"SM\",2\r\n\r\nOK\r\n"),
            step("AT+CMGS=23", "\r\n> "),
            payloadStep(bytes(submit) + [0x1A], "\r\n+CMGS: 9\r\n\r\nOK\r\n"),
        ], unsolicited: [(afterStep: 10, delayMs: 20, bytes: bytes("\r\n+CEREG: 5\r\n"))])
        modem.start()
        let d = ATDriver(transport: pty.slave, dialect: .generic)
        try d.start()
        #expect(d.dialect.vendor == .ublox)
        #expect(try d.signalQuality().rssi == 18)
        let mr = try bytes(submit).withUnsafeBytes { try d.smsSend(pduHex: $0, tpduLength: 23) }
        #expect(mr == 9)
        guard case .smsStored(2)? = try d.nextEvent(timeoutMs: 100) else { Issue.record("lost +CMTI"); return }
        guard case .registration(let r)? = try d.nextEvent(timeoutMs: 2000) else { Issue.record("lost +CEREG"); return }
        #expect(r.status == .roaming)
        #expect(modem.finish())
    }

    @Test func missingFinalResultTimesOutInRealTimeThenRecovers() throws {
        let pty = try PtyPair()
        defer { pty.close() }
        let modem = PtyModem(fd: pty.master.fd, steps: [
            step("AT+COPS?", "\r\n+COPS: 0,0,\"Net\",7\r\n"),  // final result dropped
            step("AT", "\r\nOK\r\n"),
        ])
        modem.start()
        let e = ATEngine(transport: pty.slave, rules: ModemDialect.generic.rules)
        let t0 = hs_monotonic_ms()
        #expect(throws: ATError.timeout) { try e.run("AT+COPS?", timeoutMs: 300) }
        let elapsed = hs_monotonic_ms() - t0
        #expect(elapsed >= 290 && elapsed < 3000)
        try e.run("AT", timeoutMs: 2000)
        #expect(modem.finish())
    }

    @Test func binarySocketPayloadAndRebootOverPty() throws {
        let pty = try PtyPair()
        defer { pty.close() }
        var payload: [UInt8] = Array(0...255)
        payload += [0x0D, 0x0A, 0x1A, 0x1B]
        let modem = PtyModem(fd: pty.master.fd, steps: [
            step("AT+USOCR=17", "\r\n+USOCR: 0\r\n\r\nOK\r\n"),
            step("AT+USOST=0,\"10.0.0.1\",4500,260", "\r\n@"),
            payloadStep(payload, "\r\n+USOST: 0,260\r\n\r\nOK\r\n"),
        ], unsolicited: [(afterStep: 3, delayMs: 30, bytes: [0xFF, 0x00, 0x80] + bytes("\r\nRDY\r\n"))])
        modem.start()
        let d = ATDriver(transport: pty.slave, dialect: .ublox)
        let s = try d.openUDP()
        try payload.withUnsafeBytes { try d.sendUDP(socket: s, to: UDPEndpoint(address: 0x0A00_0001, port: 4500), payload: $0) }
        guard case .moduleRebooted? = try d.nextEvent(timeoutMs: 2000) else { Issue.record("no reboot event"); return }
        #expect(!d.isSocketOpen(s))
        #expect(d.engine.stats.garbageBytes == 3)
        #expect(modem.finish())
    }
}
