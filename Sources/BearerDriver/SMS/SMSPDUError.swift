/// Why a PDU was not decoded or not encoded. Decoding never reads past the caller's buffer; each case
/// names the first field that did not fit or did not make sense.
public enum SMSPDUError: Error, Equatable, Sendable {
    /// Odd number of hex digits, or a character that is not a hex digit.
    case badHex
    /// The PDU ends inside a field it announces (SMSC, address, timestamp, user data).
    case truncated
    /// TP-MTI 3 (reserved), or an SMS-COMMAND where a message was expected.
    case unsupportedMessageType
    /// Address longer than 20 digits, or an SMSC field longer than 11 octets.
    case badAddress
    /// UDHL runs past the user data, or an information element runs past the header.
    case badUserDataHeader
    /// TP-UDL above 140 octets or 160 septets.
    case userDataTooLong
    /// Caller's output buffer cannot hold the result.
    case bufferTooSmall
    /// Encoder input out of range: empty or bad number, too much data for 255 parts, bad part index.
    case badParameter
}
