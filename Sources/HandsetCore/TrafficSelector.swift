/// The five-tuple of one datagram, from the handset's point of view.
public struct TrafficSelector: Equatable, Sendable {
    public var local: IPAddress
    public var remote: IPAddress
    public var proto: UInt8
    public var localPort: UInt16
    public var remotePort: UInt16

    public init(local: IPAddress, remote: IPAddress, proto: UInt8 = IPProto.udp, localPort: UInt16, remotePort: UInt16) {
        self.local = local
        self.remote = remote
        self.proto = proto
        self.localPort = localPort
        self.remotePort = remotePort
    }
}

public enum IPProto {
    public static let ipv4: UInt8 = 4
    public static let udp: UInt8 = 17
    public static let ipv6: UInt8 = 41
    public static let noNext: UInt8 = 59
    public static let any: UInt8 = 0
}

/// An inclusive port range; `0...65535` means any port.
public struct PortRange: Equatable, Sendable {
    public var low: UInt16
    public var high: UInt16
    public init(_ low: UInt16, _ high: UInt16) { self.low = low; self.high = high }
    public init(_ port: UInt16) { low = port; high = port }
    public static let any = PortRange(0, 65535)
    @inline(__always) public func contains(_ p: UInt16) -> Bool { p >= low && p <= high }
}

/// What a policy or an SA covers: a remote prefix, a protocol (0 = any) and port ranges.
public struct SelectorPattern: Equatable, Sendable {
    public var remote: IPAddress
    public var remotePrefix: Int
    public var proto: UInt8
    public var localPorts: PortRange
    public var remotePorts: PortRange

    public init(remote: IPAddress, prefix: Int, proto: UInt8 = IPProto.any,
                localPorts: PortRange = .any, remotePorts: PortRange = .any) {
        self.remote = remote
        self.remotePrefix = prefix
        self.proto = proto
        self.localPorts = localPorts
        self.remotePorts = remotePorts
    }

    public func covers(_ s: TrafficSelector) -> Bool {
        (proto == IPProto.any || proto == s.proto)
            && localPorts.contains(s.localPort) && remotePorts.contains(s.remotePort)
            && remote.matches(s.remote, prefix: remotePrefix)
    }
}
