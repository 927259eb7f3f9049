// The operator's packet gateway for the handset's public UDP endpoint (issue 15). The opposite party sends its ESP
// to whatever address:port its IKE peer used, so the proxy's IKE and the handset's ESP share one public 5-tuple:
// inbound IKE (RFC 3948 §2.2 non-ESP marker) and NAT-keepalives (§2.3) go to the proxy's charon, everything else
// down to the handset's module socket. The proxy's IKE and the handset's ESP leave by the same public socket.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct PacketGatewayConfig: Sendable, Equatable {
    /// The handset's public address:port (10.99.0.2:4500 in the lab); the relay binds it.
    public var publicEndpoint: UDPPeer
    /// The proxy charon's NAT-T socket (charon's `port_nat_t`), where inbound IKE goes.
    public var ikeProxy: UDPPeer
    /// The server's public address:port: the handset's ESP to it goes out of the public socket.
    public var oppositeParty: UDPPeer
    /// The relay's port on 127.0.0.1 facing the proxy (0 picks one). The proxy's connection names it as the
    /// remote endpoint, and server-initiated IKE reaches the proxy from it.
    public var proxySidePort: Int

    public init(publicEndpoint: UDPPeer, ikeProxy: UDPPeer, oppositeParty: UDPPeer, proxySidePort: Int = 0) {
        self.publicEndpoint = publicEndpoint
        self.ikeProxy = ikeProxy
        self.oppositeParty = oppositeParty
        self.proxySidePort = proxySidePort
    }

    /// `A.B.C.D:PORT` (IPv4 dotted quad, port 1...65535; 0 also when `allowZeroPort`).
    public static func endpoint(_ text: String, allowZeroPort: Bool = false) throws(PacketGatewayError) -> UDPPeer {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        var a = in_addr()
        guard parts.count == 2, inet_pton(AF_INET, String(parts[0]), &a) == 1, let port = Int(parts[1]),
              (allowZeroPort ? 0 : 1)...65535 ~= port else { throw PacketGatewayError.badEndpoint(text) }
        return UDPPeer(host: String(parts[0]), port: port)
    }
}

public enum PacketGatewayError: Error, Equatable, CustomStringConvertible {
    case badEndpoint(String)
    case cannotBind(endpoint: String, reason: String)

    public var description: String {
        switch self {
        case .badEndpoint(let s): "'\(s)' is not an IPv4 ADDRESS:PORT"
        case .cannotBind(let e, let r): "packet gateway cannot bind \(e): \(r)"
        }
    }
}

public struct PacketGatewayCounters: Sendable, Equatable {
    /// Inbound on the public socket.
    public var ikeToProxy = 0, keepalivesToProxy = 0, espToHandset = 0
    /// Outbound through the public socket.
    public var ikeToServer = 0, keepalivesToServer = 0, espToServer = 0
    /// Fewer octets than a keepalive, an IKE header behind the marker, or an ESP header (either direction).
    public var droppedTooShort = 0
    /// On the proxy-side socket from anyone but the proxy's IKE endpoint.
    public var droppedUnknownSource = 0
    /// ESP from the proxy (it must never send on an SA: the handset owns the sequence numbers), IKE from the handset.
    public var droppedWrongDirection = 0
    /// Inbound ESP while the handset has no module socket to take it.
    public var droppedNoHandsetSocket = 0
    /// sendto failed (unreachable, buffer full).
    public var sendFailures = 0
    public init() {}
}

/// What one UDP payload on the public port is (RFC 3948 §2.1–2.3).
enum NATTPayload: Equatable {
    case ike        // non-ESP marker (4 zero octets where an ESP SPI would be; SPI 0 is reserved) + IKE header
    case keepalive  // the single octet 0xFF
    case esp        // a nonzero SPI and a sequence number at least
    case tooShort

    static let ikeHeaderLength = 28   // RFC 7296 §3.1
    static let espHeaderLength = 8    // SPI + sequence number, RFC 4303 §2

    static func classify(_ b: [UInt8]) -> NATTPayload {
        if b.count == 1 && b[0] == 0xFF { return .keepalive }
        guard b.count >= 4 else { return .tooShort }
        if b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0 {
            return b.count >= 4 + ikeHeaderLength ? .ike : .tooShort
        }
        return b.count >= espHeaderLength ? .esp : .tooShort
    }
}

/// A userspace relay in the packet-gateway role. Datagrams are forwarded as they arrive, one at a time, on the
/// caller's queue: nothing is queued, so nothing grows. `espDown` hands inbound ESP to the handset's module socket
/// (on `queue`) and says whether a socket took it.
public final class PacketGateway: @unchecked Sendable {
    public let config: PacketGatewayConfig
    /// The public endpoint as bound (the configured one, with its port filled in if that was 0).
    public let publicSide: UDPPeer
    public let proxySide: UDPPeer
    private var publicSocket: LoopbackUDPSocket!
    private var proxySocket: LoopbackUDPSocket!
    private let espDown: ([UInt8], UDPPeer) -> Bool
    private let lock = NSLock()
    private var tally = PacketGatewayCounters()
    private var lastServer: UDPPeer?
    private let serverAddress: UInt32
    private let proxyAddress: UInt32

    public var counters: PacketGatewayCounters { lock.withLock { tally } }
    /// Every datagram on the public side as it crosses it (a capture's tap): toward the server or from it, the
    /// payload, and the server's endpoint. Set once, before traffic.
    public var onWire: (@Sendable (_ toServer: Bool, _ bytes: [UInt8], _ server: UDPPeer) -> Void)?
    /// Where the proxy's IKE goes: the address:port the server last used, else the configured opposite party.
    public var serverEndpoint: UDPPeer { lock.withLock { lastServer ?? config.oppositeParty } }

