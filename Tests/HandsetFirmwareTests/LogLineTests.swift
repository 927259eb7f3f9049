import BearerDriver
import Testing
@testable import handset_fw

@Suite struct LogLineTests {
    func text(_ l: LogLine) -> String { l.withBytes { String(decoding: $0, as: UTF8.self) } }

    @Test func textAndNumbers() {
        #expect(text(LogLine("fw: SA pair installed out=").append(UInt32(0xDEADBEEF)).append(" in=").append(0))
                == "fw: SA pair installed out=3735928559 in=0")
        #expect(text(LogLine("n=").append(Int64.min)) == "n=-9223372036854775808")
        #expect(text(LogLine("u=").append(UInt64.max)) == "u=18446744073709551615")
    }

    @Test func modemErrorsByKind() {
        #expect(text(LogLine("e: ").append(ATError.cms(321))) == "e: cms 321")
        #expect(text(LogLine("e: ").append(ATError.timeout)) == "e: timeout")
        #expect(text(LogLine("e: ").append(ATError.transport(SerialError(kind: .hangUp, errno: 5)))) == "e: transport hang-up: Input/output error (errno 5)")
    }

    /// strerror's text as glibc has it (the firmware links the board's glibc too), then the number.
    @Test func systemErrorsCarryTheSystemsMessage() {
        #expect(text(LogLine("open: ").append(errno: 2)) == "open: No such file or directory (errno 2)")
        #expect(text(LogLine("tun: ").append(errno: 13)) == "tun: Permission denied (errno 13)")
        #expect(text(LogLine("f ").append(cString: "a.conf").append(":").append(bytes: UnsafeRawBufferPointer(start: nil, count: 0)))
                == "f a.conf:")
    }

    @Test func longLinesAreCutNotOverrun() {
        var l = LogLine("x")
        for _ in 0..<40 { l = l.append("abcdefgh") }
        #expect(l.count == 159)
        #expect(text(l).hasPrefix("xabcdefgh"))
    }
}
