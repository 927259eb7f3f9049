// Splits one AT command line (V.250 §5.2) into basic and extended commands.
// "ATE0V1+CMGF=0;+CNMI=2,1" → [E0, V1, +CMGF=0, +CNMI=2,1]. Quotes protect ';' and ','.

struct ATArgument: Equatable {
    var text: String        // without quotes
    var quoted: Bool
    var int: Int? { quoted ? nil : Int(text) }
}

struct ATCommand: Equatable {
    enum Form: Equatable { case exec, read, test, set }
    var name: String        // upper-cased: "E", "I", "&F", "S0", "+CMGF", "^SYSINFO"
    var form: Form
    var args: [ATArgument]
    var basicValue: Int?    // the digits after a basic command: E1 → 1
    var raw: String         // the text as typed, for the "unknown command" log

    func int(_ i: Int) -> Int? { i < args.count ? args[i].int : nil }
    func string(_ i: Int) -> String? { i < args.count && !args[i].text.isEmpty ? args[i].text : nil }
}

enum ATCommandLine {
    /// Parses a line that starts with "AT" (any case). Returns nil when the line is not an AT line at all.
    static func parse(_ line: String) -> [ATCommand]? {
        let chars = Array(line)
        guard chars.count >= 2, chars[0] == "A" || chars[0] == "a", chars[1] == "T" || chars[1] == "t" else { return nil }
        var i = 2
        var commands: [ATCommand] = []
        // Basic commands: letters with optional digits, &X, Sn=v / Sn?.
        while i < chars.count, !isExtendedPrefix(chars[i]) {
            let start = i
            var name = String(chars[i]).uppercased()
            i += 1
            if name == "&", i < chars.count { name += String(chars[i]).uppercased(); i += 1 }
            if name == "S" {
                var reg = ""
                while i < chars.count, chars[i].isNumber { reg.append(chars[i]); i += 1 }
                name += reg
                if i < chars.count, chars[i] == "?" {
                    i += 1
                    commands.append(ATCommand(name: name, form: .read, args: [], basicValue: nil,
                                              raw: String(chars[start..<i])))
                    continue
                }
                if i < chars.count, chars[i] == "=" {
                    i += 1
                    var digits = ""
                    while i < chars.count, chars[i].isNumber { digits.append(chars[i]); i += 1 }
                    commands.append(ATCommand(name: name, form: .set, args: [], basicValue: Int(digits),
                                              raw: String(chars[start..<i])))
                    continue
                }
            }
            if name == " " || name == ";" { continue } // "ATE0;+CREG?" is common, if not strictly V.250
            var digits = ""
            while i < chars.count, chars[i].isNumber { digits.append(chars[i]); i += 1 }
            commands.append(ATCommand(name: name, form: .exec, args: [], basicValue: Int(digits),
                                      raw: String(chars[start..<i])))
        }
        // Extended commands separated by ';' outside quotes.
        if i < chars.count {
            for piece in splitOutsideQuotes(Array(chars[i...]), separator: ";") where !piece.isEmpty {
                commands.append(parseExtended(piece))
            }
        }
        return commands
    }

    static func isExtendedPrefix(_ c: Character) -> Bool { c == "+" || c == "^" || c == "$" || c == "#" || c == "*" }

    static func parseExtended(_ chars: [Character]) -> ATCommand {
        var i = 0
        var name = ""
        while i < chars.count, chars[i] != "=", chars[i] != "?" { name.append(chars[i]); i += 1 }
        let raw = String(chars)
        name = name.uppercased().trimmingCharacters(in: " ")
        if i >= chars.count { return ATCommand(name: name, form: .exec, args: [], basicValue: nil, raw: raw) }
        if chars[i] == "?" { return ATCommand(name: name, form: .read, args: [], basicValue: nil, raw: raw) }
        // chars[i] == "="
        if i + 1 < chars.count, chars[i + 1] == "?" {
            return ATCommand(name: name, form: .test, args: [], basicValue: nil, raw: raw)
        }
        let argChars = Array(chars[(i + 1)...])
        let args = splitOutsideQuotes(argChars, separator: ",").map { piece -> ATArgument in
            let s = String(piece).trimmingCharacters(in: " ")
            if s.count >= 2, s.first == "\"", s.last == "\"" {
                return ATArgument(text: String(s.dropFirst().dropLast()), quoted: true)
            }
            return ATArgument(text: s, quoted: false)
        }
        return ATCommand(name: name, form: .set, args: args, basicValue: nil, raw: raw)
    }

    static func splitOutsideQuotes(_ chars: [Character], separator: Character) -> [[Character]] {
        var out: [[Character]] = [[]]
        var inQuotes = false
        for c in chars {
            if c == "\"" { inQuotes.toggle() }
            if c == separator && !inQuotes { out.append([]) } else { out[out.count - 1].append(c) }
        }
        return out
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        String(self.drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}