    public init(config: PacketGatewayConfig, queue: DispatchQueue,
                espDown: @escaping @Sendable ([UInt8], UDPPeer) -> Bool) throws(PacketGatewayError) {
        guard let server = Self.ipv4(config.oppositeParty.host) else { throw PacketGatewayError.badEndpoint(config.oppositeParty.description) }
        guard let proxy = Self.ipv4(config.ikeProxy.host) else { throw PacketGatewayError.badEndpoint(config.ikeProxy.description) }
        self.config = config
        self.espDown = espDown
        serverAddress = server
        proxyAddress = proxy
        let box = RelayBox()
        let pub = config.publicEndpoint
        do {
            publicSocket = try LoopbackUDPSocket(address: pub.host, port: pub.port, queue: queue) { bytes, from in
                box.relay?.fromPublic(bytes, from: from)
            }
        } catch { throw PacketGatewayError.cannotBind(endpoint: pub.description, reason: error.description) }
        do {
            proxySocket = try LoopbackUDPSocket(port: config.proxySidePort, queue: queue) { bytes, from in
                box.relay?.fromProxy(bytes, from: from)
            }
        } catch {
            publicSocket.close()
            throw PacketGatewayError.cannotBind(endpoint: "127.0.0.1:\(config.proxySidePort)", reason: error.description)
        }
        publicSide = UDPPeer(host: pub.host, port: publicSocket.port)
        proxySide = UDPPeer(host: "127.0.0.1", port: proxySocket.port)
        box.relay = self
    }

    public func close() {
        publicSocket.close()
        proxySocket.close()
    }

    /// True for datagrams the handset's module sends that belong on the public 5-tuple (to the opposite party).
    public func carriesUplink(to peer: UDPPeer) -> Bool {
        peer.port == config.oppositeParty.port && Self.ipv4(peer.host) == serverAddress
    }

    /// The handset's datagram to the opposite party, out of the public socket. False only when sendto failed;
    /// anything but ESP and keepalives is dropped (counted) and reported as sent, as a network would.
    @discardableResult
    public func sendUp(_ bytes: [UInt8], to peer: UDPPeer) -> Bool {
        switch NATTPayload.classify(bytes) {
        case .tooShort: count(\.droppedTooShort); return true
        case .ike: count(\.droppedWrongDirection); return true
        case .keepalive, .esp: break
        }
        guard publicSocket.send(bytes, to: peer) else { count(\.sendFailures); return false }
        onWire?(true, bytes, peer)
        count(\.espToServer)
        return true
    }

    private func fromPublic(_ bytes: [UInt8], from: UDPPeer) {
        onWire?(false, bytes, from)
        if from.port == Self.ikePort { return fromPort500(bytes, from: from) }
        let kind = NATTPayload.classify(bytes)
        if kind != .tooShort, Self.ipv4(from.host) == serverAddress { lock.withLock { lastServer = from } }
        switch kind {
        case .tooShort: count(\.droppedTooShort)
        case .ike: forward(proxySocket, bytes, to: config.ikeProxy, \.ikeToProxy)
        case .keepalive: forward(proxySocket, bytes, to: config.ikeProxy, \.keepalivesToProxy)
        case .esp: count(espDown(bytes, from) ? \.espToHandset : \.droppedNoHandsetSocket)
        }
    }

    /// RFC 7296 §2.23: port 500 carries IKE without the marker. A server that initiates from port 500 to the
    /// handset's 4500 (strongSwan does, until NAT detection floats it to 4500) is IKE: the proxy's NAT-T socket gets
    /// it with the marker added, and answers to port 500 leave without it (fromProxy).
    private func fromPort500(_ bytes: [UInt8], from: UDPPeer) {
        guard bytes.count >= NATTPayload.ikeHeaderLength else { return count(\.droppedTooShort) }
        if Self.ipv4(from.host) == serverAddress { lock.withLock { lastServer = from } }
        forward(proxySocket, [0, 0, 0, 0] + bytes, to: config.ikeProxy, \.ikeToProxy)
    }

    private func fromProxy(_ bytes: [UInt8], from: UDPPeer) {
        guard from.port == config.ikeProxy.port, Self.ipv4(from.host) == proxyAddress else {
            count(\.droppedUnknownSource)
            return
        }
        switch NATTPayload.classify(bytes) {
        case .tooShort: count(\.droppedTooShort)
        case .esp: count(\.droppedWrongDirection)
        case .ike:
            let to = serverEndpoint
            let out = to.port == Self.ikePort ? Array(bytes.dropFirst(4)) : bytes
            forward(publicSocket, out, to: to, \.ikeToServer)
            onWire?(true, out, to)
        case .keepalive: forward(publicSocket, bytes, to: serverEndpoint, \.keepalivesToServer)
        }
    }

    private func forward(_ socket: LoopbackUDPSocket, _ bytes: [UInt8], to peer: UDPPeer,
                         _ counter: WritableKeyPath<PacketGatewayCounters, Int>) {
        count(socket.send(bytes, to: peer) ? counter : \.sendFailures)
    }

    private func count(_ field: WritableKeyPath<PacketGatewayCounters, Int>) {
        lock.withLock { tally[keyPath: field] += 1 }
    }

    static let ikePort = 500

    static func ipv4(_ host: String) -> UInt32? {
        var a = in_addr()
        return inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &a) == 1 ? a.s_addr : nil
    }
}

/// Lets the sockets' handlers reach the relay without keeping it alive.
private final class RelayBox: @unchecked Sendable {
    weak var relay: PacketGateway?
}
