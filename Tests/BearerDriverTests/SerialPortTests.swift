// The termios/pty shim through SerialPort, on real pseudo-terminals.
import Testing
import CHandsetShim
@testable import BearerDriver

@Suite struct SerialPortTests {
    @Test func ptyCarriesBytesBothWaysUnchanged() throws {
        let pty = try PtyPair()
        defer { pty.close() }
        var slave = pty.slave
        var master = pty.master
        // Raw mode: CR, LF, Ctrl-Z, NUL and 0xFF must pass untouched.
        let out: [UInt8] = [0x41, 0x54, 0x0D, 0x0A, 0x1A, 0x00, 0xFF, 0x03]
        try out.withUnsafeBytes { try slave.write($0, timeoutMs: 1000) }
        #expect(try master.waitReadable(timeoutMs: 1000))
        var buf = [UInt8](repeating: 0, count: 64)
        let n = try buf.withUnsafeMutableBytes { try master.read(into: $0) }
        #expect(Array(buf.prefix(n)) == out)
        try out.withUnsafeBytes { try master.write($0, timeoutMs: 1000) }
        #expect(try slave.waitReadable(timeoutMs: 1000))
        let m = try buf.withUnsafeMutableBytes { try slave.read(into: $0) }
        #expect(Array(buf.prefix(m)) == out)
    }

    @Test func waitReadableTimesOutWithoutData() throws {
        let pty = try PtyPair()
        defer { pty.close() }
        var slave = pty.slave
        let start = hs_monotonic_ms()
        #expect(try !slave.waitReadable(timeoutMs: 60))
        #expect(hs_monotonic_ms() - start >= 50)
        var buf = [UInt8](repeating: 0, count: 8)
        #expect(try buf.withUnsafeMutableBytes { try slave.read(into: $0) } == 0)
    }

    @Test(arguments: [9600, 19200, 38400, 57600, 115_200, 230_400, 460_800, 921_600] as [UInt32])
    func supportedBaudRatesOpenByPath(_ baud: UInt32) throws {
        let pty = try PtyPair()
        defer { pty.close() }
        let name = pty.slaveName
        let port = try name.span.withUnsafeBufferPointer { p throws(SerialError) in
            try SerialPort(path: p.baseAddress!, baud: baud, rtscts: baud > 115_200)
        }
        #expect(port.fd >= 0)
        port.close()
    }

    @Test func unsupportedBaudIsATypedErrorAndOpensNothing() throws {
        let pty = try PtyPair()
        defer { pty.close() }
        #expect(throws: SerialError(kind: .unsupportedBaud, errno: 22)) {
            try pty.slaveName.span.withUnsafeBufferPointer { p throws(SerialError) in
                _ = try SerialPort(path: p.baseAddress!, baud: 12_345)
            }
        }
        #expect(throws: SerialError(kind: .unsupportedBaud, errno: 22)) { try pty.slave.reconfigure(baud: 300) }
    }

    @Test func missingDeviceIsNoSuchDevice() {
        #expect(throws: SerialError(kind: .noSuchDevice, errno: 2)) {
            try bytes("/dev/no-such-modem").withUnsafeBytes { _ = try SerialPort(pathBytes: $0) }
        }
    }

    @Test func overlongPathIsRefused() {
        #expect(throws: SerialError(kind: .pathTooLong, errno: 36)) {
            try [UInt8](repeating: 0x61, count: 300).withUnsafeBytes { _ = try SerialPort(pathBytes: $0) }
        }
    }

    @Test func otherSideClosingIsAHangUp() throws {
        let pty = try PtyPair()
        pty.slave.close()
        var master = pty.master
        defer { master.close() }
        #expect(try master.waitReadable(timeoutMs: 500))
        var buf = [UInt8](repeating: 0, count: 8)
        #expect(throws: SerialError(kind: .hangUp, errno: 5)) { _ = try buf.withUnsafeMutableBytes { try master.read(into: $0) } }
    }

    @Test(arguments: [(22, SerialError.Kind.unsupportedBaud), (2, .noSuchDevice), (13, .permissionDenied),
                      (16, .busy), (5, .hangUp), (9, .badDescriptor), (71, .other)] as [(Int32, SerialError.Kind)])
    func errnoMapping(_ errno: Int32, _ kind: SerialError.Kind) {
        let e = SerialError(shimResult: -errno)
        #expect(e.kind == kind)
        #expect(e.errno == errno)
    }
}
