import Foundation
import Gateway
import HandsetCore
import Logging

/// The opposite party of the emulated world: an ESP-in-UDP endpoint on 127.0.0.1 using HandsetCore's data plane
/// with the SAs the gateway installs. Services: UDP echo (ports 7 and 9007) and a balance inquiry (port 8).
/// It learns where the handset is from authenticated packets only (RFC 3948 NAT-T).
public final class EmulatedPeer: PeerNegotiator, @unchecked Sendable {
    public static let echoPort: UInt16 = 7
    /// A second echo port for flows no other SA covers (the emulator's per-port rule 9000-9100 -> *).
    public static let flowEchoPort: UInt16 = 9007
    public static let balancePort: UInt16 = 8
    public let address = IPAddress(127, 0, 0, 1)
    public private(set) var espPort: UInt16 = 0
    let lock = NSLock()
    /// SA slots for every device together (inbound halves; outbound ones once used); a login frees the device's.
    /// Sized for `handset-emu load`: its devices hold about 2.3 pairs each between logins, so ~800 devices fit.
    public static let saCapacity = 2048
    var plane = DataPlane<2048, 4>(defaultAction: .discard)
    let fd: Int32
    /// Everything the peer holds for one handset, by device: its address, its pairs, where it was last seen.
    struct Handset {
        var address: IPAddress
        /// By the handset's outbound SPI (the peer's inbound): the handset's inbound SPI.
        var pairs: [UInt32: UInt32] = [:]
        var endpoint: sockaddr_in?
        /// By the handset's outbound SPI: the peer's outbound half of a pair, held back until the handset has used
        /// the pair. The handset learns its keys by SMS seconds after the peer, so a reply sealed under the new SA
        /// sooner would be lost (strongSwan's responder holds back its new outbound SA the same way when rekeying).
        var heldOutbound: [UInt32: (SAParameters, [UInt8])] = [:]
    }
    var handsets: [UInt64: Handset] = [:]
    var running = true
    var log: Logger
    /// Every ESP datagram on the Internet side, for --pcap: (from handset?, bytes, peer's UDP endpoint).
    public var onPacket: (@Sendable (_ toPeer: Bool, _ bytes: [UInt8], _ handset: sockaddr_in) -> Void)?
    /// Every SA installed on either side, for --keylog.
    public var onSA: (@Sendable (_ spi: UInt32, _ fromHandset: Bool, _ key: [UInt8], _ salt: UInt32) -> Void)?
    public private(set) var stats = PeerStats()
    var nextSPI: UInt32 = 0x5000_0000
    var lifetimeOverride: (soft: UInt32, hard: UInt32)?
    /// SA lifetimes the peer sets on the pairs it makes (nil: none, the gateway's defaults apply); the emulator's
    /// rekey scenario shortens them, wherever the gateway runs.
    public var lifetimes: (soft: UInt32, hard: UInt32)? {
        get { lock.withLock { lifetimeOverride } }
        set { lock.withLock { lifetimeOverride = newValue } }
    }

    public struct PeerStats: Sendable {
        public var packetsIn = 0, packetsOut = 0, bytesIn = 0, bytesOut = 0, dropped = 0, dummies = 0
        public var negotiations = 0, reuses = 0
        public var lastDrop: String = ""
        public var delivered: [(port: UInt16, payload: [UInt8])] = []
    }

    public init(logger: Logger = Logger(label: "peer")) throws {
        log = logger
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw PeerError.socket(errno) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = 0
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw PeerError.socket(errno) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        espPort = UInt16(bigEndian: a.sin_port)
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        try plane.spd.append(SPDRule(SelectorPattern(remote: IPAddress(10, 0, 0, 0), prefix: 8, proto: IPProto.udp), .protect(template: 1)))
        Thread.detachNewThread { [self] in receiveLoop() }
    }

    public enum PeerError: Error { case socket(Int32) }

    /// The device that owns `address`, if any holds it.
    private func owner(of address: IPAddress) -> UInt64? { handsets.first { $0.value.address == address }?.key }
    private func endpoint(of address: IPAddress) -> sockaddr_in? { owner(of: address).flatMap { handsets[$0]?.endpoint } }

    public func stop() { lock.withLock { running = false } }

