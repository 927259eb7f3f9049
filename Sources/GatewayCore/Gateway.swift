import Foundation
import HandsetCore
import Logging

/// A sealed message for one handset: port-addressed binary SMS, or a UDP datagram back to where the request
/// came from when the request came by UDP and the type may travel that way (docs/key-delegation.md §1).
public struct Downlink: Sendable, Equatable {
    public var msisdn: String
    public var type: KDMessageType
    public var bytes: [UInt8]
    public var carriage: KDCarriage = .sms
}

/// Back-end services reached over the trusted bearer only.
public protocol TrustedServices: AnyObject {
    func secret(device: UInt64, channel: UInt16, data: [UInt8]) -> [UInt8]?
    func fetch(device: UInt64, url: String) -> (status: UInt16, body: [UInt8])
}

public struct GatewayCounters: Equatable, Sendable {
    public var received = 0, malformed = 0, unknownDevice = 0, unknownEpoch = 0, integrityFailures = 0
    public var counterErrors = 0, logins = 0, rotations = 0, saDelivered = 0, secrets = 0, fetches = 0
    public var peerReuses = 0, unexpected = 0
    /// SMS-only types that arrived by UDP (refused before any crypto), and authentic messages that came by UDP.
    public var wrongCarriage = 0, byUDP = 0
    /// Registry reads or writes that failed: the message was neither acted on nor answered.
    public var storeFailures = 0
    /// SAs refused because the handset address asked for is not the device's own inner address.
    public var addressRefused = 0
    /// Negotiations with the opposite party that failed, by kind (NegotiationFailure).
    public var noProposalChosen = 0, authenticationFailed = 0, negotiationTimeouts = 0, peerUnreachable = 0
    public var negotiationRefused = 0
    /// SAs the peer started (server-initiated), pushed to the handset as request 0.
    public var saPushed = 0
    /// Inner addresses the opposite party chose (a virtual IP) bound to a device in place of its previous one, and
    /// transfers refused because the address was already another device's (the peer's SAs for it are then closed).
    public var addressesBound = 0, addressInUse = 0
    public init() {}
}

/// The reference gateway/proxy: verifies and answers key-delegation messages per docs/key-delegation.md.
///
/// Every state change is committed to the registry before anything is acted on or sealed; a failed write stops
/// the message there, unanswered. A bad counter is refused before any crypto, and nothing refused is answered:
/// a replay costs a dictionary lookup (or one registry read, the first time), a forgery one registry read and one
/// AEAD open; neither writes, sends an SMS or spends a downlink counter (docs/key-delegation.md §3).
/// Each read-modify-write of a device is one registry transaction (`RegistryStore.update`), so gateways sharing
/// the registry never reuse a counter; no lock is held across the peer, a fetch or the network.
public final class Gateway: @unchecked Sendable {
    let registry: any RegistryStore
    let negotiator: PeerNegotiator
    let services: TrustedServices?
    let log: Logger
    private let countersLock = NSLock()
    private var tally = GatewayCounters()
    /// Last accepted uplink counter per device, as last seen in the registry. It can only lag the registry (counters
    /// only grow), so a counter at or below it is a replay for certain: refused with no registry read at all.
    private var acceptedUp: [UInt64: Int64] = [:]
    public var counters: GatewayCounters { countersLock.withLock { tally } }
    /// SA lifetimes handed out (seconds) when the negotiator gives none; fixed for the gateway's life.
    public let softSeconds: UInt32
    public let hardSeconds: UInt32
    /// The handset installed a pushed SA (sa-ack with request 0, success): device and the SA's outbound SPI.
    /// The strongSwan negotiator ends its rekey hold on it (docs/ike-proxy.md, hold_rekey).
    public var onPushAcknowledged: (@Sendable (_ device: UInt64, _ outboundSPI: UInt32) -> Void)?

