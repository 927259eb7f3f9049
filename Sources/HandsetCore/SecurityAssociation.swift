import CHandsetShim

public enum ESPAlgorithm: UInt8, Sendable {
    case aesGCM = 1  // RFC 4106
    case chacha20Poly1305 = 2  // RFC 7634

    var shimID: Int32 { self == .aesGCM ? Int32(HS_AEAD_AES_GCM) : Int32(HS_AEAD_CHACHA20_POLY1305) }

    public func accepts(keyLength: Int, icvLength: Int) -> Bool {
        switch self {
        case .aesGCM: return (keyLength == 16 || keyLength == 32) && (icvLength == 8 || icvLength == 12 || icvLength == 16)
        case .chacha20Poly1305: return keyLength == 32 && icvLength == 16
        }
    }
}

public enum SADirection: UInt8, Sendable { case inbound = 0, outbound = 1 }

public enum ESPMode: Equatable, Sendable {
    case transport
    /// Inner packets carry their own IP header; `local`/`remote` are the tunnel endpoints.
    case tunnel(local: IPAddress, remote: IPAddress)
}

/// Soft and hard limits; 0 means no limit. Soft limits raise an event, hard limits remove the SA.
public struct SALifetime: Equatable, Sendable {
    public var softSeconds: UInt64 = 0, hardSeconds: UInt64 = 0
    public var softBytes: UInt64 = 0, hardBytes: UInt64 = 0
    public var softPackets: UInt64 = 0, hardPackets: UInt64 = 0
    public init() {}
    public init(softSeconds: UInt64, hardSeconds: UInt64, softBytes: UInt64 = 0, hardBytes: UInt64 = 0,
                softPackets: UInt64 = 0, hardPackets: UInt64 = 0) {
        self.softSeconds = softSeconds; self.hardSeconds = hardSeconds
        self.softBytes = softBytes; self.hardBytes = hardBytes
        self.softPackets = softPackets; self.hardPackets = hardPackets
    }
}

/// Everything about an SA except its key, which goes straight into the table's fixed context pool.
public struct SAParameters: Equatable, Sendable {
    public var spi: UInt32
    public var direction: SADirection
    public var algorithm: ESPAlgorithm
    public var keyLength: Int
    public var icvLength: Int
    public var salt: UInt32
    public var mode: ESPMode
    /// The handset's own address, used in inner headers and checksums.
    public var local: IPAddress
    /// Traffic this SA carries (outbound: what it may protect; inbound: what decrypted packets must match).
    public var selector: SelectorPattern
    /// ESP-in-UDP (RFC 3948) peer: where outbound packets go, usually port 4500.
    public var peer: IPAddress
    public var peerPort: UInt16
    public var esn: Bool
    public var implicitIV: Bool  // RFC 8750
    public var lifetime: SALifetime

    public init(spi: UInt32, direction: SADirection, algorithm: ESPAlgorithm, keyLength: Int, icvLength: Int = 16,
                salt: UInt32, mode: ESPMode = .transport, local: IPAddress, selector: SelectorPattern,
                peer: IPAddress, peerPort: UInt16 = 4500, esn: Bool = false, implicitIV: Bool = false,
                lifetime: SALifetime = SALifetime()) {
        self.spi = spi; self.direction = direction; self.algorithm = algorithm
        self.keyLength = keyLength; self.icvLength = icvLength; self.salt = salt; self.mode = mode
        self.local = local; self.selector = selector; self.peer = peer; self.peerPort = peerPort
        self.esn = esn; self.implicitIV = implicitIV; self.lifetime = lifetime
    }

    var ivLength: Int { implicitIV ? 0 : 8 }
}

public struct SACounters: Equatable, Sendable {
    public var packets: UInt64 = 0
    public var bytes: UInt64 = 0
    public var icvFailures: UInt64 = 0
    public var replays: UInt64 = 0
    public var paddingErrors: UInt64 = 0
    public var policyMismatches: UInt64 = 0
    public init() {}
}

/// 5 blocks = a 256-bit anti-replay window. Change it here; everything else follows.
public typealias SAReplayWindow = ReplayWindow<5>

/// An SA's mutable state. Rejections never touch `seq`, `window` or `counters.packets/bytes`.
public struct SAState: Sendable {
    /// Outbound: last sequence number sent. Inbound: unused (the window holds the top).
    public var seq: UInt64 = 0
    public var window = SAReplayWindow()
    public var installedAt: UInt64 = 0
    /// Install order, so the newest of two overlapping SAs wins outbound.
    public var generation: UInt64 = 0
    public var counters = SACounters()
    public var softExpired = false
    /// The sequence number reached its limit (the exhaustion event has been raised).
    public var exhausted = false
    public init() {}
}

/// A read-only view of one installed SA, for status screens and tests.
public struct SASnapshot: Equatable, Sendable {
    public var params: SAParameters
    public var seq: UInt64
    public var windowTop: UInt64
    public var counters: SACounters
    public var installedAt: UInt64
    public var softExpired: Bool
}

extension SASnapshot {
    /// Everything a rejected packet must leave unchanged.
    public func sameProtocolState(as other: SASnapshot) -> Bool {
        params == other.params && seq == other.seq && windowTop == other.windowTop
            && counters.packets == other.counters.packets && counters.bytes == other.counters.bytes
            && softExpired == other.softExpired
    }
}