    public var counters: PeerStats { lock.withLock { stats } }
    public var installedSAs: Int { lock.withLock { plane.sas.count } }
    public func knowsEndpoint(of handset: IPAddress) -> Bool { lock.withLock { endpoint(of: handset) != nil } }
    /// Whether `send` would go out now: the handset's endpoint is known and the flow has a live outbound SA.
    public func canSend(to handset: IPAddress, port: UInt16, from local: UInt16) -> Bool {
        let flow = TrafficSelector(local: address, remote: handset, localPort: local, remotePort: port)
        return lock.withLock { endpoint(of: handset) != nil && plane.sas.outboundSlot(for: flow) != nil }
    }
    /// SAs (both directions) the peer holds for one device.
    public func installedSAs(device: UInt64) -> Int { lock.withLock { (handsets[device]?.pairs.count ?? 0) * 2 } }

    // MARK: negotiation (called by the gateway)

    public func establish(device: UInt64, handset: IPAddress, selector: TrafficSelector, template: UInt16,
                          reused: Bool) -> Result<KDSATransfer, NegotiationFailure> {
        lock.lock()
        defer { lock.unlock() }
        // One address, one device: a second device never gets SAs that would take the first one's traffic.
        if let other = owner(of: handset), other != device {
            log.error("peer refuses an SA for an address another device holds", metadata: ["device": "\(device)"])
            return .failure(.refused("address held by another device"))
        }
        if reused { stats.reuses += 1 } else { stats.negotiations += 1 }
        let k1 = KeyMaterial.random(32), k2 = KeyMaterial.random(32)
        let s1 = UInt32.random(in: 0...UInt32.max), s2 = UInt32.random(in: 0...UInt32.max)
        let (toPeer, toHandset) = (nextSPI, nextSPI + 1)
        nextSPI += 2
        // The pair covers exactly the flow asked for (0 = any port), seen from each side.
        let service = selector.remotePort, handsetPort = selector.localPort
        let sel = SelectorPattern(remote: handset, prefix: 32, proto: IPProto.udp,
                                  localPorts: service == 0 ? .any : PortRange(service),
                                  remotePorts: handsetPort == 0 ? .any : PortRange(handsetPort))
        func params(_ spi: UInt32, _ d: SADirection, _ salt: UInt32) -> SAParameters {
            SAParameters(spi: spi, direction: d, algorithm: .aesGCM, keyLength: 32, salt: salt, local: address,
                         selector: sel, peer: handset, peerPort: 4500)
        }
        do {
            try k1.withUnsafeBytes { _ = try plane.sas.install(params(toPeer, .inbound, s1), key: $0) }
        } catch {
            log.error("peer could not install SAs: \(error)")
            return .failure(.refused("peer could not install the pair"))
        }
        if handsets[device]?.address != handset {
            drop(device)
            handsets[device] = Handset(address: handset)
        }
        handsets[device]!.pairs[toPeer] = toHandset
        handsets[device]!.heldOutbound[toPeer] = (params(toHandset, .outbound, s2), k2)
        onSA?(toPeer, true, k1, s1)
        onSA?(toHandset, false, k2, s2)
        return .success(k1.withUnsafeBytes { a in k2.withUnsafeBytes { b in
            KDSATransfer(requestID: 0, outboundSPI: toPeer, outboundKey: KeyBytes(a), outboundSalt: s1,
                         inboundSPI: toHandset, inboundKey: KeyBytes(b), inboundSalt: s2, peer: address, peerPort: espPort,
                         prefix: 32, proto: IPProto.udp, localPort: handsetPort, remotePort: service,
                         softSeconds: lifetimeOverride?.soft ?? 0, hardSeconds: lifetimeOverride?.hard ?? 0)
        } })
    }

    /// Drops that device's SAs and endpoint only; other devices keep theirs.
    public func forget(device: UInt64) {
        lock.withLock { drop(device) }
    }

    private func drop(_ device: UInt64) {
        guard let h = handsets.removeValue(forKey: device) else { return }
        for (toPeer, toHandset) in h.pairs {
            try? plane.sas.delete(spi: toPeer, direction: .inbound)
            try? plane.sas.delete(spi: toHandset, direction: .outbound)
        }
    }

    /// Ends one pair on the peer's side (the peer is done with that flow). Returns the handset's view
    /// (outbound, inbound) for the gateway's sa-delete, or nil when no such pair is installed.
    public func endPair(handsetOutboundSPI spi: UInt32) -> (outbound: UInt32, inbound: UInt32)? {
        lock.withLock {
            guard let device = handsets.first(where: { $0.value.pairs[spi] != nil })?.key,
                  let back = handsets[device]?.pairs.removeValue(forKey: spi) else { return nil }
            try? plane.sas.delete(spi: spi, direction: .inbound)
            try? plane.sas.delete(spi: back, direction: .outbound)
            return (spi, back)
        }
    }

    // MARK: traffic

