// The AT dialogue as the module sees it, one line at a time, for `--trace`.
import Foundation

/// One line that crossed the pty: a command line (or PDU, or socket payload) the host sent, or a line the
/// module sent (answer, URC, prompt, echo).
public struct ATTraceLine: Sendable, Equatable, CustomStringConvertible {
    public enum Direction: Sendable, Equatable {
        case toModule, fromModule
    }

    public var direction: Direction
    public var bytes: [UInt8]
    /// Binary payload (socket data): always shown as hex.
    public var binary: Bool
    /// Why the line ended other than by CR/LF: "^Z" after a PDU, "ESC" for a cancelled one.
    public var terminator: String?

    public init(_ direction: Direction, _ bytes: [UInt8], binary: Bool = false, terminator: String? = nil) {
        self.direction = direction
        self.bytes = bytes
        self.binary = binary
        self.terminator = terminator
    }

    /// Longest rendering before a line is cut (hex counts two characters a byte).
    public static let maxShown = 160

    /// `AT> AT+CMGS=23`, `AT< +CMTI: "SM",1`, `AT> hex(12): 0a0b...`; long lines cut with their length noted.
    public var description: String {
        let mark = direction == .toModule ? "AT> " : "AT< "
        let printable = !binary && bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
        var body: String
        if printable {
            body = String(decoding: bytes.prefix(Self.maxShown), as: UTF8.self)
        } else {
            body = "hex(\(bytes.count)): " + bytes.prefix(Self.maxShown / 2).map { String(format: "%02x", $0) }.joined()
        }
        if bytes.count > (printable ? Self.maxShown : Self.maxShown / 2) { body += "… (\(bytes.count) bytes)" }
        if let terminator { body += (body.isEmpty ? "<" : " <") + terminator + ">" }
        return mark + body
    }
}

/// Cuts what the module writes into lines. A prompt ("> ", "@") has no line end, so whatever is pending is
/// shown before the host's next line.
struct ATTraceSplitter {
    private var pending: [UInt8] = []

    /// Feeds module output; returns the lines it completed.
    mutating func module(_ bytes: [UInt8]) -> [ATTraceLine] {
        var lines: [ATTraceLine] = []
        for b in bytes {
            if b == 0x0D || b == 0x0A {
                if !pending.isEmpty { lines.append(ATTraceLine(.fromModule, pending)) }
                pending.removeAll(keepingCapacity: true)
            } else {
                pending.append(b)
            }
        }
        return lines
    }

    /// What the module left without a line end (a prompt), to be shown now.
    mutating func flush() -> ATTraceLine? {
        defer { pending.removeAll(keepingCapacity: true) }
        return pending.isEmpty ? nil : ATTraceLine(.fromModule, pending)
    }
}
