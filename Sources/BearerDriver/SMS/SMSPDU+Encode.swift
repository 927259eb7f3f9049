/// What goes into each SMS-SUBMIT part besides the data. Binary data (DCS 0x04) only: that is what
/// the handset sends.
public struct SMSSubmitOptions: Sendable {
    public var destinationPort: UInt16?
    public var sourcePort: UInt16 = 0
    /// Force IEI 0x05 even when both ports fit in 8 bits.
    public var widePorts = false
    /// Concatenation reference; IEI 0x08 when above 255 or when `wideReference` is set.
    public var reference: UInt16 = 0
    public var wideReference = false
    public var messageReference: UInt8 = 0
    public var requestStatusReport = false
    public var protocolIdentifier: UInt8 = 0
    /// TP-VP, relative format (TS 23.040 §9.2.3.12.1); nil leaves it out.
    public var validity: UInt8?

    public init() {}

    var portsIE: SMSPorts? {
        destinationPort.map { d in
            SMSPorts(destination: d, source: sourcePort, wide: widePorts || d > 0xFF || sourcePort > 0xFF)
        }
    }
}

extension SMSPDU {
    /// Most user data one part can carry, UDH included (TS 23.040 §9.2.3.16).
    public static let maxUserData = 140

    /// Data octets per part for `options`, when the data needs `concatenated` parts or fits in one.
    static func capacity(_ o: SMSSubmitOptions, concatenated: Bool) -> Int {
        var udh = SMSUserDataHeader()
        udh.ports = o.portsIE
        if concatenated {
            udh.concat = SMSConcat(reference: o.reference, total: 2, sequence: 1,
                                   wideReference: o.wideReference || o.reference > 0xFF)
        }
        let headerOctets = udh.encodedCount
        return maxUserData - (headerOctets > 0 ? headerOctets + 1 : 0)
    }

    /// Number of SMS-SUBMIT parts `dataCount` octets take (1...255), or nil when they do not fit in 255.
    public static func submitPartCount(dataCount: Int, options: SMSSubmitOptions) -> Int? {
        if dataCount <= capacity(options, concatenated: false) { return 1 }
        let per = capacity(options, concatenated: true)
        let n = (dataCount + per - 1) / per
        return n <= 255 ? n : nil
    }

    /// Writes part `index` (0-based) of `data` as AT+CMGS sends it in PDU mode: SMSC field 00, then the TPDU.
    /// Returns the octets written and the TPDU length for `AT+CMGS=<length>`.
    public static func encodeSubmit(
        to destination: borrowing SMSAddress, data: UnsafeRawBufferPointer, part index: Int,
        options: SMSSubmitOptions, into out: UnsafeMutableRawBufferPointer
    ) throws(SMSPDUError) -> (octets: Int, tpduLength: Int) {
        guard !destination.isEmpty, destination.kind != .alphanumeric,
              let parts = submitPartCount(dataCount: data.count, options: options),
              index >= 0, index < parts
        else { throw .badParameter }
        var udh = SMSUserDataHeader()
        udh.ports = options.portsIE
        let per = capacity(options, concatenated: parts > 1)
        if parts > 1 {
            udh.concat = SMSConcat(reference: options.reference, total: UInt8(parts), sequence: UInt8(index + 1),
                                   wideReference: options.wideReference || options.reference > 0xFF)
        }
        let from = index * per
        let chunk = min(per, data.count - from)
        let hasUDH = udh.encodedCount > 0
        let udl = chunk + (hasUDH ? udh.encodedCount + 1 : 0)
        let addressOctets = (destination.count + 1) / 2
        let total = 1 + 1 + 1 + 2 + addressOctets + 2 + (options.validity == nil ? 0 : 1) + 1 + udl
        guard total <= out.count else { throw .bufferTooSmall }

        var o = 0
        out[o] = 0x00; o += 1  // SMSC: the one configured in the module
        var first: UInt8 = 0x01  // SMS-SUBMIT
        if options.validity != nil { first |= 0x10 }
        if options.requestStatusReport { first |= 0x20 }
        if hasUDH { first |= 0x40 }
        out[o] = first; o += 1
        out[o] = options.messageReference; o += 1
        out[o] = UInt8(destination.count); o += 1
        out[o] = destination.typeOfAddress; o += 1
        var k = 0
        while k < destination.count {
            let lo = SMSAddress.semiOctet(destination[k]) ?? 0x0F
            let hi = k + 1 < destination.count ? SMSAddress.semiOctet(destination[k + 1]) ?? 0x0F : 0x0F
            out[o] = hi << 4 | lo; o += 1
            k += 2
        }
        out[o] = options.protocolIdentifier; o += 1
        out[o] = 0x04; o += 1  // 8-bit data, no message class
        if let vp = options.validity { out[o] = vp; o += 1 }
        out[o] = UInt8(udl); o += 1
        if hasUDH { o += udh.write(into: out, at: o) }
        for j in 0..<chunk { out[o + j] = data[from + j] }
        o += chunk
        return (o, o - 1)
    }
}
