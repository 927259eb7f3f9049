/// SMS TPDU codec (TS 23.040 §9.2) for PDUs as AT+CMGR / +CMT show them and AT+CMGS sends them (TS 27.005 §3).
public enum SMSPDU {
    /// SMSC field (12) + the longest TPDU (SMS-SUBMIT with an absolute validity period: 164).
    public static let maxOctets = 176
}

/// Bounds-checked cursor: every read is checked against the caller's buffer once.
struct PDUReader {
    let p: UnsafeRawBufferPointer
    var i = 0

    init(_ p: UnsafeRawBufferPointer) { self.p = p }

    var remaining: Int { p.count - i }

    mutating func byte() throws(SMSPDUError) -> UInt8 {
        guard i < p.count else { throw .truncated }
        defer { i += 1 }
        return p[i]
    }

    mutating func need(_ n: Int) throws(SMSPDUError) -> Int {
        guard remaining >= n else { throw .truncated }
        defer { i += n }
        return i
    }
}

extension SMSPDU {
    /// Decodes SMS-DELIVER, SMS-SUBMIT or SMS-STATUS-REPORT. `smscPresent` is false for modems that leave the
    /// SMSC field out (some +CDS). Bytes after the user data are ignored.
    public static func decode(_ p: UnsafeRawBufferPointer, smscPresent: Bool = true) throws(SMSPDUError) -> SMSMessage {
        var m = SMSMessage()
        var r = PDUReader(p)
        if smscPresent {
            let len = Int(try r.byte())
            if len > 0 {
                guard len <= 11 else { throw .badAddress }
                m.smsc.typeOfAddress = try r.byte()
                let at = try r.need(len - 1)
                readDigits(p, at: at, digits: 2 * (len - 1), into: &m.smsc)
            }
        }
        m.firstOctet = try r.byte()
        switch m.firstOctet & 0x03 {
        case 0x00:
            m.type = .deliver
            m.address = try readAddress(&r)
            m.protocolIdentifier = try r.byte()
            m.dataCoding = try r.byte()
            m.timestamp = SMSTimestamp(octets: p, at: try r.need(7))
        case 0x01:
            m.type = .submit
            m.messageReference = try r.byte()
            m.address = try readAddress(&r)
            m.protocolIdentifier = try r.byte()
            m.dataCoding = try r.byte()
            switch (m.firstOctet >> 3) & 0x03 {
            case 0x02: _ = try r.need(1)  // relative
            case 0x01, 0x03: _ = try r.need(7)  // enhanced, absolute
            default: break
            }
        case 0x02:
            m.type = .statusReport
            m.messageReference = try r.byte()
            m.address = try readAddress(&r)
            m.timestamp = SMSTimestamp(octets: p, at: try r.need(7))
            m.dischargeTime = SMSTimestamp(octets: p, at: try r.need(7))
            m.status = try r.byte()
            return m
        default:
            throw .unsupportedMessageType
        }
        m.alphabet = SMSAlphabet(dcs: m.dataCoding)
        try readUserData(&r, into: &m)
        return m
    }

    /// Decodes ASCII hex (one line as the modem prints it) without touching the heap.
    public static func decode(hex: UnsafeRawBufferPointer, smscPresent: Bool = true) throws(SMSPDUError) -> SMSMessage {
        var buf = InlineArray<176, UInt8>(repeating: 0)
        var span = buf.mutableSpan
        return try span.withUnsafeMutableBytes { (raw) throws(SMSPDUError) -> SMSMessage in
            let n = try SMSHex.decode(hex, into: raw)
            return try decode(UnsafeRawBufferPointer(rebasing: raw[0..<n]), smscPresent: smscPresent)
        }
    }