    public init(registry: any RegistryStore, negotiator: PeerNegotiator, services: TrustedServices? = nil,
                lifetimes: (soft: UInt32, hard: UInt32) = (3000, 3600), logger: Logger = Logger(label: "gateway")) {
        self.softSeconds = lifetimes.soft
        self.hardSeconds = lifetimes.hard
        self.registry = registry
        self.negotiator = negotiator
        self.services = services
        self.log = logger
    }

    private func noteAccepted(_ id: UInt64, _ counter: Int64) {
        countersLock.withLock { acceptedUp[id] = max(acceptedUp[id] ?? 0, counter) }
    }

    private func count(_ field: WritableKeyPath<GatewayCounters, Int>) {
        countersLock.withLock { tally[keyPath: field] += 1 }
    }

    /// Handles one uplink message from a handset and returns the answers to send. Answers go back by the
    /// carriage the message came by, except SMS-only types, which always go by SMS.
    public func handleUplink(_ wire: [UInt8], via carriage: KDCarriage = .sms) -> [Downlink] {
        count(\.received)
        guard let h = wire.withUnsafeBytes({ KDHeader.parse($0, direction: .up) }) else {
            count(\.malformed)
            return []
        }
        guard carriage == .sms || KD.allowedOverUDP(h.type) else {
            // Never acted on, authentic or not, and not answered: nothing here is trusted yet.
            count(\.wrongCarriage)
            log.notice("SMS-only message arrived by UDP", metadata: ["type": "\(h.type)"])
            return []
        }
        if let seen = countersLock.withLock({ acceptedUp[h.deviceID] }), h.counter <= UInt64(seen) {
            count(\.counterErrors)
            return []
        }
        guard let (plain, underPending) = admit(wire, header: h) else { return [] }
        if carriage == .udp { count(\.byUDP) }
        // The body points into `plain`: act on it inside this scope.
        let answers = plain.withUnsafeBytes { p -> [Downlink] in
            guard let body = KDBody.decode(h.type, p) else {
                count(\.malformed)  // authentic but malformed: its counter stays spent
                return []
            }
            return act(body, device: h.deviceID, underPending: underPending)
        }
        return answers.map { d in
            var d = d
            if carriage == .udp && KD.allowedOverUDP(d.type) { d.carriage = .udp }
            return d
        }
    }

    /// The checks of §2–§3, then the accepted counter is committed. Returns the plaintext, or nil for anything
    /// refused.
    private func admit(_ wire: [UInt8], header h: KDHeader) -> (plain: [UInt8], underPending: Bool)? {
        var seen: Int64?
        let outcome = withDevice(h.deviceID) { dev -> (plain: [UInt8], underPending: Bool)? in
            seen = dev.upCounter
            let underPending: Bool
            if h.epoch == UInt16(dev.epoch) {
                underPending = false
            } else if dev.pendingEpoch != 0, h.epoch == UInt16(dev.pendingEpoch), dev.pendingKey != nil {
                underPending = true
            } else {
                count(\.unknownEpoch)
                return nil
            }
            // On the clear header, before any crypto: a replay is refused for the price of a comparison, and is
            // never answered, so it spends no downlink counter and sends no SMS.
            guard kdCheckCounter(h.counter, lastAccepted: UInt64(dev.upCounter)) == .ok else {
                count(\.counterErrors)
                return nil
            }
            guard let plain = open(wire, header: h, device: dev, pending: underPending) else {
                count(\.integrityFailures)
                log.notice("integrity failure", metadata: ["device": "\(h.deviceID)"])
                return nil
            }
            dev.upCounter = Int64(h.counter)
            return (plain, underPending)
        }
        if let seen { noteAccepted(h.deviceID, seen) }
        guard let accepted = outcome ?? nil else { return nil }
        noteAccepted(h.deviceID, Int64(h.counter))
        return accepted
    }

