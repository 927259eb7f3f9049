import CHandsetShim

/// The byte pipe under the AT engine: a serial port, a pty, or a scripted fake in tests.
/// Used as a generic parameter, never as an existential.
public protocol ByteTransport {
    /// Copies what is pending into `buffer`; 0 when nothing is.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(SerialError) -> Int
    /// Writes every byte, waiting up to `timeoutMs` in total for the device to drain.
    mutating func write(_ bytes: UnsafeRawBufferPointer, timeoutMs: Int) throws(SerialError)
    /// True when bytes are pending within `timeoutMs`.
    mutating func waitReadable(timeoutMs: Int) throws(SerialError) -> Bool
    /// Monotonic milliseconds; a fake may run a virtual clock.
    func nowMs() -> UInt64
    /// Pauses the sender (u-blox wants 50 ms between `@` and the data).
    mutating func pause(ms: Int)
}

extension ByteTransport {
    public func nowMs() -> UInt64 { hs_monotonic_ms() }
    public mutating func pause(ms: Int) { if ms > 0 { hs_sleep_ms(UInt32(ms)) } }
}