    /// Sends `payload` from `port` to the handset (peer-initiated traffic). False if no SA or no endpoint yet.
    public func send(_ payload: [UInt8], to handset: IPAddress, port: UInt16, from local: UInt16) -> Bool {
        lock.withLock { sendLocked(payload, sel: TrafficSelector(local: address, remote: handset, localPort: local, remotePort: port)) }
    }

    /// Seals `payload` for the handset now but does not send it: a packet still in flight under an SA that
    /// is about to end (tests that the handset drops it once the SA is deleted).
    public func sealOnly(_ payload: [UInt8], to handset: IPAddress, port: UInt16, from local: UInt16) -> [UInt8]? {
        lock.withLock {
            let sel = TrafficSelector(local: address, remote: handset, localPort: local, remotePort: port)
            var out = [UInt8](repeating: 0, count: 2048)
            let r = payload.withUnsafeBytes { p in out.withUnsafeMutableBytes { plane.seal(p, selector: sel, into: $0) } }
            guard case .packet(let n, _, _) = r else { return nil }
            return Array(out[0..<n])
        }
    }

    /// Sends an already sealed packet to the handset's learned endpoint.
    public func sendSealed(_ packet: [UInt8], to handset: IPAddress) -> Bool {
        lock.withLock {
            guard let dst = endpoint(of: handset) else { return false }
            return transmit(packet, count: packet.count, to: dst)
        }
    }

    private func sendLocked(_ payload: [UInt8], sel: TrafficSelector) -> Bool {
        guard let dst = endpoint(of: sel.remote) else { return false }
        var out = [UInt8](repeating: 0, count: 2048)
        let r = payload.withUnsafeBytes { p in out.withUnsafeMutableBytes { plane.seal(p, selector: sel, into: $0) } }
        guard case .packet(let n, _, _) = r else { return false }
        return transmit(out, count: n, to: dst)
    }

    private func transmit(_ out: [UInt8], count n: Int, to dst: sockaddr_in) -> Bool {
        var dst = dst
        let sent = out.withUnsafeBytes { b in
            withUnsafePointer(to: &dst) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, b.baseAddress, n, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            } }
        }
        guard sent == n else { return false }
        stats.packetsOut += 1
        stats.bytesOut += n
        onPacket?(false, Array(out[0..<n]), dst)
        return true
    }

    private func receiveLoop() {
        var buf = [UInt8](repeating: 0, count: 2048)
        var plain = [UInt8](repeating: 0, count: 2048)
        while lock.withLock({ running }) {
            var from = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = buf.withUnsafeMutableBytes { b in
                withUnsafeMutablePointer(to: &from) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(fd, b.baseAddress, b.count, 0, $0, &len)
                } }
            }
            guard n > 0 else { continue }
            lock.lock()
            onPacket?(true, Array(buf[0..<n]), from)
            handle(Array(buf[0..<n]), from: from, plain: &plain)
            lock.unlock()
        }
        close(fd)
    }

    private func handle(_ wire: [UInt8], from: sockaddr_in, plain: inout [UInt8]) {
        let result: OpenResult
        do {
            result = try wire.withUnsafeBytes { w in try plain.withUnsafeMutableBytes { try plane.open(w, into: $0) } }
        } catch {
            stats.dropped += 1
            stats.lastDrop = "\(error)"
            return
        }
        stats.packetsIn += 1
        stats.bytesIn += wire.count
        switch result {
        case .dummy:
            stats.dummies += 1
            learn(spi: plane.lastInboundSPI, from: from)
        case .datagram(let sel, let range):
            learn(spi: plane.lastInboundSPI, from: from)
            let payload = Array(plain[range])
            stats.delivered.append((sel.localPort, payload))
            let reply: [UInt8]
            switch sel.localPort {
            case Self.echoPort, Self.flowEchoPort: reply = payload
            case Self.balancePort: reply = Array("balance for \(String(decoding: payload, as: UTF8.self)): 42.00 EUR".utf8)
            default: return
            }
            var back = sel
            back.local = address
            _ = sendLocked(reply, sel: back)
        default:
            break
        }
    }

    /// NAT-T: the handset is wherever its last authenticated packet came from. Its first packet on a pair also
    /// proves it holds that pair's keys, so the peer's outbound half goes live.
    private func learn(spi: UInt32, from: sockaddr_in) {
        guard let device = handsets.first(where: { $0.value.pairs[spi] != nil })?.key else { return }
        handsets[device]?.endpoint = from
        guard let (p, key) = handsets[device]?.heldOutbound.removeValue(forKey: spi) else { return }
        do {
            try key.withUnsafeBytes { _ = try plane.sas.install(p, key: $0) }
        } catch {
            log.error("peer could not install its outbound SA: \(error)")
        }
    }
}
