// The SMPP receive path of the gateway's ESME and the emulated SMSC: header check, PDU decode, UDH parse.
// The input is one PDU's octets as read off the socket. Whatever decodes must encode to octets that decode again.
import SMPP

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSMPPPDU(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let h = try? SMPPPDU.header(bytes) {
        precondition(h.length >= 16 && h.length <= SMPPLimits.maxPDULength)
    }
    guard let pdu = try? SMPPPDU.decode(bytes) else { return 0 }
    let again: SMPPPDU
    do { again = try SMPPPDU.decode(pdu.encode()) } catch { preconditionFailure("re-encoded PDU does not decode: \(error)") }
    precondition(again.command == pdu.command && again.sequence == pdu.sequence && again.status == pdu.status)
    switch pdu.body {
    case .submitSM(let m), .deliverSM(let m):
        if let (_, payload) = try? PortAddressedSMS.parse(m.userData, udhi: m.hasUDH) {
            precondition(payload.count <= m.userData.count)
        }
    default: break
    }
    return 0
}
