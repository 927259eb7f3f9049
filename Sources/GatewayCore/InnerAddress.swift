import HandsetCore

/// The handset's inner IPv4 address as the registry writes it: a dotted quad, no leading zeros.
extension IPAddress {
    public init?(dottedQuad s: String) {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard (1...3).contains(p.count), p.allSatisfy({ $0 >= "0" && $0 <= "9" }),
                  p == "0" || !p.hasPrefix("0"), let b = UInt8(p) else { return nil }
            v = v << 8 | UInt32(b)
        }
        self.init(v4: v)
    }

    public var dottedQuad: String {
        let v = v4
        return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)"
    }
}

/// Where provisioning takes a device's inner address from when none is given: an IPv4 prefix whose host
/// addresses (network and broadcast excluded) are handed out lowest first, each to one device only.
public struct AddressPool: Equatable, Sendable {
    public let network: UInt32
    public let prefix: Int

    public static let standard = AddressPool(cidr: "10.77.0.0/16")!

    /// "A.B.C.D/N" with N in 8...30 and no host bits set.
    public init?(cidr: String) {
        let parts = cidr.split(separator: "/")
        guard parts.count == 2, let a = IPAddress(dottedQuad: String(parts[0])), let n = Int(parts[1]),
              (8...30).contains(n) else { return nil }
        let mask = UInt32.max << UInt32(32 - n)
        guard a.v4 & ~mask == 0 else { return nil }
        network = a.v4
        prefix = n
    }

    /// Host addresses in order.
    public var hosts: ClosedRange<UInt32> { (network + 1)...(network | ~(UInt32.max << UInt32(32 - prefix))) - 1 }

    public func contains(_ a: IPAddress) -> Bool { !a.isV6 && hosts.contains(a.v4) }

    /// The lowest host address not in `taken`, or nil when the pool is full.
    package func first(notIn taken: Set<UInt32>) -> IPAddress? {
        hosts.first { !taken.contains($0) }.map { IPAddress(v4: $0) }
    }
}
