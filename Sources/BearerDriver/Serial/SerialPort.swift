import CHandsetShim

/// A termios serial device (or a pty slave) in raw mode, driven by poll.
/// Copyable handle: exactly one owner calls `close()`.
public struct SerialPort: ByteTransport {
    public let fd: Int32

    /// Adopts an already configured descriptor, such as a pty slave.
    public init(adopting fd: Int32) { self.fd = fd }

    /// Opens `path` (NUL-terminated bytes) at `baud` (9600...921600), optionally with RTS/CTS.
    public init(path: UnsafePointer<CChar>, baud: UInt32 = 115_200, rtscts: Bool = false) throws(SerialError) {
        let rc = hs_serial_open(path, baud, rtscts ? 1 : 0)
        if rc < 0 { throw SerialError(shimResult: rc) }
        fd = rc
    }

    /// Opens a path given as bytes, copied into a fixed buffer.
    public init(pathBytes: UnsafeRawBufferPointer, baud: UInt32 = 115_200, rtscts: Bool = false) throws(SerialError) {
        var buf = InlineArray<256, CChar>(repeating: 0)
        if pathBytes.count >= 256 { throw SerialError(kind: .pathTooLong, errno: 36) }
        for i in 0..<pathBytes.count { buf[i] = CChar(bitPattern: pathBytes[i]) }
        let rc = buf.span.withUnsafeBufferPointer { p in hs_serial_open(p.baseAddress!, baud, rtscts ? 1 : 0) }
        if rc < 0 { throw SerialError(shimResult: rc) }
        fd = rc
    }

    public func reconfigure(baud: UInt32, rtscts: Bool = false) throws(SerialError) {
        let rc = hs_serial_configure(fd, baud, rtscts ? 1 : 0)
        if rc < 0 { throw SerialError(shimResult: rc) }
    }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(SerialError) -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        let n = hs_serial_read(fd, base.assumingMemoryBound(to: UInt8.self), buffer.count)
        if n < 0 { throw SerialError(shimResult: n) }
        return Int(n)
    }

    public mutating func write(_ bytes: UnsafeRawBufferPointer, timeoutMs: Int) throws(SerialError) {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        let deadline = hs_monotonic_ms() + UInt64(max(timeoutMs, 0))
        while done < bytes.count {
            let n = hs_serial_write(fd, base.assumingMemoryBound(to: UInt8.self) + done, bytes.count - done)
            if n < 0 { throw SerialError(shimResult: n) }
            done += Int(n)
            if done == bytes.count { break }
            let now = hs_monotonic_ms()
            if now >= deadline { throw SerialError(kind: .busy, errno: 11) }  // EAGAIN: flow control held us back
            let rc = hs_serial_poll_write(fd, Int32(clamping: deadline - now))
            if rc < 0 { throw SerialError(shimResult: rc) }
        }
    }

    public mutating func waitReadable(timeoutMs: Int) throws(SerialError) -> Bool {
        let rc = hs_serial_poll_read(fd, Int32(clamping: timeoutMs))
        if rc < 0 { throw SerialError(shimResult: rc) }
        return rc > 0
    }

    public func discardPending() throws(SerialError) {
        let rc = hs_serial_flush(fd)
        if rc < 0 { throw SerialError(shimResult: rc) }
    }

    public func close() {
        _ = hs_serial_close(fd)
    }
}
