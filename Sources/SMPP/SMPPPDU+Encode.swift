// PDU → octets. Fields longer than their §4 limit are cut to fit, so what we send always decodes.
extension SMPPPDU {
    public func encode() -> [UInt8] {
        var w = SMPPWriter()
        w.u32(0) // patched below
        w.u32(command.rawValue)
        w.u32(status)
        w.u32(sequence)
        switch body {
        case .genericNack, .unbind, .unbindResp, .enquireLink, .enquireLinkResp: break
        case .bindTransceiver(let b):
            w.cString(b.systemID, max: 16); w.cString(b.password, max: 9); w.cString(b.systemType, max: 13)
            w.u8(b.interfaceVersion); w.u8(b.addrTON); w.u8(b.addrNPI); w.cString(b.addressRange, max: 41)
        case .bindTransceiverResp(let id):
            w.cString(id, max: 16)
        case .submitSMResp(let id), .deliverSMResp(let id):
            w.cString(id, max: 65)
        case .submitSM(let m), .deliverSM(let m):
            w.cString(m.serviceType, max: 6)
            w.u8(m.sourceTON); w.u8(m.sourceNPI); w.cString(m.sourceAddr, max: 21)
            w.u8(m.destTON); w.u8(m.destNPI); w.cString(m.destAddr, max: 21)
            w.u8(m.esmClass); w.u8(m.protocolID); w.u8(m.priority)
            w.cString(m.scheduleDeliveryTime, max: 17); w.cString(m.validityPeriod, max: 17)
            w.u8(m.registeredDelivery); w.u8(m.replaceIfPresent); w.u8(m.dataCoding); w.u8(m.smDefaultMsgID)
            let sm = m.shortMessage.prefix(SMPPLimits.maxShortMessage)
            w.u8(UInt8(sm.count)); w.bytes(Array(sm))
            for t in m.tlvs {
                w.u16(t.tag); w.u16(UInt16(min(t.value.count, 0xFFFF))); w.bytes(Array(t.value.prefix(0xFFFF)))
            }
        }
        w.patchLength()
        return w.out
    }
}

struct SMPPWriter {
    var out: [UInt8] = []
    mutating func u8(_ v: UInt8) { out.append(v) }
    mutating func u16(_ v: UInt16) { out += [UInt8(v >> 8), UInt8(v & 0xFF)] }
    mutating func u32(_ v: UInt32) { out += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    mutating func bytes(_ b: [UInt8]) { out += b }
    mutating func cString(_ s: String, max: Int) {
        out += Array(s.utf8.filter { $0 != 0 }.prefix(max - 1)); out.append(0)
    }
    mutating func patchLength() {
        let n = UInt32(out.count)
        out[0] = UInt8(n >> 24); out[1] = UInt8(n >> 16 & 0xFF); out[2] = UInt8(n >> 8 & 0xFF); out[3] = UInt8(n & 0xFF)
    }
}
