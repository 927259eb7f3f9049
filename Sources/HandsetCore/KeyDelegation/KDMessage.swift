/// Key-delegation protocol, version 1. The byte layout is specified in docs/key-delegation.md; keep both in step.
public enum KD {
    public static let version: UInt8 = 1
    /// TS 23.040 16-bit application port (16000–16999 is free for applications).
    public static let smsPort: UInt16 = 16400
    /// The same messages over UDP when SMS is unavailable (never for secret data).
    public static let udpPort: UInt16 = 16400
    public static let tagLength = 16
    public static let downlinkHeader = 9  // version, type, epoch(2), counter(5)
    public static let uplinkHeader = 17  // ... + device id(8)
    /// Largest message either side sends: four concatenated SMS parts.
    public static let maxMessage = 512
    /// Counters are 40 bits (5 bytes, as SIM OTA's CNTR in ETSI TS 102 225).
    public static let counterMax: UInt64 = (1 << 40) - 1
    /// The epoch after `e`. 0 is skipped when the 16-bit epoch wraps: it marks "no rotation pending" in the
    /// handset's state. Both sides must use this one rule.
    public static func nextEpoch(_ e: UInt16) -> UInt16 { e == UInt16.max ? 1 : e + 1 }
}

public enum KDDirection: UInt8, Sendable {
    case up = 0  // handset -> gateway
    case down = 1  // gateway -> handset
    var headerLength: Int { self == .up ? KD.uplinkHeader : KD.downlinkHeader }
}

public enum KDMessageType: UInt8, Sendable {
    case login = 0x01
    case loginAck = 0x02  // carries the next device key (rotation, phase 1)
    case keyConfirm = 0x03  // sealed under the new key (phase 2)
    case confirmAck = 0x04
    case keyRequest = 0x10
    case saTransfer = 0x11  // answer to a key request, or a push when the peer started
    case saAck = 0x12
    case saDelete = 0x13
    case secretData = 0x20
    case fetchRequest = 0x30
    case fetchResponse = 0x31
    case error = 0x7F
}

/// Status codes carried in `error` messages. 1–4 follow the SIM OTA response codes (TS 102 225 §5.1.2).
public enum KDStatus: UInt8, Error, Equatable, Sendable {
    case ok = 0
    case counterLow = 1
    /// No longer sent: version 1 drafts refused counters far ahead (docs/key-delegation.md §3).
    case counterHigh = 2
    case counterBlocked = 3
    case integrityFailure = 4
    case unknownDevice = 5
    case badMessage = 6
    case denied = 7
    case busy = 8
    case fetchFailed = 9
    case unknownEpoch = 10
    /// The opposite party's IKE failed (docs/key-delegation.md §4): no common proposal, authentication refused,
    /// no answer in time, no route to it.
    case noProposalChosen = 11
    case authenticationFailed = 12
    case peerTimeout = 13
    case peerUnreachable = 14
}

public struct KDHeader: Equatable, Sendable {
    public var type: KDMessageType
    public var epoch: UInt16
    public var counter: UInt64
    public var deviceID: UInt64  // present on the wire only uplink

    public init(type: KDMessageType, epoch: UInt16, counter: UInt64, deviceID: UInt64 = 0) {
        self.type = type; self.epoch = epoch; self.counter = counter; self.deviceID = deviceID
    }

    func write(_ w: inout WireWriter, direction: KDDirection) {
        w.u8(KD.version); w.u8(type.rawValue); w.u16(epoch); w.u40(counter)
        if direction == .up { w.u64(deviceID) }
    }

    /// Reads the clear header (for the gateway and tools). Nothing in it is trusted until the AEAD opens.
    public static func parse(_ wire: UnsafeRawBufferPointer, direction: KDDirection) -> KDHeader? {
        read(wire, direction: direction)
    }

    /// Reads the clear header. Fails on a short message, a wrong version or an unknown type.
    static func read(_ wire: UnsafeRawBufferPointer, direction: KDDirection) -> KDHeader? {
        var r = WireReader(wire)
        let v = r.u8(), t = r.u8(), epoch = r.u16(), counter = r.u40()
        let id = direction == .up ? r.u64() : 0
        guard r.ok, v == KD.version, let type = KDMessageType(rawValue: t),
              wire.count >= direction.headerLength + KD.tagLength else { return nil }
        return KDHeader(type: type, epoch: epoch, counter: counter, deviceID: id)
    }
}

/// The receiver's counter rule (docs/key-delegation.md §3): strictly increasing, however far ahead, never past
/// the end. There is no upper bound on the gap: only the key holder can produce an authentic counter, and a bound
/// turns a long run of lost messages into a permanent lockout.
public func kdCheckCounter(_ received: UInt64, lastAccepted: UInt64) -> KDStatus {
    if lastAccepted >= KD.counterMax { return .counterBlocked }
    if received <= lastAccepted { return .counterLow }
    return .ok
}
