/// How the daemon names a counter in /metrics, and how the emulator reads it back.
public enum MetricName {
    /// `unexpectedPDUs` -> `unexpected_pdus`: a capital after a lower-case letter or digit starts a word.
    public static func snakeCase(_ s: String) -> String {
        var out = ""
        var previous: Character?
        for ch in s {
            if ch.isUppercase, let p = previous, p.isLowercase || p.isNumber { out += "_" }
            out += ch.lowercased()
            previous = ch
        }
        return out
    }
}
