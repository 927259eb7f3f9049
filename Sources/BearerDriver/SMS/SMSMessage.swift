/// TP-MTI as seen by the receiving side (TS 23.040 §9.2.3.1).
public enum SMSMessageType: Sendable, Equatable {
    case deliver, submit, statusReport
}

/// Character set of the user data, from TP-DCS (TS 23.038 §4).
public enum SMSAlphabet: Sendable, Equatable {
    case gsm7, data8, ucs2

    /// Reserved alphabets are read as GSM 7-bit (TS 23.038 §4); compressed text is handed over raw as 8-bit data.
    public init(dcs: UInt8) {
        switch dcs >> 4 {
        case 0x0...0x7:
            if dcs & 0x20 != 0 { self = .data8; return }
            switch (dcs >> 2) & 0x03 {
            case 1: self = .data8
            case 2: self = .ucs2
            default: self = .gsm7
            }
        case 0xE: self = .ucs2
        case 0xF: self = dcs & 0x04 != 0 ? .data8 : .gsm7
        default: self = .gsm7
        }
    }
}

/// One decoded SMS TPDU, held inline: no heap, about 300 bytes.
/// `payload` is the user data after the UDH: octets for 8-bit and UCS-2, one septet per byte for GSM 7-bit.
public struct SMSMessage: Sendable {
    public static let maxPayload = 160

    public var type: SMSMessageType = .deliver
    public var firstOctet: UInt8 = 0
    public var smsc = SMSAddress()
    /// Originator (SMS-DELIVER), destination (SMS-SUBMIT) or recipient (SMS-STATUS-REPORT).
    public var address = SMSAddress()
    public var messageReference: UInt8 = 0
    public var protocolIdentifier: UInt8 = 0
    public var dataCoding: UInt8 = 0
    public var alphabet: SMSAlphabet = .gsm7
    /// Service centre time stamp (DELIVER, STATUS-REPORT).
    public var timestamp = SMSTimestamp()
    /// Discharge time (STATUS-REPORT).
    public var dischargeTime = SMSTimestamp()
    /// TP-ST (STATUS-REPORT).
    public var status: UInt8 = 0
    public var header = SMSUserDataHeader()
    public var hasHeader: Bool { firstOctet & 0x40 != 0 && type != .statusReport }
    /// Text whose user data ended before TP-UDL said: shown as far as it goes. 8-bit data is never clipped.
    public var clipped = false
    /// When clipped: TP-UDL as announced and what the PDU carries, both in septets (GSM 7-bit) or octets.
    public var announcedUserData: UInt8 = 0
    public var carriedUserData: UInt8 = 0
    public private(set) var payloadCount = 0
    var payloadStorage = InlineArray<160, UInt8>(repeating: 0)

    public init() {}

    public subscript(payload i: Int) -> UInt8 { payloadStorage[i] }

    public var payload: Span<UInt8> {
        @_lifetime(borrow self) borrowing get { payloadStorage.span.extracting(0..<payloadCount) }
    }

    mutating func appendPayload(_ b: UInt8) {
        payloadStorage[payloadCount] = b
        payloadCount += 1
    }

    /// Copies the payload into `out`; returns octets written.
    public func copyPayload(into out: UnsafeMutableRawBufferPointer) throws(SMSPDUError) -> Int {
        guard payloadCount <= out.count else { throw .bufferTooSmall }
        for i in 0..<payloadCount { out[i] = payloadStorage[i] }
        return payloadCount
    }

    /// Writes the text as UTF-8 into `out` and returns bytes written; stops at a whole character when
    /// `out` is full. 8-bit data is written as Latin-1. 480 bytes always suffice.
    public func writeText(into out: UnsafeMutableRawBufferPointer) -> Int {
        payloadStorage.span.withUnsafeBytes { raw in
            SMSText.writeUTF8(UnsafeRawBufferPointer(rebasing: raw[0..<payloadCount]), alphabet: alphabet, into: out)
        }
    }
}
