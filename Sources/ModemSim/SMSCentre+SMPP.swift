// The SMS centre over SMPP 3.4: a submit_sm to the module's number becomes an MT SMS exactly like the control port's
// "send" (same store and forward, same network faults); an MO SMS goes out as deliver_sm to every bound ESME.
import SMPP

extension SMSCentre {
    /// ESME_RSUBMITFAIL (§5.1.3): a submit_sm this centre cannot turn into an SMS.
    static let submitFailed: UInt32 = 0x45

    func listenSMPP(port: Int, password: String?) throws(SMPPSocketError) -> Int {
        let service = SMPPService(queue: engine.queue, password: password)
        service.onSubmit = { [weak self] m in self?.acceptSubmit(m) ?? SMPPStatus.systemError }
        service.onBind = { [weak self] id in self?.emit(NetworkEvent("smpp-bind", [("system-id", .string(id))])) }
        let bound = try service.listen(port: port)
        smpp = service
        return bound
    }

    private static func digits(_ number: String) -> String { number.filter(\.isNumber) }

    /// On the centre's queue; the command_status for the submit_sm_resp.
    func acceptSubmit(_ m: SMPPShortMessage) -> UInt32 {
        guard Self.digits(m.destAddr) == Self.digits(engine.identity.ownNumber), !m.destAddr.isEmpty else {
            return SMPPStatus.invalidDestination
        }
        let from = (m.sourceTON == 1 ? "+" : "") + m.sourceAddr
        let ud = m.userData
        let dcs: UInt8
        switch m.dataCoding {
        case 0x00, 0x01, 0x03:
            // SMSC default, IA5 or Latin-1 text: the centre encodes and splits it as it does for the control port.
            guard !m.hasUDH else { return Self.submitFailed }
            deliver(from: from, body: .text(String(decoding: ud, as: UTF8.self)))
            emit(NetworkEvent("smpp-submit", [("from", .string(from)), ("octets", .int(ud.count))]))
            return SMPPStatus.ok
        case 0x02, 0x04, 0xF4...0xF7: dcs = 0x04
        case 0x08: dcs = 0x08
        default: return Self.submitFailed
        }
        guard ud.count <= 140 else { return SMPPStatus.invalidMessageLength }
        if m.hasUDH, ud.isEmpty || Int(ud[0]) + 1 > ud.count { return Self.submitFailed }
        let part = SimPDU.deliverPart(from: from, smsc: engine.identity.smscNumber, dcs: dcs, userData: ud, udhi: m.hasUDH)
        pending += networkFaults([part]).map { ($0, from) }
        emit(NetworkEvent("smpp-submit", [("from", .string(from)), ("octets", .int(ud.count))]
                          + SMSCentre.headerFields(part.header)))
        flush()
        return SMPPStatus.ok
    }

    /// An MO SMS as deliver_sm: user data with its UDH as the module sent it.
    func forwardOverSMPP(_ decoded: DecodedSubmit) {
        guard let smpp else { return }
        if let n = smppNumber, Self.digits(n) != Self.digits(decoded.destination) { return }
        let own = engine.identity.ownNumber
        var m = SMPPShortMessage()
        m.sourceTON = own.hasPrefix("+") ? 1 : 0; m.sourceNPI = 1; m.sourceAddr = Self.digits(own)
        m.destTON = decoded.destination.hasPrefix("+") ? 1 : 0; m.destNPI = 1; m.destAddr = Self.digits(decoded.destination)
        m.esmClass = decoded.udh.isEmpty ? 0 : SMPPShortMessage.udhi
        switch decoded.body {
        case .data(let d):
            m.dataCoding = 0x04
            m.shortMessage = decoded.udh + d
        case .text(let t):
            if SimPDU.alphabet(of: decoded.dcs) == .ucs2 {
                m.dataCoding = 0x08
                m.shortMessage = decoded.udh + t.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
            } else {
                m.dataCoding = 0x00
                m.shortMessage = decoded.udh + Array(t.utf8)
            }
        }
        if m.shortMessage.count > SMPPLimits.maxShortMessage {
            m.tlvs = [SMPPTLV(tag: SMPPTLV.messagePayload, value: m.shortMessage)]
            m.shortMessage = []
        }
        let sent = smpp.deliver(m)
        emit(NetworkEvent("smpp-deliver", [("to", .string(decoded.destination)), ("esmes", .int(sent)),
                                           ("held", .int(smpp.heldCount))]))
    }
}
