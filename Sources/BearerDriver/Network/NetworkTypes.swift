/// SIM state from `+CPIN:` (TS 27.007 §8.3).
public enum SIMState: Equatable, Sendable {
    case ready
    case pinRequired
    case pukRequired
    case pin2Required
    case puk2Required
    case phoneLocked
    case notInserted
    case other

    static func parse(_ code: UnsafeRawBufferPointer) -> SIMState {
        if code.equals("READY") { return .ready }
        if code.equals("SIM PIN") { return .pinRequired }
        if code.equals("SIM PUK") { return .pukRequired }
        if code.equals("SIM PIN2") { return .pin2Required }
        if code.equals("SIM PUK2") { return .puk2Required }
        if code.hasPrefix("PH-") { return .phoneLocked }
        if code.equals("NOT INSERTED") { return .notInserted }
        return .other
    }
}

/// `+CSQ: <rssi>,<ber>` (TS 27.007 §8.5).
public struct SignalQuality: Equatable, Sendable {
    public let rssi: Int
    public let ber: Int

    /// Received power in dBm, or nil when the module does not know (rssi 99).
    public var dBm: Int? { rssi <= 31 ? -113 + 2 * rssi : nil }
}

/// Which registration a line reports: circuit (`+CREG`), GPRS (`+CGREG`) or EPS (`+CEREG`).
public enum RegistrationDomain: Equatable, Sendable { case circuit, packet, eps }

/// `<stat>` of TS 27.007 §7.2 / §10.1.20 / §10.1.22.
public enum RegistrationStatus: Int, Equatable, Sendable {
    case notRegistered = 0
    case home = 1
    case searching = 2
    case denied = 3
    case unknown = 4
    case roaming = 5
    case smsOnlyHome = 6
    case smsOnlyRoaming = 7
    case emergencyOnly = 8
    case csfbNotPreferredHome = 9
    case csfbNotPreferredRoaming = 10

    public var isRegistered: Bool {
        switch self {
        case .home, .roaming, .smsOnlyHome, .smsOnlyRoaming, .csfbNotPreferredHome, .csfbNotPreferredRoaming: true
        default: false
        }
    }
}

public struct NetworkRegistration: Equatable, Sendable {
    public let domain: RegistrationDomain
    public let status: RegistrationStatus
    /// LAC or TAC, and cell id, when the module reports location (n = 2).
    public let area: UInt32?
    public let cell: UInt32?
    /// Access technology (0 GSM … 7 E-UTRAN …), when reported.
    public let accessTechnology: Int?

    /// Parses a `+CREG:`/`+CGREG:`/`+CEREG:` line. `readAnswer` selects the read-command form
    /// (`n,stat[,lac,ci[,act]]`) over the URC form (`stat[,lac,ci[,act]]`); a read answer with a
    /// single field is a URC that crossed the command and is read as one.
    public static func parse(_ line: UnsafeRawBufferPointer, readAnswer: Bool) -> NetworkRegistration? {
        let domain: RegistrationDomain
        let prefixLength: Int
        if line.hasPrefix("+CREG:") {
            domain = .circuit; prefixLength = 6
        } else if line.hasPrefix("+CGREG:") {
            domain = .packet; prefixLength = 7
        } else if line.hasPrefix("+CEREG:") {
            domain = .eps; prefixLength = 7
        } else {
            return nil
        }
        var f = ATFields(line.suffix(from: prefixLength))
        if readAnswer && f.remaining >= 2 { f.skip() }
        guard let s = f.int(), let status = RegistrationStatus(rawValue: s) else { return nil }
        let area = f.optionalHex()
        let cell = f.optionalHex()
        let act = f.optionalInt()
        if f.failed { return nil }
        return NetworkRegistration(domain: domain, status: status, area: area, cell: cell, accessTechnology: act)
    }
}

/// An IPv4 UDP endpoint (address in host order: 10.0.0.1 is 0x0A000001).
public struct UDPEndpoint: Equatable, Sendable {
    public var address: UInt32
    public var port: UInt16

    public init(address: UInt32, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// Parses dotted-quad text (`"10.0.0.1"`).
    public static func parseAddress(_ text: UnsafeRawBufferPointer) -> UInt32? {
        var value: UInt32 = 0
        var octet = 0
        var digits = 0
        var dots = 0
        for b in text {
            if ASCII.isDigit(b) {
                octet = octet * 10 + Int(b - 0x30)
                digits += 1
                if octet > 255 || digits > 3 { return nil }
            } else if b == 0x2E {
                if digits == 0 || dots == 3 { return nil }
                value = value << 8 | UInt32(octet)
                octet = 0
                digits = 0
                dots += 1
            } else {
                return nil
            }
        }
        if dots != 3 || digits == 0 { return nil }
        return value << 8 | UInt32(octet)
    }
}

/// An operator from `+COPS?`: the name is a view valid until the next driver call.
public struct OperatorInfo {
    public let mode: Int
    public let format: Int?
    public let name: UnsafeRawBufferPointer
    public let accessTechnology: Int?
}

/// An SMS as `+CMGR` / `+CMGL` show it in PDU mode (TS 27.005 §3.4.3): status, TPDU length in
/// octets (SMSC address excluded) and the PDU as hex text. Views are valid until the next driver call.
public struct StoredSMS {
    public let index: Int
    public let status: Int
    public let tpduLength: Int
    public let pduHex: UnsafeRawBufferPointer
}

/// `+CPMS?` for the first (read/delete) memory.
public struct SMSStorageStatus: Equatable, Sendable {
    public let used: Int
    public let total: Int
    public var isFull: Bool { total > 0 && used >= total }
}

/// What the module told us unprompted, in order. Views are valid until the next driver call.
public enum ATEvent {
    case registration(NetworkRegistration)
    /// `+CMTI: <mem>,<index>`: a message was stored; read, hand over, then delete.
    case smsStored(index: Int)
    /// `+CMT: [<alpha>],<length>` with the PDU on the next line (direct delivery).
    case smsReceived(tpduLength: Int, pduHex: UnsafeRawBufferPointer)
    case smsStorageFull
    /// Data waits in the module; fetch it with `receiveUDP`.
    case socketReadable(socket: Int)
    /// Data pushed by the module (SIMCom `+IPD`), with its sender when `RECV FROM` preceded it.
    case socketData(socket: Int, from: UDPEndpoint?, bytes: UnsafeRawBufferPointer)
    case socketClosed(socket: Int)
    /// The module restarted (RDY, APP RDY, SMS Ready, +CPIN: READY out of the blue): call `start()` again.
    case moduleRebooted
    /// URCs were lost to a full queue: list stored SMS and poll sockets to catch up.
    case urcOverflow
    /// A URC this driver has no typed form for.
    case other(line: UnsafeRawBufferPointer)
}
