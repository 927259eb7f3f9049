// One JSON object per network event: {"event":"sms-mo",...}. Keys keep their insertion order so lines read well.
import Foundation

public enum JSONValue: Sendable, Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case array([JSONValue])

    func render(into out: inout String) {
        switch self {
        case .string(let s): JSONValue.quote(s, into: &out)
        case .int(let i): out += String(i)
        case .bool(let b): out += b ? "true" : "false"
        case .array(let items):
            out += "["
            for (i, v) in items.enumerated() { if i > 0 { out += "," }; v.render(into: &out) }
            out += "]"
        }
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}

public struct NetworkEvent: Sendable, Equatable {
    public var name: String
    public var fields: [(String, JSONValue)]

    public init(_ name: String, _ fields: [(String, JSONValue)] = []) {
        self.name = name
        self.fields = fields
    }

    public subscript(key: String) -> JSONValue? { fields.first { $0.0 == key }?.1 }

    public func string(_ key: String) -> String? {
        if case .string(let s)? = self[key] { return s }
        return nil
    }

    public func int(_ key: String) -> Int? {
        if case .int(let i)? = self[key] { return i }
        return nil
    }

    public var jsonLine: String {
        var out = "{\"event\":"
        JSONValue.quote(name, into: &out)
        for (k, v) in fields {
            out += ","
            JSONValue.quote(k, into: &out)
            out += ":"
            v.render(into: &out)
        }
        return out + "}"
    }

    public static func == (a: NetworkEvent, b: NetworkEvent) -> Bool { a.jsonLine == b.jsonLine }
}

/// Writes event lines to stdout, one write per line so lines never interleave.
public final class StdoutEventWriter: @unchecked Sendable {
    private let lock = NSLock()
    public init() {}
    public func write(_ event: NetworkEvent) {
        let line = event.jsonLine + "\n"
        lock.lock()
        defer { lock.unlock() }
        FileHandle.standardOutput.write(Data(line.utf8))
    }
}
