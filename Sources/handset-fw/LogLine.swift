import BearerDriver
import CHandsetShim

/// One log line built in fixed storage and written with a single write(2). `print("fw: \(x)")` builds a String,
/// which goes to the heap once it is longer than 15 bytes: the firmware logs after start-up must not allocate.
/// stdout is line-buffered and every `print` ends its line, so a direct write never overtakes buffered output.
struct LogLine {
    private var bytes = InlineArray<160, UInt8>(repeating: 0)
    private(set) var count = 0

    init(_ s: StaticString) { self = LogLine().append(s) }

    private init() {}

    func append(_ s: StaticString) -> LogLine {
        var line = self
        for i in 0..<s.utf8CodeUnitCount { line.put(s.utf8Start[i]) }
        return line
    }

    func append<T: BinaryInteger>(_ v: T) -> LogLine {
        var line = self
        DecimalText.write(v) { line.put($0) }
        return line
    }

    /// Raw bytes (a config key, a path read from a file).
    func append(bytes b: UnsafeRawBufferPointer) -> LogLine {
        var line = self
        for c in b { line.put(c) }
        return line
    }

    func append(cString p: UnsafePointer<CChar>) -> LogLine {
        var line = self
        var i = 0
        while p[i] != 0 { line.put(UInt8(bitPattern: p[i])); i += 1 }
        return line
    }

    /// The system's message and the number: `No such file or directory (errno 2)`.
    func append(errno e: Int32) -> LogLine {
        append(cString: hs_strerror(e)).append(" (errno ").append(e).append(")")
    }

    private mutating func put(_ b: UInt8) {
        guard count < 159 else { return }  // long lines are cut, never overrun
        bytes[count] = b
        count += 1
    }

    /// Writes the line and a newline to stdout.
    func emit() {
        var line = bytes
        line[count] = 0x0A
        let n = count + 1
        withUnsafeBytes(of: &line) { _ = hs_write_all(1, $0.baseAddress, n) }
    }

    /// The text so far (tests).
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeBytes(of: bytes) { body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
    }
}
