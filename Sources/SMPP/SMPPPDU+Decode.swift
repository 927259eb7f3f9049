// Octets → PDU. Every path checks its bounds and throws a typed SMPPError; nothing here can trap on input.
extension SMPPPDU {
    /// The header alone, for framing and for a generic_nack that echoes the sequence of a PDU we could not read.
    public struct Header: Equatable, Sendable {
        public var length: UInt32, commandID: UInt32, status: UInt32, sequence: UInt32
    }

    /// Reads the 16 header octets and checks command_length against our bound.
    public static func header(_ b: [UInt8]) throws(SMPPError) -> Header {
        guard b.count >= SMPPLimits.headerLength else { throw .truncated }
        var r = SMPPReader(b)
        let h = Header(length: try r.u32(), commandID: try r.u32(), status: try r.u32(), sequence: try r.u32())
        guard h.length >= UInt32(SMPPLimits.headerLength), h.length <= SMPPLimits.maxPDULength else {
            throw .badLength(h.length)
        }
        return h
    }

    /// Decodes exactly one whole PDU (`b.count` must equal command_length).
    public static func decode(_ b: [UInt8]) throws(SMPPError) -> SMPPPDU {
        let h = try header(b)
        guard UInt32(b.count) == h.length else { throw .badLength(h.length) }
        guard let command = SMPPCommand(rawValue: h.commandID) else { throw .unknownCommand(h.commandID) }
        var r = SMPPReader(b)
        try r.skip(SMPPLimits.headerLength)
        let body: SMPPBody
        switch command {
        case .genericNack: body = .genericNack
        case .unbind: body = .unbind
        case .unbindResp: body = .unbindResp
        case .enquireLink: body = .enquireLink
        case .enquireLinkResp: body = .enquireLinkResp
        case .bindTransceiver:
            var bind = SMPPBind(systemID: try r.cString("system_id", max: 16), password: try r.cString("password", max: 9),
                                systemType: try r.cString("system_type", max: 13))
            bind.interfaceVersion = try r.u8(); bind.addrTON = try r.u8(); bind.addrNPI = try r.u8()
            bind.addressRange = try r.cString("address_range", max: 41)
            body = .bindTransceiver(bind)
        case .bindTransceiverResp:
            // An error response may carry no body (§4.1.6); sc_interface_version TLV may follow.
            body = .bindTransceiverResp(systemID: r.atEnd ? "" : try r.cString("system_id", max: 16))
            _ = try r.tlvs()
        case .submitSMResp, .deliverSMResp:
            let id = r.atEnd ? "" : try r.cString("message_id", max: 65)
            body = command == .submitSMResp ? .submitSMResp(messageID: id) : .deliverSMResp(messageID: id)
        case .submitSM, .deliverSM:
            let m = try shortMessage(&r)
            body = command == .submitSM ? .submitSM(m) : .deliverSM(m)
        }
        guard r.atEnd else { throw .trailingOctets(r.remainingCount) }
        return SMPPPDU(body, sequence: h.sequence, status: h.status)
    }

    private static func shortMessage(_ r: inout SMPPReader) throws(SMPPError) -> SMPPShortMessage {
        var m = SMPPShortMessage()
        m.serviceType = try r.cString("service_type", max: 6)
        m.sourceTON = try r.u8(); m.sourceNPI = try r.u8(); m.sourceAddr = try r.cString("source_addr", max: 21)
        m.destTON = try r.u8(); m.destNPI = try r.u8(); m.destAddr = try r.cString("destination_addr", max: 21)
        m.esmClass = try r.u8(); m.protocolID = try r.u8(); m.priority = try r.u8()
        m.scheduleDeliveryTime = try r.cString("schedule_delivery_time", max: 17)
        m.validityPeriod = try r.cString("validity_period", max: 17)
        m.registeredDelivery = try r.u8(); m.replaceIfPresent = try r.u8()
        m.dataCoding = try r.u8(); m.smDefaultMsgID = try r.u8()
        let smLength = Int(try r.u8())
        guard smLength <= SMPPLimits.maxShortMessage else { throw .fieldTooLong("short_message") }
        m.shortMessage = try r.take(smLength)
        m.tlvs = try r.tlvs()
        return m
    }
}

struct SMPPReader {
    private let b: [UInt8]
    private var i = 0
    init(_ b: [UInt8]) { self.b = b }

    var atEnd: Bool { i >= b.count }
    var remainingCount: Int { b.count - i }

    mutating func u8() throws(SMPPError) -> UInt8 {
        guard i < b.count else { throw .truncated }
        defer { i += 1 }
        return b[i]
    }
    mutating func u16() throws(SMPPError) -> UInt16 { UInt16(try u8()) << 8 | UInt16(try u8()) }
    mutating func u32() throws(SMPPError) -> UInt32 { UInt32(try u16()) << 16 | UInt32(try u16()) }
    mutating func skip(_ n: Int) throws(SMPPError) { _ = try take(n) }
    mutating func take(_ n: Int) throws(SMPPError) -> [UInt8] {
        guard n >= 0, n <= b.count - i else { throw .truncated }
        defer { i += n }
        return Array(b[i..<(i + n)])
    }

    /// A NUL-terminated string of at most `max` octets including the NUL.
    mutating func cString(_ field: String, max: Int) throws(SMPPError) -> String {
        guard let nul = b[i...].firstIndex(of: 0) else {
            throw b.count - i >= max ? .fieldTooLong(field) : .unterminatedCString(field)
        }
        guard nul - i + 1 <= max else { throw .fieldTooLong(field) }
        defer { i = nul + 1 }
        return String(decoding: b[i..<nul], as: UTF8.self)
    }

    /// Optional parameters to the end of the PDU (§3.2.4: tag, length, value).
    mutating func tlvs() throws(SMPPError) -> [SMPPTLV] {
        var out: [SMPPTLV] = []
        while !atEnd {
            guard remainingCount >= 4 else { throw .trailingOctets(remainingCount) }
            let tag = try u16(), len = Int(try u16())
            guard len <= remainingCount else { throw .badTLV(tag) }
            out.append(SMPPTLV(tag: tag, value: try take(len)))
        }
        return out
    }
}
