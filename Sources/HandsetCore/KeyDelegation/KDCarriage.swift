/// How a key-delegation message travels (docs/key-delegation.md §1).
public enum KDCarriage: UInt8, Equatable, Sendable {
    /// Port-addressed binary SMS on port KD.smsPort: the trusted bearer, for every type.
    case sms = 0
    /// One UDP datagram through the module's socket: `non-ESP marker || message`, only for the types
    /// `KD.allowedOverUDP` lists, and only when SMS is unavailable.
    case udp = 1
}

extension KD {
    /// RFC 3948 §2.2 non-ESP marker: four zero octets (SPI 0 is never used), so key-delegation datagrams share
    /// the ESP-in-UDP socket and are told apart from ESP before any SA lookup.
    public static let nonESPMarkerLength = 4

    /// The types that may travel by UDP. Everything else (login, login-ack, key-confirm, confirm-ack, secret
    /// data, fetch request/response) is SMS-only: it carries or bootstraps device keys, or is secret-class.
    public static func allowedOverUDP(_ t: KDMessageType) -> Bool {
        switch t {
        case .keyRequest, .saTransfer, .saAck, .saDelete, .error: return true
        case .login, .loginAck, .keyConfirm, .confirmAck, .secretData, .fetchRequest, .fetchResponse: return false
        }
    }

    /// True when `datagram` starts with the non-ESP marker and has room for a message after it.
    public static func isKeyDelegationDatagram(_ datagram: UnsafeRawBufferPointer) -> Bool {
        guard datagram.count > nonESPMarkerLength else { return false }
        return datagram[0] | datagram[1] | datagram[2] | datagram[3] == 0
    }
}

/// `kd_transport` in the firmware's configuration.
public enum KDTransportMode: Equatable, Sendable {
    /// Everything by SMS; a failed send is retried on the next tick.
    case smsOnly
    /// SMS first; after a failed SMS send the UDP-allowed types go by UDP until `retrySeconds` have passed.
    case udpFallback
}

/// What to do with the message at the head of the outbox.
public enum KDCarriageDecision: Equatable, Sendable {
    case sms
    case udp
    /// Keep it and try again on the next tick.
    case wait
    /// Secret data or a fetch while SMS is unavailable: drop it and tell the application.
    case drop
}

public struct KDCarriageCounters: Equatable, Sendable {
    public var smsFailures: UInt64 = 0
    public var udpSent: UInt64 = 0
    public var udpReceived: UInt64 = 0
    /// SMS-only messages dropped (or refused before sealing) while SMS was unavailable.
    public var refused: UInt64 = 0
    public init() {}
}

/// The carriage choice for each outgoing message. "SMS unavailable" means: the last SMS send failed (ERROR,
/// +CMS ERROR or timeout on any part) less than `retrySeconds` ago. A message is sealed once; if its SMS send
/// failed it may go by UDP as the identical bytes (same counter), never re-sealed, so the gateway acts on it at
/// most once whichever copy arrives. Retries by timer are new messages and choose again.
public struct KDCarriagePolicy: Sendable {
    public var mode: KDTransportMode
    public var retrySeconds: UInt64
    public private(set) var smsAvailable = true
    public var counters = KDCarriageCounters()
    var retryAt: UInt64 = 0

    public init(mode: KDTransportMode = .smsOnly, retrySeconds: UInt64 = 60) {
        self.mode = mode
        self.retrySeconds = retrySeconds
    }

    /// Login and key-confirm have no other way and nothing can happen until they get through: they keep
    /// trying SMS every tick, as in SMS-only mode, instead of waiting for the login timer's backoff.
    static func staysForSMS(_ t: KDMessageType) -> Bool { t == .login || t == .keyConfirm }

    /// First choice for a message of type `t`.
    public func choose(_ t: KDMessageType) -> KDCarriageDecision {
        if mode == .smsOnly || smsAvailable || Self.staysForSMS(t) { return .sms }
        return KD.allowedOverUDP(t) ? .udp : .drop
    }

    /// The SMS send of a message of type `t` failed at `now`: what to do with the same sealed bytes.
    public mutating func smsFailed(_ t: KDMessageType, now: UInt64) -> KDCarriageDecision {
        counters.smsFailures &+= 1
        guard mode == .udpFallback else { return .wait }
        smsAvailable = false
        retryAt = now &+ retrySeconds
        if Self.staysForSMS(t) { return .wait }
        return KD.allowedOverUDP(t) ? .udp : .drop
    }

    /// May an SMS-only request (secret data, fetch) be accepted now? Counts a refusal when not.
    public mutating func admitSMSOnly() -> Bool {
        if mode == .smsOnly || smsAvailable { return true }
        counters.refused &+= 1
        return false
    }

    public mutating func noteDropped() { counters.refused &+= 1 }
    public mutating func noteUDPSent() { counters.udpSent &+= 1 }

    /// Once the hold-off has passed, the next message tries SMS again.
    public mutating func tick(now: UInt64) {
        if !smsAvailable && now >= retryAt { smsAvailable = true }
    }
}
