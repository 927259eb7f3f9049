import Foundation
import Logging

/// swift-log to stderr, one line per record: `text` for people (and journald), or `json` (one object per line,
/// keys: ts, level, label, msg, then the metadata) for log collectors. A line is written with one write(2).
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    let label: String
    let format: DaemonConfig.LogFormat
    let sink: @Sendable (String) -> Void

    public init(label: String, level: Logger.Level, format: DaemonConfig.LogFormat,
                sink: @escaping @Sendable (String) -> Void = LineLogHandler.stderr) {
        self.label = label
        logLevel = level
        self.format = format
        self.sink = sink
    }

    public static let stderr: @Sendable (String) -> Void = { line in
        let bytes = Array(line.utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let m = event.metadata { all.merge(m) { _, new in new } }
        let ts = Self.timestamp()
        switch format {
        case .text:
            let meta = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            sink("\(ts) \(event.level) \(label): \(event.message)\(meta.isEmpty ? "" : " " + meta)\n")
        case .json:
            var fields = [("ts", ts), ("level", "\(event.level)"), ("label", label), ("msg", "\(event.message)")]
            fields += all.sorted { $0.key < $1.key }.map { ($0.key, "\($0.value)") }
            sink("{" + fields.map { "\(Self.quote($0.0)):\(Self.quote($0.1))" }.joined(separator: ",") + "}\n")
        }
    }

    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, Int(tv.tv_usec / 1000))
    }

    /// A JSON string literal (RFC 8259 §7): quote, backslash and control characters escaped.
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
