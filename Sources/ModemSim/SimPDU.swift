// The simulator's own, small SMS PDU codec (3GPP TS 23.040 §9.2, TS 23.038 §6.2.1). It is the one seam for PDUs in
// ModemSim and deliberately independent of BearerDriver's codec, so the two check each other on the wire.
import Foundation

struct PDUError: Error, CustomStringConvertible {
    var description: String
}

/// User data as the network sees it.
enum SMSBody: Equatable, Sendable {
    case text(String)
    case data([UInt8])
}

struct SMSHeader: Equatable, Sendable {
    var concatRef: Int?
    var concatTotal: Int?
    var concatSeq: Int?
    var concat16Bit = false
    var portDst: Int?
    var portSrc: Int?
    var port16Bit = true
}

/// An SMS-SUBMIT the module sent.
struct DecodedSubmit: Sendable {
    var destination: String
    var reference: Int
    var dcs: UInt8
    var header: SMSHeader
    var body: SMSBody
    var udh: [UInt8] = []   // raw, UDHL first; empty without UDHI
}

/// One SMS-DELIVER part ready to store or push.
struct DeliverPart: Sendable {
    var pdu: [UInt8]        // with the leading SMSC address field, as +CMGR shows it
    var tpduLength: Int     // octets after the SMSC field, the <length> of +CMGR / +CMT
    var header: SMSHeader
}

enum SimPDU {
    enum Alphabet { case gsm7, eightBit, ucs2 }

    static func alphabet(of dcs: UInt8) -> Alphabet {
        switch dcs & 0xF0 {
        case 0x00...0x30: // general data coding, uncompressed assumed
            switch (dcs >> 2) & 0x03 { case 1: return .eightBit; case 2: return .ucs2; default: return .gsm7 }
        case 0xF0: return dcs & 0x04 != 0 ? .eightBit : .gsm7
        case 0xC0, 0xD0: return .gsm7
        case 0xE0: return .ucs2
        default: return .eightBit
        }
    }

    // MARK: SMS-SUBMIT decode

    static func decodeSubmit(_ b: [UInt8]) throws(PDUError) -> DecodedSubmit {
        var r = ByteReader(bytes: b)
        let scaLen = Int(try r.byte())
        try r.skip(scaLen)
        let first = try r.byte()
        guard first & 0x03 == 0x01 else { throw PDUError(description: "not an SMS-SUBMIT (MTI \(first & 3))") }
        let mr = Int(try r.byte())
        let da = try readAddress(&r)
        _ = try r.byte() // PID
        let dcs = try r.byte()
        switch (first >> 3) & 0x03 {
        case 2: try r.skip(1)
        case 1, 3: try r.skip(7)
        default: break
        }
        let udhi = first & 0x40 != 0
        let (header, body) = try readUserData(&r, dcs: dcs, udhi: udhi)
        let ud = r.remaining // readUserData consumed only the UDL octet
        let udh = udhi ? Array(ud.prefix(1 + Int(ud.first ?? 0))) : []
        return DecodedSubmit(destination: da, reference: mr, dcs: dcs, header: header, body: body, udh: udh)
    }

    // MARK: SMS-DELIVER decode (used by tests and the control port echo)

    static func decodeDeliver(_ b: [UInt8]) throws(PDUError) -> (from: String, header: SMSHeader, body: SMSBody) {
        var r = ByteReader(bytes: b)
        try r.skip(Int(try r.byte()))
        let first = try r.byte()
        guard first & 0x03 == 0x00 else { throw PDUError(description: "not an SMS-DELIVER") }
        let oa = try readAddress(&r)
        _ = try r.byte()
        let dcs = try r.byte()
        try r.skip(7)
        let (header, body) = try readUserData(&r, dcs: dcs, udhi: first & 0x40 != 0)
        return (oa, header, body)
    }