    private func act(_ body: KDBody, device id: UInt64, underPending: Bool) -> [Downlink] {
        switch body {
        case .login(let m) where !underPending:
            count(\.logins)
            negotiator.forget(device: id)
            do { try registry.forgetPeers(device: id) } catch { return storeFailed(error) }
            let newKey = KeyMaterial.random(32)
            return answer(id) { dev in
                dev.pendingEpoch = Int(KD.nextEpoch(UInt16(dev.epoch)))
                dev.pendingKey = Data(newKey)
                dev.lastLogin = Date()
                return newKey.withUnsafeBytes {
                    Sealable(.loginAck(KDLoginAck(hello: m.hello, newEpoch: UInt16(dev.pendingEpoch), newKey: KeyBytes($0),
                                                  gatewayTime: UInt32(truncatingIfNeeded: Int(Date().timeIntervalSince1970)))))
                }
            }
        case .keyConfirm where underPending:
            // Phase 2: the handset proved it holds the new key. Only now is the old one dropped.
            let ack = answer(id) { dev in
                if dev.pendingEpoch != 0, let k = dev.pendingKey {
                    dev.epoch = dev.pendingEpoch
                    dev.key = k
                    dev.pendingEpoch = 0
                    dev.pendingKey = nil
                }
                return Sealable(.confirmAck(epoch: UInt16(dev.epoch)))
            }
            if !ack.isEmpty { count(\.rotations) }
            return ack
        case .keyConfirm:
            // The confirm-ack was lost and the handset asks again under the (already promoted) key.
            return answer(id) { Sealable(.confirmAck(epoch: UInt16($0.epoch))) }
        case .keyRequest(let r) where !underPending:
            return deliverSA(for: r.selector, template: r.template, requestID: r.requestID, device: id)
        case .saAck(let a):
            log.info("SA acknowledged", metadata: ["spi": "\(a.outboundSPI)", "status": "\(a.status)"])
            if a.requestID == 0 && a.status == .ok { onPushAcknowledged?(id, a.outboundSPI) }
            return []
        case .secretData(let channel, let data) where !underPending:
            count(\.secrets)
            guard let reply = services?.secret(device: id, channel: channel, data: Array(data)) else { return [] }
            return answer(id) { _ in reply.withUnsafeBytes { Sealable(.secretData(channel: channel, data: $0)) } }
        case .fetchRequest(let rid, let url) where !underPending:
            count(\.fetches)
            let (status, body) = services?.fetch(device: id, url: String(decoding: url, as: UTF8.self))
                ?? (502, Array("no fetch service".utf8))
            let room = KD.maxMessage - KD.downlinkHeader - KD.tagLength - 5
            let part = Array(body.prefix(room))
            return answer(id) { _ in
                part.withUnsafeBytes {
                    Sealable(.fetchResponse(requestID: rid, httpStatus: status, truncated: body.count > room, body: $0))
                }
            }
        case .error(let e):
            log.notice("handset reported an error", metadata: ["status": "\(e.status)"])
            return []
        default:
            count(\.unexpected)
            return []
        }
    }

    /// Peer-initiated exchange: the opposite party wants to reach the handset, so the gateway pushes a pair.
    public func push(device id: UInt64, selector: TrafficSelector, template: UInt16 = 0) -> [Downlink] {
        deliverSA(for: selector, template: template, requestID: 0, device: id)
    }

    /// Pushes a pair the opposite party already negotiated (it started, or it rekeyed) as request 0.
    public func push(device id: UInt64, transfer: KDSATransfer) -> [Downlink] {
        if let address = transfer.handset, !bind(id, to: address) {
            negotiator.withdraw(device: id, transfer: transfer)
            return []
        }
        var t = transfer
        t.requestID = 0
        if t.softSeconds == 0 { t.softSeconds = softSeconds; t.hardSeconds = hardSeconds }
        let sent = answer(id) { _ in Sealable(.saTransfer(t)) }
        if !sent.isEmpty { count(\.saPushed) }
        return sent
    }

    /// Tells the handset to drop a pair (the peer has already dropped its half).
    public func deleteSA(device id: UInt64, outboundSPI: UInt32, inboundSPI: UInt32) -> [Downlink] {
        answer(id) { _ in Sealable(.saDelete(KDSADelete(outboundSPI: outboundSPI, inboundSPI: inboundSPI))) }
    }