    // TS 23.040 §9.1.2.5: length counts semi-octets (digits), or for alphanumeric the semi-octets of packed septets.
    static func readAddress(_ r: inout PDUReader) throws(SMSPDUError) -> SMSAddress {
        var a = SMSAddress()
        let digits = Int(try r.byte())
        guard digits <= SMSAddress.maxDigits else { throw .badAddress }
        a.typeOfAddress = try r.byte()
        let at = try r.need((digits + 1) / 2)
        if a.kind == .alphanumeric {
            var septets = InlineArray<12, UInt8>(repeating: 0)
            let n = digits * 4 / 7
            for k in 0..<n { septets[k] = septet(r.p, base: at, bit: 7 * k) }
            var text = InlineArray<40, UInt8>(repeating: 0)
            var ts = text.mutableSpan
            let written = ts.withUnsafeMutableBytes { out in
                var w = SMSText.UTF8Writer(out: out)
                septets.span.withUnsafeBytes { s in
                    SMSText.gsm7ToUTF8(septets: UnsafeRawBufferPointer(rebasing: s[0..<n]), into: &w)
                }
                return w.count
            }
            for k in 0..<written { a.append(text[k]) }
        } else {
            readDigits(r.p, at: at, digits: digits, into: &a)
        }
        return a
    }

    /// Swapped semi-octets; an F nibble ends the number early.
    static func readDigits(_ p: UnsafeRawBufferPointer, at: Int, digits: Int, into a: inout SMSAddress) {
        for k in 0..<digits {
            let b = p[at + k / 2]
            let v = k % 2 == 0 ? b & 0x0F : b >> 4
            if v == 0x0F { return }
            a.append(SMSAddress.semiOctetChar(v))
        }
    }

    /// The 7 bits starting `bit` bits into `p[base...]`, LSB first (TS 23.038 §6.1.2.1.1).
    @inline(__always) static func septet(_ p: UnsafeRawBufferPointer, base: Int, bit: Int) -> UInt8 {
        let at = base + bit / 8
        let shift = bit % 8
        var v = UInt16(p[at]) >> shift
        if shift > 1 { v |= UInt16(p[at + 1]) << (8 - shift) }
        return UInt8(truncatingIfNeeded: v) & 0x7F
    }

    static func readUserData(_ r: inout PDUReader, into m: inout SMSMessage) throws(SMSPDUError) {
        let udl = Int(try r.byte())
        let start = r.i
        let available = r.remaining
        if m.alphabet == .gsm7 {
            guard udl <= 160 else { throw .userDataTooLong }
            var septets = udl
            if (udl * 7 + 7) / 8 > available {
                septets = available * 8 / 7
                m.clipped = true
                m.announcedUserData = UInt8(udl)
                m.carriedUserData = UInt8(septets)
            }
            var skip = 0
            if m.hasHeader {
                guard available >= 1 else { throw .truncated }
                let headerOctets = Int(r.p[start]) + 1
                skip = (headerOctets * 8 + 6) / 7  // header plus fill bits, in septets
                guard headerOctets <= available, skip <= septets else { throw .badUserDataHeader }
                m.header = try SMSUserDataHeader(parsing: r.p, from: start + 1, end: start + headerOctets)
            }
            for k in skip..<septets { m.appendPayload(septet(r.p, base: start, bit: 7 * k)) }
        } else {
            guard udl <= 140 else { throw .userDataTooLong }
            var octets = udl
            if udl > available {
                // Binary data must arrive whole; text is shown as far as it goes.
                guard m.alphabet == .ucs2 else { throw .truncated }
                octets = available
                m.clipped = true
                m.announcedUserData = UInt8(udl)
                m.carriedUserData = UInt8(octets)
            }
            var skip = 0
            if m.hasHeader {
                guard octets >= 1 else { throw .truncated }
                skip = Int(r.p[start]) + 1
                guard skip <= octets else { throw .badUserDataHeader }
                m.header = try SMSUserDataHeader(parsing: r.p, from: start + 1, end: start + skip)
            }
            for k in skip..<octets { m.appendPayload(r.p[start + k]) }
        }
    }
}
