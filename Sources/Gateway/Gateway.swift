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

/// The opposite party as the gateway sees it: it takes one half of each fresh SA pair.
public protocol PeerNegotiator: AnyObject {
    /// Installs the peer's half of a fresh pair for `selector` (the handset's view) and returns the handset's half.
    /// `reused` says whether the gateway already had a relationship with that peer for this device.
    func establish(device: UInt64, handset: IPAddress, selector: TrafficSelector, template: UInt16,
                   reused: Bool) -> KDSATransfer?
    /// The handset logged in afresh: whatever SAs the peer holds for it are dead.
    func forget(device: UInt64)
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
    /// SAs refused because the handset address asked for is not the device's own inner address.
    public var addressRefused = 0
}

/// The reference gateway/proxy: verifies and answers key-delegation messages per docs/key-delegation.md.
/// Every state change is committed to the registry before the answer is sealed.
public final class Gateway: @unchecked Sendable {
    let registry: DeviceRegistry
    let negotiator: PeerNegotiator
    let services: TrustedServices?
    var log: Logger
    let lock = NSLock()
    public private(set) var counters = GatewayCounters()
    /// SA lifetimes handed out (seconds); the emulator's rekey scenario shortens them.
    public var softSeconds: UInt32 = 3000
    public var hardSeconds: UInt32 = 3600

    public init(registry: DeviceRegistry, negotiator: PeerNegotiator, services: TrustedServices? = nil,
                logger: Logger = Logger(label: "gateway")) {
        self.registry = registry
        self.negotiator = negotiator
        self.services = services
        self.log = logger
    }

    /// Handles one uplink message from a handset and returns the answers to send. Answers go back by the
    /// carriage the message came by, except SMS-only types, which always go by SMS.
    public func handleUplink(_ wire: [UInt8], via carriage: KDCarriage = .sms) -> [Downlink] {
        lock.lock()
        defer { lock.unlock() }
        counters.received += 1
        guard let h = wire.withUnsafeBytes({ KDHeader.parse($0, direction: .up) }) else {
            counters.malformed += 1
            return []
        }
        guard carriage == .sms || KD.allowedOverUDP(h.type) else {
            // Never acted on, authentic or not, and not answered: nothing here is trusted yet.
            counters.wrongCarriage += 1
            log.notice("SMS-only message arrived by UDP", metadata: ["type": "\(h.type)"])
            return []
        }
        return handleUplink(wire, header: h, via: carriage).map { d in
            var d = d
            if carriage == .udp && KD.allowedOverUDP(d.type) { d.carriage = .udp }
            return d
        }
    }

    private func handleUplink(_ wire: [UInt8], header h: KDHeader, via carriage: KDCarriage) -> [Downlink] {
        guard var dev = try? registry.device(id: h.deviceID) else {
            counters.unknownDevice += 1
            log.notice("message from unknown device", metadata: ["device": "\(h.deviceID)"])
            return []
        }
        let underPending: Bool
        if h.epoch == UInt16(dev.epoch) {
            underPending = false
        } else if dev.pendingEpoch != 0, h.epoch == UInt16(dev.pendingEpoch), dev.pendingKey != nil {
            underPending = true
        } else {
            counters.unknownEpoch += 1
            return []
        }
        guard let plain = open(wire, header: h, device: dev, pending: underPending) else {
            counters.integrityFailures += 1
            log.notice("integrity failure", metadata: ["device": "\(h.deviceID)"])
            return []
        }
        if carriage == .udp { counters.byUDP += 1 }
        let verdict = kdCheckCounter(h.counter, lastAccepted: UInt64(dev.upCounter))
        guard verdict == .ok else {
            counters.counterErrors += 1
            let e = KDError(refType: h.type.rawValue, refCounter: h.counter, status: verdict,
                            lastAccepted: UInt64(dev.upCounter))
            return seal(.error(e), device: &dev).map { [$0] } ?? []
        }
        dev.upCounter = Int64(h.counter)
        return plain.withUnsafeBytes { p -> [Downlink] in
            guard let body = KDBody.decode(h.type, p) else {
                counters.malformed += 1
                try? registry.save(dev)
                return []
            }
            return act(body, header: h, underPending: underPending, device: &dev)
        }
    }

