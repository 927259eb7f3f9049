/// Bare IP packets as a TUN interface (IFF_NO_PI) carries them, holding one UDP datagram each. Parsing and
/// building reuse the tunnel-mode inner-packet code, so the checksums are the ones ESP tunnel mode checks.
public enum TUNPacket {
    public enum Refusal: Error, Equatable, Sendable {
        /// Neither IPv4 nor IPv6, or shorter than its header.
        case notIP
        /// IP, but not UDP: the data plane carries UDP only.
        case notUDP(protocol: UInt8)
        /// Lengths, header checksum, UDP checksum or fragmentation wrong.
        case malformed
    }

    public struct Outbound: Equatable, Sendable {
        /// Seen from the handset: local = source address and port, remote = destination.
        public var selector: TrafficSelector
        public var payload: Range<Int>
    }

    /// Parses a packet a program sent into the interface.
    public static func parseOutbound(_ b: UnsafeRawBufferPointer) throws(Refusal) -> Outbound {
        guard b.count >= 1 else { throw .notIP }
        let version = b[0] >> 4
        let next: UInt8
        if version == 4 {
            guard b.count >= InnerPacket.ipv4Header else { throw .notIP }
            guard b[9] == IPProto.udp else { throw .notUDP(protocol: b[9]) }
            next = IPProto.ipv4
        } else if version == 6 {
            guard b.count >= InnerPacket.ipv6Header else { throw .notIP }
            guard b[6] == IPProto.udp else { throw .notUDP(protocol: b[6]) }  // extension headers are not followed
            next = IPProto.ipv6
        } else {
            throw .notIP
        }
        // InnerPacket reads it as arriving: its local is our destination. Turn it round.
        guard let p = InnerPacket.parse(b, length: b.count, nextHeader: next, local: .anyV4, peer: .anyV4) else {
            throw .malformed
        }
        let s = p.selector
        return Outbound(selector: TrafficSelector(local: s.remote, remote: s.local, localPort: s.remotePort, remotePort: s.localPort),
                        payload: p.payload)
    }

    /// Bytes of IP and UDP header before the payload for a datagram from `remote`.
    public static func headerLength(remote: IPAddress) -> Int {
        InnerPacket.headerLength(mode: .tunnel(local: .anyV4, remote: remote), remote: remote)
    }

    /// Writes the headers of a datagram arriving from `s.remote:s.remotePort` for `s.local:s.localPort` into
    /// `out[0..<headerLength]`; the payload must already be at `out[headerLength...]`. Returns the packet length,
    /// or nil when `out` cannot hold it or the addresses are of different families.
    public static func writeInbound(_ out: UnsafeMutableRawBufferPointer, selector s: TrafficSelector, payloadLength: Int,
                                    ident: UInt16) -> Int? {
        let h = headerLength(remote: s.remote)
        guard s.local.isV6 == s.remote.isV6, payloadLength >= 0, h + payloadLength <= out.count,
              h + payloadLength <= 65535 else { return nil }
        let turned = TrafficSelector(local: s.remote, remote: s.local, localPort: s.remotePort, remotePort: s.localPort)
        _ = InnerPacket.writeHeaders(out, at: 0, mode: .tunnel(local: s.remote, remote: s.local), s: turned,
                                     payloadLength: payloadLength, ident: ident)
        return h + payloadLength
    }
}
