// The response buffer's [length:2][bytes] records, read back through ATResponse.
import Testing
@testable import BearerDriver

@Suite struct ATResponseTests {
    /// Lengths whose high byte is set: a 510-byte record (0x01FE) once stepped 256 bytes (`2 + 0xFE | 0x100`) and,
    /// its zero bytes read as empty records, counted as dozens of phantom lines.
    @Test(arguments: [0, 1, 255, 256, 510, 511, 1000])
    func countAndLinesSurviveLongRecords(length: Int) {
        var buffer = ATResponseBuffer(capacity: 4096)
        defer { buffer.deallocate() }
        let long = [UInt8](repeating: 0, count: length)
        let short: [UInt8] = Array("OK-LINE".utf8)
        long.withUnsafeBytes { buffer.append($0) }
        short.withUnsafeBytes { buffer.append($0) }
        #expect(!buffer.overflowed)
        let view = buffer.view
        #expect(view.count == 2)
        #expect(view.line(0)?.count == length)
        #expect(view.line(1).map { Array($0) } == short)
        #expect(view.line(2) == nil)
    }
}
