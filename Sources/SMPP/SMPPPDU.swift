// SMPP 3.4 PDUs the gateway and the emulated SMS centre exchange (SMPP v3.4 Issue 1.2, §3.2 header, §4 operations,
// §5.1.2.1 command ids, §5.1.3 status codes). Field limits as in §4: C-octet strings count their NUL.

/// Every way a PDU can be wrong on the wire. Decoding never traps; the caller counts these.
public enum SMPPError: Error, Equatable, Sendable, Hashable {
    case truncated                          // fewer octets than a field needs
    case badLength(UInt32)                  // command_length < 16 or > maxPDULength, or not the octets given
    case unterminatedCString(String)        // no NUL within the field's limit
    case fieldTooLong(String)
    case unknownCommand(UInt32)
    case trailingOctets(Int)                // mandatory body shorter than command_length and not TLVs
    case badTLV(UInt16)
}

public enum SMPPCommand: UInt32, Sendable {
    case genericNack = 0x8000_0000
    case bindTransceiver = 0x0000_0009, bindTransceiverResp = 0x8000_0009
    case unbind = 0x0000_0006, unbindResp = 0x8000_0006
    case submitSM = 0x0000_0004, submitSMResp = 0x8000_0004
    case deliverSM = 0x0000_0005, deliverSMResp = 0x8000_0005
    case enquireLink = 0x0000_0015, enquireLinkResp = 0x8000_0015

    public var isResponse: Bool { rawValue & 0x8000_0000 != 0 }
}

/// command_status values we send or act on (§5.1.3).
public enum SMPPStatus {
    public static let ok: UInt32 = 0x00
    public static let invalidMessageLength: UInt32 = 0x01
    public static let invalidCommandLength: UInt32 = 0x02
    public static let invalidCommandID: UInt32 = 0x03
    public static let incorrectBindStatus: UInt32 = 0x04
    public static let alreadyBound: UInt32 = 0x05
    public static let systemError: UInt32 = 0x08
    public static let invalidDestination: UInt32 = 0x0B
    public static let bindFailed: UInt32 = 0x0D
    public static let invalidPassword: UInt32 = 0x0E
    public static let invalidSystemID: UInt32 = 0x0F
    public static let messageQueueFull: UInt32 = 0x14
    public static let throttled: UInt32 = 0x58
    public static let rejectedForGood: UInt32 = 0x64   // ESME_RX_R_APPN: the ESME rejects the message permanently
    public static let temporaryAppError: UInt32 = 0x65 // ESME_RX_T_APPN: the ESME cannot take it now; retry later
}

public enum SMPPLimits {
    public static let headerLength = 16
    /// Larger frames are refused before reading their body: a peer cannot make us buffer more.
    public static let maxPDULength: UInt32 = 64 * 1024
    public static let maxShortMessage = 254
}

public struct SMPPTLV: Equatable, Sendable {
    public var tag: UInt16
    public var value: [UInt8]
    public init(tag: UInt16, value: [UInt8]) { self.tag = tag; self.value = value }

    public static let messagePayload: UInt16 = 0x0424
    public static let receiptedMessageID: UInt16 = 0x001E
    public static let scInterfaceVersion: UInt16 = 0x0210
}

public struct SMPPBind: Equatable, Sendable {
    public var systemID: String
    public var password: String
    public var systemType = ""
    public var interfaceVersion: UInt8 = 0x34
    public var addrTON: UInt8 = 0
    public var addrNPI: UInt8 = 0
    public var addressRange = ""
    public init(systemID: String, password: String, systemType: String = "") {
        self.systemID = systemID; self.password = password; self.systemType = systemType
    }
}

/// The body shared by submit_sm and deliver_sm (§4.4.1, §4.6.1: the same fields in the same order).
public struct SMPPShortMessage: Equatable, Sendable {
    public var serviceType = ""
    public var sourceTON: UInt8 = 0
    public var sourceNPI: UInt8 = 0
    public var sourceAddr = ""
    public var destTON: UInt8 = 0
    public var destNPI: UInt8 = 0
    public var destAddr = ""
    public var esmClass: UInt8 = 0
    public var protocolID: UInt8 = 0
    public var priority: UInt8 = 0
    public var scheduleDeliveryTime = ""
    public var validityPeriod = ""
    public var registeredDelivery: UInt8 = 0
    public var replaceIfPresent: UInt8 = 0
    public var dataCoding: UInt8 = 0
    public var smDefaultMsgID: UInt8 = 0
    public var shortMessage: [UInt8] = []
    public var tlvs: [SMPPTLV] = []

    public init() {}

    public static let udhi: UInt8 = 0x40
    /// esm_class message type bits 2-5 = 0001: an SMSC delivery receipt (§5.2.12).
    public var isDeliveryReceipt: Bool { esmClass & 0x3C == 0x04 }
    public var hasUDH: Bool { esmClass & Self.udhi != 0 }

    /// short_message, or message_payload when short_message is empty (§5.3.2.32: one or the other).
    public var userData: [UInt8] {
        if shortMessage.isEmpty, let p = tlvs.first(where: { $0.tag == SMPPTLV.messagePayload }) { return p.value }
        return shortMessage
    }
}

public enum SMPPBody: Equatable, Sendable {
    case genericNack
    case bindTransceiver(SMPPBind)
    case bindTransceiverResp(systemID: String)
    case unbind, unbindResp
    case submitSM(SMPPShortMessage)
    case submitSMResp(messageID: String)
    case deliverSM(SMPPShortMessage)
    case deliverSMResp(messageID: String)
    case enquireLink, enquireLinkResp

    public var command: SMPPCommand {
        switch self {
        case .genericNack: .genericNack
        case .bindTransceiver: .bindTransceiver
        case .bindTransceiverResp: .bindTransceiverResp
        case .unbind: .unbind
        case .unbindResp: .unbindResp
        case .submitSM: .submitSM
        case .submitSMResp: .submitSMResp
        case .deliverSM: .deliverSM
        case .deliverSMResp: .deliverSMResp
        case .enquireLink: .enquireLink
        case .enquireLinkResp: .enquireLinkResp
        }
    }
}

public struct SMPPPDU: Equatable, Sendable {
    public var status: UInt32
    public var sequence: UInt32
    public var body: SMPPBody
    public init(_ body: SMPPBody, sequence: UInt32, status: UInt32 = SMPPStatus.ok) {
        self.body = body; self.sequence = sequence; self.status = status
    }
    public var command: SMPPCommand { body.command }
}