    private static func readAddress(_ r: inout ByteReader) throws(PDUError) -> String {
        let digits = Int(try r.byte())
        let toa = try r.byte()
        let octets = try r.take((digits + 1) / 2)
        if toa & 0x70 == 0x50 { // alphanumeric, GSM 7-bit packed
            return String(unpack7(octets, septets: digits * 4 / 7, skipSeptets: 0).map(gsmChar))
        }
        var s = toa & 0x70 == 0x10 ? "+" : ""
        for o in octets {
            for nibble in [o & 0x0F, o >> 4] where nibble != 0x0F {
                s.append(nibble < 10 ? Character(String(nibble)) : Character(["*", "#", "a", "b", "c"][Int(nibble) - 10]))
            }
        }
        return String(s.prefix(digits + (s.hasPrefix("+") ? 1 : 0)))
    }

    private static func readUserData(_ r: inout ByteReader, dcs: UInt8, udhi: Bool)
        throws(PDUError) -> (SMSHeader, SMSBody) {
        let udl = Int(try r.byte())
        let rest = r.remaining
        var header = SMSHeader()
        var udhOctets = 0
        if udhi {
            guard let udhl = rest.first, Int(udhl) + 1 <= rest.count else { throw PDUError(description: "UDH overruns") }
            udhOctets = Int(udhl) + 1
            header = try parseUDH(Array(rest[1..<udhOctets]))
        }
        switch alphabet(of: dcs) {
        case .gsm7:
            let skip = (udhOctets * 8 + 6) / 7
            guard (udl * 7 + 7) / 8 <= rest.count, udl >= skip else { throw PDUError(description: "UDL exceeds data") }
            let septets = unpack7(rest, septets: udl, skipSeptets: skip)
            return (header, .text(decodeGSM7(septets)))
        case .eightBit:
            guard udl <= rest.count, udl >= udhOctets else { throw PDUError(description: "UDL exceeds data") }
            return (header, .data(Array(rest[udhOctets..<udl])))
        case .ucs2:
            guard udl <= rest.count, udl >= udhOctets else { throw PDUError(description: "UDL exceeds data") }
            let bytes = Array(rest[udhOctets..<udl])
            var units: [UInt16] = []
            var i = 0
            while i + 1 < bytes.count { units.append(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1])); i += 2 }
            return (header, .text(String(decoding: units, as: UTF16.self)))
        }
    }

    static func parseUDH(_ udh: [UInt8]) throws(PDUError) -> SMSHeader {
        var h = SMSHeader()
        var i = 0
        while i + 1 < udh.count {
            let iei = udh[i], len = Int(udh[i + 1])
            guard i + 2 + len <= udh.count else { throw PDUError(description: "UDH element overruns") }
            let v = Array(udh[(i + 2)..<(i + 2 + len)])
            switch (iei, len) {
            case (0x00, 3): h.concatRef = Int(v[0]); h.concatTotal = Int(v[1]); h.concatSeq = Int(v[2]); h.concat16Bit = false
            case (0x08, 4):
                h.concatRef = Int(v[0]) << 8 | Int(v[1]); h.concatTotal = Int(v[2]); h.concatSeq = Int(v[3]); h.concat16Bit = true
            case (0x04, 2): h.portDst = Int(v[0]); h.portSrc = Int(v[1]); h.port16Bit = false
            case (0x05, 4): h.portDst = Int(v[0]) << 8 | Int(v[1]); h.portSrc = Int(v[2]) << 8 | Int(v[3]); h.port16Bit = true
            default: break
            }
            i += 2 + len
        }
        return h
    }

    // MARK: SMS-DELIVER encode, with concatenation

    /// Splits `body` into SMS-DELIVER parts (TS 23.040 §9.2.3.24.1 concatenation, 8-bit reference).
    static func deliverParts(from sender: String, smsc: String, body: SMSBody, portDst: Int?, portSrc: Int?,
                             reference: Int, date: Date = Date()) -> [DeliverPart] {
        let portIE: [UInt8] = portDst.map { d in
            let s = portSrc ?? 0
            return [0x05, 0x04, UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF), UInt8(s >> 8 & 0xFF), UInt8(s & 0xFF)]
        } ?? []
        enum Chunk { case septets([UInt8]), octets([UInt8]) }
        var chunks: [Chunk] = []
        var dcs: UInt8 = 0
        let singleHeaderOctets = portIE.isEmpty ? 0 : 1 + portIE.count
        let multiHeaderOctets = 1 + portIE.count + 5
        switch body {
        case .text(let text):
            if let septets = encodeGSM7(text) {
                let capacity = { (udh: Int) in (140 * 8 - udh * 8) / 7 }
                if septets.count <= capacity(singleHeaderOctets) {
                    chunks = [.septets(septets)]
                } else {
                    var i = 0
                    let per = capacity(multiHeaderOctets)
                    while i < septets.count {
                        var end = min(i + per, septets.count)
                        if end < septets.count, septets[end - 1] == 0x1B { end -= 1 } // never split an escape pair
                        chunks.append(.septets(Array(septets[i..<end])))
                        i = end
                    }
                }
            } else {
                dcs = 0x08
                var bytes: [UInt8] = []
                for u in text.utf16 { bytes += [UInt8(u >> 8), UInt8(u & 0xFF)] }
                chunks = splitOctets(bytes, single: 140 - singleHeaderOctets, multi: (140 - multiHeaderOctets) & ~1)
                    .map { .octets($0) }
            }
        case .data(let bytes):
            dcs = 0x04
            chunks = splitOctets(bytes, single: 140 - singleHeaderOctets, multi: 140 - multiHeaderOctets).map { .octets($0) }
        }
        let total = chunks.count
        return chunks.enumerated().map { (i, chunk) in
            var ie = portIE
            if total > 1 { ie += [0x00, 0x03, UInt8(reference & 0xFF), UInt8(total), UInt8(i + 1)] }
            let udh: [UInt8] = ie.isEmpty ? [] : [UInt8(ie.count)] + ie
            var tpdu: [UInt8] = [udh.isEmpty ? 0x04 : 0x44]
            tpdu += encodeAddress(sender)
            tpdu += [0x00, dcs]
            tpdu += timestamp(date)
            switch chunk {
            case .septets(let s):
                let skip = (udh.count * 8 + 6) / 7
                tpdu.append(UInt8(skip + s.count))
                var packed = pack7(s, skipSeptets: skip)
                for (k, b) in udh.enumerated() { packed[k] = b }
                tpdu += packed
            case .octets(let o):
                tpdu.append(UInt8(udh.count + o.count))
                tpdu += udh + o
            }
            var header = (try? parseUDH(Array(udh.dropFirst()))) ?? SMSHeader()
            if udh.isEmpty { header = SMSHeader() }
            return DeliverPart(pdu: encodeSMSC(smsc) + tpdu, tpduLength: tpdu.count, header: header)
        }
    }

    /// One SMS-DELIVER carrying `userData` as it is (an SMPP submit_sm: the ESME made the UDH and the split).
    static func deliverPart(from sender: String, smsc: String, dcs: UInt8, userData: [UInt8], udhi: Bool,
                            date: Date = Date()) -> DeliverPart {
        var tpdu: [UInt8] = [udhi ? 0x44 : 0x04]
        tpdu += encodeAddress(sender)
        tpdu += [0x00, dcs]
        tpdu += timestamp(date)
        tpdu.append(UInt8(userData.count))
        tpdu += userData
        let header = udhi ? ((try? parseUDH(Array(userData.dropFirst().prefix(Int(userData.first ?? 0))))) ?? SMSHeader()) : SMSHeader()
        return DeliverPart(pdu: encodeSMSC(smsc) + tpdu, tpduLength: tpdu.count, header: header)
    }

    private static func splitOctets(_ bytes: [UInt8], single: Int, multi: Int) -> [[UInt8]] {
        if bytes.count <= single { return [bytes] }
        return stride(from: 0, to: bytes.count, by: multi).map { Array(bytes[$0..<min($0 + multi, bytes.count)]) }
    }

    static func encodeAddress(_ number: String) -> [UInt8] {
        let digits = number.filter(\.isNumber)
        return [UInt8(digits.count), number.hasPrefix("+") ? 0x91 : 0x81] + semiOctets(digits)
    }

    static func encodeSMSC(_ number: String) -> [UInt8] {
        let digits = number.filter(\.isNumber)
        if digits.isEmpty { return [0x00] }
        let body = semiOctets(digits)
        return [UInt8(body.count + 1), number.hasPrefix("+") ? 0x91 : 0x81] + body
    }

    private static func semiOctets(_ digits: String) -> [UInt8] {
        var nibbles = digits.compactMap { $0.wholeNumberValue.map(UInt8.init) }
        if nibbles.count % 2 == 1 { nibbles.append(0x0F) }
        return stride(from: 0, to: nibbles.count, by: 2).map { nibbles[$0] | nibbles[$0 + 1] << 4 }
    }

    private static func timestamp(_ date: Date) -> [UInt8] {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        let c = cal.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let fields = [(c.year ?? 2000) % 100, c.month ?? 1, c.day ?? 1, c.hour ?? 0, c.minute ?? 0, c.second ?? 0, 0]
        return fields.map { v in UInt8(v % 10) << 4 | UInt8(v / 10) }
    }

    // MARK: GSM 7-bit default alphabet (TS 23.038 §6.2.1) and packing

    static let gsmBasic: [Character] = Array(
        "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1B}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
        + "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
    static let gsmExtension: [UInt8: Character] = [
        0x0A: "\u{0C}", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "€",
    ]

    static func gsmChar(_ septet: UInt8) -> Character { gsmBasic[Int(septet & 0x7F)] }

    /// Septets for `text`, or nil when a character needs UCS-2.
    static func encodeGSM7(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        for ch in text {
            if let i = gsmBasic.firstIndex(of: ch), i != 0x1B { out.append(UInt8(i)); continue }
            guard let ext = gsmExtension.first(where: { $0.value == ch }) else { return nil }
            out += [0x1B, ext.key]
        }
        return out
    }

    static func decodeGSM7(_ septets: [UInt8]) -> String {
        var s = ""
        var escaped = false
        for v in septets {
            if escaped { s.append(gsmExtension[v] ?? " "); escaped = false; continue }
            if v == 0x1B { escaped = true; continue }
            s.append(gsmChar(v))
        }
        return s
    }

    /// Packs septets after `skipSeptets` septet positions (the UDH and its fill bits), LSB first.
    static func pack7(_ septets: [UInt8], skipSeptets: Int) -> [UInt8] {
        let totalBits = (skipSeptets + septets.count) * 7
        var out = [UInt8](repeating: 0, count: (totalBits + 7) / 8)
        for (k, v) in septets.enumerated() {
            let bit = (skipSeptets + k) * 7
            let word = UInt16(v & 0x7F) << (bit % 8)
            out[bit / 8] |= UInt8(word & 0xFF)
            if word > 0xFF, bit / 8 + 1 < out.count { out[bit / 8 + 1] |= UInt8(word >> 8) }
        }
        return out
    }

    static func unpack7(_ bytes: [UInt8], septets: Int, skipSeptets: Int) -> [UInt8] {
        var out: [UInt8] = []
        for k in skipSeptets..<max(skipSeptets, septets) {
            let bit = k * 7
            guard bit / 8 < bytes.count else { break }
            var word = UInt16(bytes[bit / 8])
            if bit / 8 + 1 < bytes.count { word |= UInt16(bytes[bit / 8 + 1]) << 8 }
            out.append(UInt8((word >> (bit % 8)) & 0x7F))
        }
        return out
    }
}

struct ByteReader {
    let bytes: [UInt8]
    var pos = 0
    var remaining: [UInt8] { Array(bytes[pos...]) }
    mutating func byte() throws(PDUError) -> UInt8 {
        guard pos < bytes.count else { throw PDUError(description: "PDU truncated at octet \(pos)") }
        defer { pos += 1 }
        return bytes[pos]
    }
    mutating func take(_ n: Int) throws(PDUError) -> [UInt8] {
        guard n >= 0, pos + n <= bytes.count else { throw PDUError(description: "PDU truncated at octet \(pos)") }
        defer { pos += n }
        return Array(bytes[pos..<(pos + n)])
    }
    mutating func skip(_ n: Int) throws(PDUError) { _ = try take(n) }
}

enum Hex {
    static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0x0F)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8).filter { $0 != 0x20 && $0 != 0x0D && $0 != 0x0A }
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < chars.count {
            guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x37
        case 0x61...0x66: return c - 0x57
        default: return nil
        }
    }
}