    /// Every transfer carries fresh SPIs and keys, retransmissions included: a key is never sent twice, so a
    /// handset that rebooted can never restart a sequence number under a key it already used.
    private func deliverSA(for selector: TrafficSelector, template: UInt16, requestID: UInt16, device id: UInt64) -> [Downlink] {
        func denied(_ status: KDStatus = .denied) -> [Downlink] {
            answer(id) { dev in
                Sealable(.error(KDError(refType: KDMessageType.keyRequest.rawValue, refCounter: UInt64(requestID),
                                        status: status, lastAccepted: UInt64(dev.upCounter))))
            }
        }
        guard let dev = withDevice(id, { $0 }) else { return [] }
        // A device's own key proves who it is, not which address it owns: the address must be the one on record.
        // Unless the peer chooses it: then the address asked for is not used, and the one the peer chose is bound
        // below (a handset whose transfer was lost still names its previous address, and must get the new one).
        guard let own = dev.innerAddress, selector.local == own || negotiator.assignsHandsetAddress else {
            count(\.addressRefused)
            log.notice("SA refused for an address the device does not own", metadata: ["device": "\(id)"])
            return denied()
        }
        let reused: Bool
        do { reused = try registry.notePeerContact(device: id, peer: "\(selector.remote)") } catch { return storeFailed(error) }
        if reused { count(\.peerReuses) }
        var t: KDSATransfer
        switch negotiator.establish(device: id, handset: own, selector: selector, template: template, reused: reused) {
        case .success(let made): t = made
        case .failure(let f):
            count(Self.counter(for: f))
            log.notice("negotiation failed", metadata: ["device": "\(id)", "why": "\(f)"])
            return denied(f.status)
        }
        if let address = t.handset, !bind(id, to: address) {
            negotiator.withdraw(device: id, transfer: t)
            return denied()
        }
        t.requestID = requestID
        if t.softSeconds == 0 { t.softSeconds = softSeconds; t.hardSeconds = hardSeconds }
        count(\.saDelivered)
        return answer(id) { _ in Sealable(.saTransfer(t)) }
    }

    static func counter(for f: NegotiationFailure) -> WritableKeyPath<GatewayCounters, Int> {
        switch f {
        case .noProposalChosen: \.noProposalChosen
        case .authenticationFailed: \.authenticationFailed
        case .timeout: \.negotiationTimeouts
        case .unreachable: \.peerUnreachable
        case .refused: \.negotiationRefused
        }
    }

    // MARK: Registry

    /// Binds `address`, which the peer chose, to the device. Another device's address is refused: each store holds
    /// an address once (a unique column), so two devices are never bound to one, even by gateways racing.
    private func bind(_ id: UInt64, to address: IPAddress) -> Bool {
        do {
            if let holder = try registry.device(innerAddress: address), holder.deviceID != id {
                count(\.addressInUse)
                log.error("the peer chose an address another device holds", metadata: ["device": "\(id)", "address": "\(address.dottedQuad)"])
                return false
            }
            let moved = try registry.update(device: id) { dev -> Bool in
                guard dev.innerAddress != address else { return false }
                dev.innerAddress = address
                return true
            }
            guard let moved else { count(\.unknownDevice); return false }
            if moved {
                count(\.addressesBound)
                log.notice("inner address bound as the peer chose", metadata: ["device": "\(id)", "address": "\(address.dottedQuad)"])
            }
            return true
        } catch RegistryError.addressInUse {
            // The unique column refused it: another device took it since the check (a gateway sharing the store).
            count(\.addressInUse)
            log.error("the peer chose an address another device took meanwhile", metadata: ["device": "\(id)", "address": "\(address.dottedQuad)"])
            return false
        } catch {
            count(\.storeFailures)
            log.error("registry failed while binding the peer's address", metadata: ["device": "\(id)", "error": "\(error)"])
            return false
        }
    }

