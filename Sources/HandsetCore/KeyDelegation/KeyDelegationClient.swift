/// One message on its way out, sealed once. It goes by SMS (port KD.smsPort) or, for the types
/// `KD.allowedOverUDP` lists, by UDP when SMS is unavailable; `smsOnly` marks those that never may.
public struct KDOutgoing: Sendable {
    public var bytes = FixedBytes<512>()
    public var type: KDMessageType = .error
    public var smsOnly = true
    public init() {}
}

/// What arrived for the application: secret data and secure-fetch answers.
public struct KDIncoming: Sendable {
    public var type: KDMessageType = .secretData
    public var channelOrRequest: UInt16 = 0
    public var httpStatus: UInt16 = 0
    public var truncated = false
    public var bytes = FixedBytes<512>()
    public init() {}
}

/// An SA pair the gateway delivered and the handset installed.
public struct KDInstalled: Equatable, Sendable {
    public var outboundSPI: UInt32 = 0
    public var inboundSPI: UInt32 = 0
    /// 0 when the opposite party started the exchange (a push).
    public var requestID: UInt16 = 0
    public init() {}
}

public enum KDPhase: Equatable, Sendable {
    case loggedOut
    case awaitingLoginAck
    case awaitingConfirmAck
    case ready
}

public struct KDCounters: Equatable, Sendable {
    public var received: UInt64 = 0
    public var sent: UInt64 = 0
    public var malformed: UInt64 = 0
    public var integrityFailures: UInt64 = 0
    public var counterLow: UInt64 = 0
    public var counterBlocked: UInt64 = 0
    public var unknownEpoch: UInt64 = 0
    public var unexpected: UInt64 = 0
    public var storeFailures: UInt64 = 0
    public var outboxFull: UInt64 = 0
    public var requestsAbandoned: UInt64 = 0
    public var sasInstalled: UInt64 = 0
    public var sasDeleted: UInt64 = 0
    public var errorsFromGateway: UInt64 = 0
    /// SMS-only types that arrived by UDP.
    public var wrongCarriage: UInt64 = 0
    /// SA transfers refused (docs/key-delegation.md §6): selector beyond the request or the protect rules,
    /// the peer's pushed pairs at their cap, an IPv6 peer.
    public var saOutsidePolicy: UInt64 = 0
    public var saPeerLimit: UInt64 = 0
    public var saIPv6Refused: UInt64 = 0
    /// Inner addresses the gateway bound (sa-transfer flag bit 7) that differed from the one in use: adopted.
    public var addressesAdopted: UInt64 = 0
    public init() {}
}

struct PushedPair: Sendable {
    var outboundSPI: UInt32 = 0  // 0: free
    var inboundSPI: UInt32 = 0
}

struct PendingRequest: Sendable {
    var used = false
    var id: UInt16 = 0
    var template: UInt16 = 0
    var selector = TrafficSelector(local: .anyV4, remote: .anyV4, localPort: 0, remotePort: 0)
    var sentAt: UInt64 = 0
    var tries = 0
}

/// The handset's side of key delegation: login with two-phase key rotation, key requests, SA install and
/// delete, make-before-break rekeying, secret data and secure fetch. Single-threaded; the firmware loop feeds
/// it SMS payloads and clock ticks and drains `outbox`. All storage is fixed.
public struct KeyDelegationClient<Store: KeyStateStore>: ~Copyable {
    public var store: Store
    public internal(set) var state: KeyState
    var keys = DeliveryKeys()
    var pendingKeys = DeliveryKeys()
    public internal(set) var phase: KDPhase = .loggedOut
    public internal(set) var counters = KDCounters()
    public var outbox = FixedRing<8, KDOutgoing>(filler: KDOutgoing())
    public var inbox = FixedRing<4, KDIncoming>(filler: KDIncoming())
    public var installed = FixedRing<8, KDInstalled>(filler: KDInstalled())
    /// SMS or UDP for each outgoing message (docs/key-delegation.md §1).
    public var carriage = KDCarriagePolicy()
    /// The handset's configured inner address (`local_address`).
    public var localAddress: IPAddress = .anyV4
    /// The address the handset sends from, the local end of every SA: the one the gateway bound (an IKE server's
    /// virtual IP, persisted with the key state), else the configured one.
    public var innerAddress: IPAddress { state.innerAddress ?? localAddress }
    var requests: InlineArray<8, PendingRequest>
    /// Installed pairs the handset did not ask for (pushes), for the per-peer cap.
    var pushedPairs = InlineArray<8, PushedPair>(repeating: PushedPair())
    var nextRequestID: UInt16 = 1
    var lastLoginSent: UInt64 = 0
    var loginTries = 0
    public let random = HandsetRandom()

    public static var retrySeconds: UInt64 { 30 }
    public static var maxRequestTries: Int { 5 }

    /// Loads the provisioned state. Fails if the store has none or it is corrupt.
    public init(store: consuming Store) throws(StoreError) {
        var s = store
        let loaded = try s.load()
        self.store = s
        state = loaded
        requests = InlineArray(repeating: PendingRequest())
        keysUsable = deriveKeys()
    }

    /// False when the stored keys could not be set up (the firmware then refuses to start).
    public private(set) var keysUsable = false

    mutating func deriveKeys() -> Bool {
        let ok = state.currentKey.withBytes { keys.derive(deviceKey: $0, deviceID: state.deviceID, epoch: state.epoch) }
        guard state.hasPending else { pendingKeys.wipe(); return ok }
        return ok && state.pendingKey.withBytes {
            pendingKeys.derive(deviceKey: $0, deviceID: state.deviceID, epoch: state.pendingEpoch)
        }
    }

    /// Saves `next` and adopts it only if the save succeeded: nothing is acted on before it is durable.
    mutating func commit(_ next: KeyState) -> Bool {
        do {
            try store.save(next)
        } catch {
            counters.storeFailures &+= 1
            return false
        }
        state = next
        return true
    }

    /// Seals `body` under the current keys (or the pending ones) into the outbox. The counter is persisted
    /// before the message exists, so no (key, nonce) pair can be used twice, whatever crashes.
    @discardableResult
    mutating func send(_ body: KDBody, underPending: Bool = false) -> Bool {
        guard !outbox.isFull else { counters.outboxFull &+= 1; return false }
        var next = state
        next.upCounter += 1
        guard next.upCounter <= KD.counterMax else { counters.counterBlocked &+= 1; return false }
        guard commit(next) else { return false }
        let epoch = underPending ? state.pendingEpoch : state.epoch
        let header = KDHeader(type: body.type, epoch: epoch, counter: state.upCounter, deviceID: state.deviceID)
        var msg = KDOutgoing()
        msg.type = body.type
        msg.smsOnly = !KD.allowedOverUDP(body.type)
        var sealed = true
        var plain = FixedBytes<512>()
        plain.fill { b in
            var w = WireWriter(b)
            body.encode(into: &w)
            sealed = w.ok
            return w.count
        }
        guard sealed else { return false }
        let k = underPending ? pendingKeys.isSet : keys.isSet
        guard k else { return false }
        msg.bytes.fill { out in
            let n = plain.withBytes { p in
                underPending ? pendingKeys.seal(header, direction: .up, body: p, into: out)
                    : keys.seal(header, direction: .up, body: p, into: out)
            }
            sealed = n != nil
            return n ?? 0
        }
        guard sealed else { return false }
        outbox.push(msg)
        counters.sent &+= 1
        return true
    }
}