    private func act(_ body: KDBody, header h: KDHeader, underPending: Bool, device dev: inout DeviceRecord) -> [Downlink] {
        switch body {
        case .login(let m) where !underPending:
            counters.logins += 1
            negotiator.forget(device: dev.deviceID)
            try? registry.forgetPeers(device: dev.deviceID)
            let newKey = KeyMaterial.random(32)
            dev.pendingEpoch = Int(KD.nextEpoch(UInt16(dev.epoch)))
            dev.pendingKey = Data(newKey)
            dev.lastLogin = Date()
            let ack = newKey.withUnsafeBytes {
                KDLoginAck(hello: m.hello, newEpoch: UInt16(dev.pendingEpoch), newKey: KeyBytes($0),
                           gatewayTime: UInt32(truncatingIfNeeded: Int(Date().timeIntervalSince1970)))
            }
            return seal(.loginAck(ack), device: &dev).map { [$0] } ?? []
        case .keyConfirm where underPending:
            // Phase 2: the handset proved it holds the new key. Only now is the old one dropped.
            dev.epoch = dev.pendingEpoch
            dev.key = dev.pendingKey ?? dev.key
            dev.pendingEpoch = 0
            dev.pendingKey = nil
            counters.rotations += 1
            return seal(.confirmAck(epoch: UInt16(dev.epoch)), device: &dev).map { [$0] } ?? []
        case .keyConfirm:
            // The confirm-ack was lost and the handset asks again under the (already promoted) key.
            return seal(.confirmAck(epoch: UInt16(dev.epoch)), device: &dev).map { [$0] } ?? []
        case .keyRequest(let r) where !underPending:
            return deliverSA(for: r.selector, template: r.template, requestID: r.requestID, device: &dev)
        case .saAck(let a):
            log.info("SA acknowledged", metadata: ["spi": "\(a.outboundSPI)", "status": "\(a.status)"])
            try? registry.save(dev)
            return []
        case .secretData(let channel, let data) where !underPending:
            counters.secrets += 1
            guard let reply = services?.secret(device: dev.deviceID, channel: channel, data: Array(data)) else {
                try? registry.save(dev)
                return []
            }
            return reply.withUnsafeBytes { seal(.secretData(channel: channel, data: $0), device: &dev).map { [$0] } ?? [] }
        case .fetchRequest(let id, let url) where !underPending:
            counters.fetches += 1
            let (status, body) = services?.fetch(device: dev.deviceID, url: String(decoding: url, as: UTF8.self))
                ?? (502, Array("no fetch service".utf8))
            let room = KD.maxMessage - KD.downlinkHeader - KD.tagLength - 5
            let part = Array(body.prefix(room))
            return part.withUnsafeBytes {
                seal(.fetchResponse(requestID: id, httpStatus: status, truncated: body.count > room, body: $0),
                     device: &dev).map { [$0] } ?? []
            }
        case .error(let e):
            log.notice("handset reported an error", metadata: ["status": "\(e.status)"])
            if e.status == .counterLow, Int64(e.lastAccepted) > dev.downCounter { dev.downCounter = Int64(e.lastAccepted) }
            try? registry.save(dev)
            return []
        default:
            counters.unexpected += 1
            try? registry.save(dev)
            return []
        }
    }

    /// Peer-initiated exchange: the opposite party wants to reach the handset, so the gateway pushes a pair.
    public func push(device id: UInt64, selector: TrafficSelector, template: UInt16 = 0) -> [Downlink] {
        lock.lock()
        defer { lock.unlock() }
        guard var dev = try? registry.device(id: id) else { return [] }
        return deliverSA(for: selector, template: template, requestID: 0, device: &dev)
    }

    /// Tells the handset to drop a pair (the peer has already dropped its half).
    public func deleteSA(device id: UInt64, outboundSPI: UInt32, inboundSPI: UInt32) -> [Downlink] {
        lock.lock()
        defer { lock.unlock() }
        guard var dev = try? registry.device(id: id) else { return [] }
        return seal(.saDelete(KDSADelete(outboundSPI: outboundSPI, inboundSPI: inboundSPI)), device: &dev).map { [$0] } ?? []
    }

    /// Every transfer carries fresh SPIs and keys, retransmissions included: a key is never sent twice, so a
    /// handset that rebooted can never restart a sequence number under a key it already used.
    private func deliverSA(for selector: TrafficSelector, template: UInt16, requestID: UInt16,
                           device dev: inout DeviceRecord) -> [Downlink] {
        func denied() -> [Downlink] {
            let e = KDError(refType: KDMessageType.keyRequest.rawValue, refCounter: UInt64(requestID), status: .denied,
                            lastAccepted: UInt64(dev.upCounter))
            return seal(.error(e), device: &dev).map { [$0] } ?? []
        }
        // A device's own key proves who it is, not which address it owns: the address must be the one on record.
        guard let own = dev.innerAddress, selector.local == own else {
            counters.addressRefused += 1
            log.notice("SA refused for an address the device does not own", metadata: ["device": "\(dev.deviceID)"])
            return denied()
        }
        let peerName = "\(selector.remote)"
        let reused = (try? registry.notePeerContact(device: dev.deviceID, peer: peerName)) ?? false
        if reused { counters.peerReuses += 1 }
        guard var t = negotiator.establish(device: dev.deviceID, handset: own, selector: selector,
                                           template: template, reused: reused) else {
            return denied()
        }
        t.requestID = requestID
        if t.softSeconds == 0 { t.softSeconds = softSeconds; t.hardSeconds = hardSeconds }
        counters.saDelivered += 1
        return seal(.saTransfer(t), device: &dev).map { [$0] } ?? []
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

    /// Seals under the device's current epoch, persisting the downlink counter (and any other change to `dev`)
    /// before the message exists.
    private func seal(_ body: KDBody, device dev: inout DeviceRecord) -> Downlink? {
        dev.downCounter += 1
        do { try registry.save(dev) } catch {
            log.error("registry write failed: \(error)")
            return nil
        }
        var plain = [UInt8](repeating: 0, count: KD.maxMessage)
        let n = plain.withUnsafeMutableBytes { b -> Int in
            var w = WireWriter(b)
            body.encode(into: &w)
            return w.ok ? w.count : -1
        }
        guard n >= 0 else { return nil }
        let header = KDHeader(type: body.type, epoch: UInt16(dev.epoch), counter: UInt64(dev.downCounter))
        let bytes: [UInt8]? = withKeys(dev, pending: false) { k in
            var out = [UInt8](repeating: 0, count: KD.maxMessage)
            let len = plain[0..<n].withUnsafeBytes { p in
                out.withUnsafeMutableBytes { k.seal(header, direction: .down, body: p, into: $0) }
            }
            return len.map { Array(out[0..<$0]) }
        }
        guard let bytes else { return nil }
        return Downlink(msisdn: dev.msisdn, type: body.type, bytes: bytes)
    }
}