    /// Runs `body` on the device inside one registry transaction, writing back what it changed. Nil when the
    /// device is unknown or the registry failed (counted apart; a failure also stops the message).
    private func withDevice<T>(_ id: UInt64, _ body: (inout DeviceRecord) -> T) -> T? {
        do {
            guard let r = try registry.update(device: id, body) else {
                count(\.unknownDevice)
                log.notice("message from unknown device", metadata: ["device": "\(id)"])
                return nil
            }
            return r
        } catch {
            _ = storeFailed(error)
            return nil
        }
    }

    private func storeFailed(_ error: Error) -> [Downlink] {
        count(\.storeFailures)
        log.error("registry failed; message not acted on", metadata: ["error": "\(error)"])
        return []
    }

    /// One answer: applies `change` to the device and reserves the next downlink counter in the same transaction,
    /// then seals under the device's (possibly just promoted) current epoch. Nothing is sealed unless the write
    /// committed, so no (key, nonce) pair is used twice.
    private func answer(_ id: UInt64, _ change: (inout DeviceRecord) -> Sealable?) -> [Downlink] {
        let reserved = withDevice(id) { dev -> (Sealable, DeviceRecord)? in
            guard let body = change(&dev) else { return nil }
            dev.downCounter += 1
            return (body, dev)
        }
        guard let (body, dev) = reserved ?? nil else { return [] }
        return seal(body, device: dev).map { [$0] } ?? []
    }

    /// Derives the device's delivery keys for one use; they are wiped when the closure returns.
    private func withKeys<R>(_ dev: DeviceRecord, pending: Bool, _ body: (borrowing DeliveryKeys) -> R?) -> R? {
        var k = DeliveryKeys()
        let material = pending ? (dev.pendingKey ?? Data()) : dev.key
        let epoch = UInt16(pending ? dev.pendingEpoch : dev.epoch)
        guard material.withUnsafeBytes({ k.derive(deviceKey: $0, deviceID: dev.deviceID, epoch: epoch) }) else { return nil }
        return body(k)
    }

    private func open(_ wire: [UInt8], header: KDHeader, device: DeviceRecord, pending: Bool) -> [UInt8]? {
        withKeys(device, pending: pending) { k in
            var out = [UInt8](repeating: 0, count: wire.count)
            let n = wire.withUnsafeBytes { w in out.withUnsafeMutableBytes { k.open(w, header: header, direction: .up, into: $0) } }
            return n.map { Array(out[0..<$0]) }
        }
    }

    /// Seals under the device's current epoch with its (already persisted) downlink counter.
    private func seal(_ body: Sealable, device dev: DeviceRecord) -> Downlink? {
        let header = KDHeader(type: body.type, epoch: UInt16(dev.epoch), counter: UInt64(dev.downCounter))
        let bytes: [UInt8]? = withKeys(dev, pending: false) { k in
            var out = [UInt8](repeating: 0, count: KD.maxMessage)
            let len = body.plain.withUnsafeBytes { p in
                out.withUnsafeMutableBytes { k.seal(header, direction: .down, body: p, into: $0) }
            }
            return len.map { Array(out[0..<$0]) }
        }
        guard let bytes else { return nil }
        return Downlink(msisdn: dev.msisdn, type: body.type, bytes: bytes)
    }
}

/// A body encoded for sealing. A `KDBody` may point into its caller's buffers; these bytes are its own.
/// Nil when the body does not fit one message (a service's answer too long, say).
struct Sealable {
    let type: KDMessageType
    let plain: [UInt8]

    init?(_ body: KDBody) {
        var plain = [UInt8](repeating: 0, count: KD.maxMessage)
        let n = plain.withUnsafeMutableBytes { b -> Int in
            var w = WireWriter(b)
            body.encode(into: &w)
            return w.ok ? w.count : 0
        }
        guard n > 0 else { return nil }
        type = body.type
        self.plain = Array(plain[0..<n])
    }
}
