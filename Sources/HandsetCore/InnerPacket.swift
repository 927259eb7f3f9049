/// Builds and parses what ESP carries: a UDP datagram (transport mode) or an IPv4/IPv6 packet holding one
/// (tunnel mode), with correct header and UDP checksums.
enum InnerPacket {
    static let udpHeader = 8
    static let ipv4Header = 20
    static let ipv6Header = 40

    /// Bytes of header placed before the application payload.
    static func headerLength(mode: ESPMode, remote: IPAddress) -> Int {
        switch mode {
        case .transport: return udpHeader
        case .tunnel: return (remote.isV6 ? ipv6Header : ipv4Header) + udpHeader
        }
    }

    /// Copies the application payload to `out[at...]` and returns its checksum sum (`InternetChecksum.sum`), taken
    /// from the source right after the copy, so `writeHeaders` need not read the payload again.
    static func copyPayload(_ payload: UnsafeRawBufferPointer, to out: UnsafeMutableRawBufferPointer, at: Int) -> UInt16 {
        guard payload.count > 0 else { return 0 }
        precondition(at >= 0 && payload.count <= out.count - at, "payload does not fit")
        (out.baseAddress! + at).copyMemory(from: payload.baseAddress!, byteCount: payload.count)
        return InternetChecksum.sum(payload.baseAddress!, count: payload.count)
    }

    /// Writes headers into `b[at..<at+headerLength]`; the payload is already at `b[at+headerLength...]`.
    /// `payloadSum`, when the caller has it from `copyPayload`, saves reading the payload again.
    /// Returns the ESP next-header value.
    static func writeHeaders(_ b: UnsafeMutableRawBufferPointer, at: Int, mode: ESPMode, s: TrafficSelector,
                             payloadLength: Int, payloadSum: UInt16? = nil, ident: UInt16) -> UInt8 {
        let ipLen: Int
        let next: UInt8
        switch mode {
        case .transport: ipLen = 0; next = IPProto.udp
        case .tunnel: ipLen = s.remote.isV6 ? ipv6Header : ipv4Header; next = s.remote.isV6 ? IPProto.ipv6 : IPProto.ipv4
        }
        let udpAt = at + ipLen
        let udpLen = udpHeader + payloadLength
        b.put16(s.localPort, at: udpAt)
        b.put16(s.remotePort, at: udpAt + 2)
        b.put16(UInt16(udpLen), at: udpAt + 4)
        b.put16(0, at: udpAt + 6)
        var c = InternetChecksum()
        c.addPseudoHeader(src: s.local, dst: s.remote, udpLength: udpLen)
        if let payloadSum {
            c.add16(s.localPort); c.add16(s.remotePort); c.add16(UInt16(udpLen))  // the header as just written
            c.add16(payloadSum)
        } else {
            c.add(b.readOnly, from: udpAt, count: udpLen)
        }
        let sum = c.value
        b.put16(sum == 0 ? 0xFFFF : sum, at: udpAt + 6)  // RFC 768: a computed zero is sent as all ones
        if ipLen == ipv4Header {
            b[at] = 0x45; b[at + 1] = 0
            b.put16(UInt16(ipLen + udpLen), at: at + 2)
            b.put16(ident, at: at + 4)
            b.put16(0x4000, at: at + 6)  // DF
            b[at + 8] = 64; b[at + 9] = IPProto.udp
            b.put16(0, at: at + 10)
            s.local.write(to: b, at: at + 12)
            s.remote.write(to: b, at: at + 16)
            var c = InternetChecksum()
            c.add(b.readOnly, from: at, count: ipv4Header)
            b.put16(c.value, at: at + 10)
        } else if ipLen == ipv6Header {
            b.put32(0x6000_0000, at: at)
            b.put16(UInt16(udpLen), at: at + 4)
            b[at + 6] = IPProto.udp; b[at + 7] = 64
            s.local.write(to: b, at: at + 8)
            s.remote.write(to: b, at: at + 24)
        }
        return next
    }

    struct Parsed {
        var selector: TrafficSelector
        var payload: Range<Int>
    }

    /// Parses a decrypted inner packet in `b[0..<length]`. In transport mode the addresses come from the SA
    /// (the module's IP layer is not ours); in tunnel mode they come from the inner header, checksums verified.
    static func parse(_ b: UnsafeRawBufferPointer, length: Int, nextHeader: UInt8,
                      local: IPAddress, peer: IPAddress) -> Parsed? {
        var src = peer, dst = local
        var udpAt = 0
        var udpEnd = length
        switch nextHeader {
        case IPProto.udp:
            break
        case IPProto.ipv4:
            guard length >= ipv4Header, b[0] >> 4 == 4 else { return nil }
            let ihl = Int(b[0] & 0x0F) * 4
            let total = Int(b.be16(2))
            guard ihl >= ipv4Header, total >= ihl + udpHeader, total <= length, b[9] == IPProto.udp else { return nil }
            var c = InternetChecksum()
            c.add(b, from: 0, count: ihl)
            guard c.value == 0 else { return nil }
            guard b.be16(6) & 0x3FFF == 0 else { return nil }  // fragments are not reassembled here
            src = IPAddress(bytes: b, at: 12, v6: false)
            dst = IPAddress(bytes: b, at: 16, v6: false)
            udpAt = ihl
            udpEnd = total
        case IPProto.ipv6:
            guard length >= ipv6Header + udpHeader, b[0] >> 4 == 6, b[6] == IPProto.udp else { return nil }
            let total = ipv6Header + Int(b.be16(4))
            guard total <= length, total >= ipv6Header + udpHeader else { return nil }
            src = IPAddress(bytes: b, at: 8, v6: true)
            dst = IPAddress(bytes: b, at: 24, v6: true)
            udpAt = ipv6Header
            udpEnd = total
        default:
            return nil
        }
        guard udpEnd - udpAt >= udpHeader else { return nil }
        let udpLen = Int(b.be16(udpAt + 4))
        guard udpLen >= udpHeader, udpLen <= udpEnd - udpAt else { return nil }
        let sum = b.be16(udpAt + 6)
        // Transport-mode checksums cover addresses a NAT may have rewritten (RFC 3948 §3.1.2); the ICV already
        // authenticated them, so only tunnel mode, whose inner addresses are end to end, is checked.
        if nextHeader != IPProto.udp, sum != 0 || src.isV6 {
            var c = InternetChecksum()
            c.addPseudoHeader(src: src, dst: dst, udpLength: udpLen)
            c.add(b, from: udpAt, count: udpLen)
            guard c.value == 0 else { return nil }
        }
        let sel = TrafficSelector(local: dst, remote: src, proto: IPProto.udp,
                                  localPort: b.be16(udpAt + 2), remotePort: b.be16(udpAt))
        return Parsed(selector: sel, payload: (udpAt + udpHeader)..<(udpAt + udpLen))
    }
}
