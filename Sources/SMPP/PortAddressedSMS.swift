// Binary SMS with a user data header (3GPP TS 23.040 §9.2.3.24): 16-bit application ports (IEI 0x05) and
// concatenation with a 16-bit reference (IEI 0x08). The SMSC maps one submit_sm to one SMS, so parts fit 140 octets.

public struct UDHFields: Equatable, Sendable {
    public var portDst: Int?
    public var portSrc: Int?
    public var concatRef: Int?
    public var concatTotal: Int?
    public var concatSeq: Int?
    public init() {}
}

public enum UDHError: Error, Equatable, Sendable {
    case missingHeader          // UDHI set but no room for the UDHL octet
    case headerOverrun          // UDHL or an element length runs past the data
    case tooManyParts(Int)
}

/// Why an ESME did not queue a message.
public enum ESMESendError: Error, Equatable, Sendable {
    /// The payload cannot be carried as port-addressed SMS (too many parts).
    case udh(UDHError)
    /// The outbox holds `capacity` parts already (or this message's parts would take it past that).
    case outboxFull(capacity: Int)
}

public enum PortAddressedSMS {
    public static let smsOctets = 140

    /// short_message values for `payload`, each with the port UDH and, when more than one, IEI 0x08.
    public static func parts(_ payload: [UInt8], portDst: Int, portSrc: Int, reference: UInt16)
        throws(UDHError) -> [[UInt8]] {
        let port: [UInt8] = [0x05, 0x04, UInt8(portDst >> 8 & 0xFF), UInt8(portDst & 0xFF),
                             UInt8(portSrc >> 8 & 0xFF), UInt8(portSrc & 0xFF)]
        let single = smsOctets - 1 - port.count
        if payload.count <= single { return [[UInt8(port.count)] + port + payload] }
        let per = smsOctets - 1 - port.count - 6
        let total = (payload.count + per - 1) / per
        guard total <= 255 else { throw .tooManyParts(total) }
        return (0..<total).map { k in
            let ie = port + [0x08, 0x04, UInt8(reference >> 8), UInt8(reference & 0xFF), UInt8(total), UInt8(k + 1)]
            return [UInt8(ie.count)] + ie + Array(payload[(k * per)..<min((k + 1) * per, payload.count)])
        }
    }

    /// Splits user data into its header fields and payload; without UDHI the whole is payload.
    public static func parse(_ userData: [UInt8], udhi: Bool) throws(UDHError) -> (UDHFields, [UInt8]) {
        var h = UDHFields()
        guard udhi else { return (h, userData) }
        guard let udhl = userData.first else { throw .missingHeader }
        let end = 1 + Int(udhl)
        guard end <= userData.count else { throw .headerOverrun }
        var i = 1
        while i + 1 < end {
            let iei = userData[i], len = Int(userData[i + 1])
            guard i + 2 + len <= end else { throw .headerOverrun }
            let v = userData[(i + 2)..<(i + 2 + len)].map(Int.init)
            switch (iei, len) {
            case (0x00, 3): h.concatRef = v[0]; h.concatTotal = v[1]; h.concatSeq = v[2]
            case (0x08, 4): h.concatRef = v[0] << 8 | v[1]; h.concatTotal = v[2]; h.concatSeq = v[3]
            case (0x04, 2): h.portDst = v[0]; h.portSrc = v[1]
            case (0x05, 4): h.portDst = v[0] << 8 | v[1]; h.portSrc = v[2] << 8 | v[3]
            default: break
            }
            i += 2 + len
        }
        return (h, Array(userData[end...]))
    }
}
