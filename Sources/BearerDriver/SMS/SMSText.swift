/// GSM 7-bit default alphabet and UCS-2 to UTF-8 (TS 23.038 §6.2.1, §6.2.1.1). Tables are switches, so
/// they live in code, not in a lazily built array.
public enum SMSText {
    /// Enough for any one part: 160 septets or 70 UCS-2 units, at most 3 UTF-8 bytes each.
    public static let maxUTF8 = 480

    struct UTF8Writer: ~Copyable {
        let out: UnsafeMutableRawBufferPointer
        var count = 0
        var full = false

        init(out: UnsafeMutableRawBufferPointer) { self.out = out }

        mutating func put(_ scalar: UInt32) {
            guard !full else { return }
            let s = scalar > 0x10FFFF || (scalar >= 0xD800 && scalar < 0xE000) ? 0xFFFD : scalar
            let n = s < 0x80 ? 1 : s < 0x800 ? 2 : s < 0x10000 ? 3 : 4
            guard out.count - count >= n else { full = true; return }
            switch n {
            case 1:
                out[count] = UInt8(s)
            case 2:
                out[count] = UInt8(0xC0 | s >> 6); out[count + 1] = UInt8(0x80 | s & 0x3F)
            case 3:
                out[count] = UInt8(0xE0 | s >> 12); out[count + 1] = UInt8(0x80 | (s >> 6) & 0x3F)
                out[count + 2] = UInt8(0x80 | s & 0x3F)
            default:
                out[count] = UInt8(0xF0 | s >> 18); out[count + 1] = UInt8(0x80 | (s >> 12) & 0x3F)
                out[count + 2] = UInt8(0x80 | (s >> 6) & 0x3F); out[count + 3] = UInt8(0x80 | s & 0x3F)
            }
            count += n
        }
    }

    /// Renders a payload (one part's, or a reassembled message's) as UTF-8 into `out`; returns bytes written.
    /// Stops at a whole character when `out` is full. GSM 7-bit payloads hold one septet per byte.
    public static func writeUTF8(_ payload: UnsafeRawBufferPointer, alphabet: SMSAlphabet,
                                 into out: UnsafeMutableRawBufferPointer) -> Int {
        var w = UTF8Writer(out: out)
        switch alphabet {
        case .gsm7: gsm7ToUTF8(septets: payload, into: &w)
        case .ucs2: ucs2ToUTF8(payload, into: &w)
        case .data8: for b in payload { w.put(UInt32(b)) }
        }
        return w.count
    }

    static func gsm7ToUTF8(septets p: UnsafeRawBufferPointer, into w: inout UTF8Writer) {
        var i = 0
        while i < p.count {
            let c = p[i] & 0x7F
            if c == 0x1B {
                i += 1
                // ESC at the very end shows as a space; an unknown extension shows its basic character.
                w.put(i < p.count ? extended(p[i] & 0x7F) ?? basic(p[i] & 0x7F) : 0x20)
            } else {
                w.put(basic(c))
            }
            i += 1
        }
    }

    static func ucs2ToUTF8(_ p: UnsafeRawBufferPointer, into w: inout UTF8Writer) {
        var i = 0
        while i + 1 < p.count {
            let u = UInt32(p[i]) << 8 | UInt32(p[i + 1])
            i += 2
            // Senders put UTF-16 here; join surrogate pairs, replace lone halves.
            if u >= 0xD800 && u < 0xDC00, i + 1 < p.count {
                let l = UInt32(p[i]) << 8 | UInt32(p[i + 1])
                if l >= 0xDC00 && l < 0xE000 {
                    w.put(0x10000 + ((u - 0xD800) << 10) + (l - 0xDC00))
                    i += 2
                    continue
                }
            }
            w.put(u)
        }
    }

    /// GSM 7-bit default alphabet, basic table.
    public static func basic(_ c: UInt8) -> UInt32 {
        switch c {
        case 0x00: return 0x40
        case 0x01: return 0xA3
        case 0x02: return 0x24
        case 0x03: return 0xA5
        case 0x04: return 0xE8
        case 0x05: return 0xE9
        case 0x06: return 0xF9
        case 0x07: return 0xEC
        case 0x08: return 0xF2
        case 0x09: return 0xC7
        case 0x0B: return 0xD8
        case 0x0C: return 0xF8
        case 0x0E: return 0xC5
        case 0x0F: return 0xE5
        case 0x10: return 0x394
        case 0x11: return 0x5F
        case 0x12: return 0x3A6
        case 0x13: return 0x393
        case 0x14: return 0x39B
        case 0x15: return 0x3A9
        case 0x16: return 0x3A0
        case 0x17: return 0x3A8
        case 0x18: return 0x3A3
        case 0x19: return 0x398
        case 0x1A: return 0x39E
        case 0x1B: return 0xA0
        case 0x1C: return 0xC6
        case 0x1D: return 0xE6
        case 0x1E: return 0xDF
        case 0x1F: return 0xC9
        case 0x24: return 0xA4
        case 0x40: return 0xA1
        case 0x5B: return 0xC4
        case 0x5C: return 0xD6
        case 0x5D: return 0xD1
        case 0x5E: return 0xDC
        case 0x5F: return 0xA7
        case 0x60: return 0xBF
        case 0x7B: return 0xE4
        case 0x7C: return 0xF6
        case 0x7D: return 0xF1
        case 0x7E: return 0xFC
        case 0x7F: return 0xE0
        default: return UInt32(c & 0x7F)  // LF, CR and the ASCII-identical range
        }
    }

    /// GSM 7-bit default alphabet extension table (after ESC).
    public static func extended(_ c: UInt8) -> UInt32? {
        switch c {
        case 0x0A: return 0x0C
        case 0x14: return 0x5E
        case 0x28: return 0x7B
        case 0x29: return 0x7D
        case 0x2F: return 0x5C
        case 0x3C: return 0x5B
        case 0x3D: return 0x7E
        case 0x3E: return 0x5D
        case 0x40: return 0x7C
        case 0x65: return 0x20AC
        default: return nil
        }
    }
}
