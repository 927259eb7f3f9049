import CHandsetShim

/// A raw-mode pseudo-terminal: the driver opens `slave`, a modem (real simulator or scripted test) plays `master`.
public struct PtyPair {
    public let master: SerialPort
    public let slave: SerialPort
    /// The slave's path, NUL-terminated.
    public private(set) var slaveName: InlineArray<128, CChar>

    public init() throws(SerialError) {
        var m: Int32 = -1
        var s: Int32 = -1
        var name = InlineArray<128, CChar>(repeating: 0)
        var mutableName = name.mutableSpan
        let rc = mutableName.withUnsafeMutableBufferPointer { p in hs_pty_open(&m, &s, p.baseAddress, 128) }
        if rc < 0 { throw SerialError(shimResult: rc) }
        master = SerialPort(adopting: m)
        slave = SerialPort(adopting: s)
        slaveName = name
    }

    public func close() {
        slave.close()
        master.close()
    }
}
