import Testing
@testable import HandsetCore

// Vectors:
// - kernelPacket: what Linux 6.x wrote into a TUN interface (IFF_TUN|IFF_NO_PI) for a Python UDP socket sending
//   "hello" from 10.0.0.2 to 127.0.0.1:7; its checksums are the kernel's. scapy 2.8.0 recomputes the same ones.
// - scapyReply: scapy 2.8.0, IP(src="127.0.0.1", dst="10.0.0.2", id=1, flags="DF", ttl=64)/UDP(sport=7, dport=48012)/b"hello".
// - wikipediaHeader: the IPv4 header checksum example of Wikipedia's "Internet checksum" article (checksum b861).
struct TUNPacketTests {
    static let kernelPacket = hexBytes("4500002149c84000401168010a0000027f000001bb8c0007000d776b68656c6c6f")
    static let scapyReply = hexBytes("45000021000140004011b1c87f0000010a0000020007bb8c000d776b68656c6c6f")
    static let wikipediaHeader = hexBytes("450000730000400040110000c0a80001c0a800c7")

    func parse(_ b: [UInt8]) throws -> TUNPacket.Outbound {
        try b.withUnsafeBytes { try TUNPacket.parseOutbound($0) }
    }

    @Test func parsesWhatTheKernelWrote() throws {
        let p = try parse(Self.kernelPacket)
        #expect(p.selector == TrafficSelector(local: IPAddress(10, 0, 0, 2), remote: IPAddress(127, 0, 0, 1),
                                              localPort: 0xBB8C, remotePort: 7))
        #expect(Array(Self.kernelPacket[p.payload]) == Array("hello".utf8))
    }

    @Test func writesWhatScapyBuilds() {
        var out = [UInt8](repeating: 0xEE, count: 64)
        let sel = TrafficSelector(local: IPAddress(10, 0, 0, 2), remote: IPAddress(127, 0, 0, 1), localPort: 0xBB8C, remotePort: 7)
        let h = TUNPacket.headerLength(remote: sel.remote)
        #expect(h == 28)
        out.replaceSubrange(h..<(h + 5), with: Array("hello".utf8))
        let n = out.withUnsafeMutableBytes { TUNPacket.writeInbound($0, selector: sel, payloadLength: 5, ident: 1) }
        #expect(n == Self.scapyReply.count)
        #expect(Array(out[0..<(n ?? 0)]) == Self.scapyReply)
        #expect(out[(n ?? 0)...].allSatisfy { $0 == 0xEE })  // nothing written past the packet
    }

    @Test func headerChecksumMatchesThePublishedExample() throws {
        // The published header with a UDP datagram of the length it announces (checksum 0: none, RFC 768).
        var b = Self.wikipediaHeader
        b[10] = 0xB8; b[11] = 0x61
        b += [0x30, 0x39, 0x00, 0x35, 0x00, 0x5F, 0x00, 0x00] + [UInt8](repeating: 0, count: 0x5F - 8)
        let p = try parse(b)
        #expect(p.selector.local == IPAddress(192, 168, 0, 1) && p.selector.remote == IPAddress(192, 168, 0, 199))
        #expect(p.selector.localPort == 12345 && p.selector.remotePort == 53)
        #expect(p.payload == 28..<115)
        b[11] = 0x62
        #expect(throws: TUNPacket.Refusal.malformed) { try parse(b) }
    }

    @Test func ipv6RoundTrip() throws {
        let sel = TrafficSelector(local: IPAddress(v6High: 0x2001_0db8_0000_0001, low: 2),
                                  remote: IPAddress(v6High: 0x2001_0db8_0000_0002, low: 1), localPort: 5000, remotePort: 7)
        let h = TUNPacket.headerLength(remote: sel.remote)
        var out = [UInt8](repeating: 0, count: h + 3)
        out.replaceSubrange(h..<(h + 3), with: [1, 2, 3])
        let n = try #require(out.withUnsafeMutableBytes { TUNPacket.writeInbound($0, selector: sel, payloadLength: 3, ident: 9) })
        // Read back as if a program had sent it the other way: the addresses and ports turn round.
        let p = try parse(Array(out[0..<n]))
        #expect(p.selector == TrafficSelector(local: sel.remote, remote: sel.local, localPort: 7, remotePort: 5000))
        #expect(Array(out[p.payload]) == [1, 2, 3])
    }

    @Test func refusals() {
        var tcp = Self.kernelPacket
        tcp[9] = 6
        #expect(throws: TUNPacket.Refusal.notUDP(protocol: 6)) { try parse(tcp) }
        var v5 = Self.kernelPacket
        v5[0] = 0x55
        #expect(throws: TUNPacket.Refusal.notIP) { try parse(v5) }
        #expect(throws: TUNPacket.Refusal.notIP) { try parse([]) }
        #expect(throws: TUNPacket.Refusal.notIP) { try parse(Array(Self.kernelPacket[0..<12])) }
        #expect(throws: TUNPacket.Refusal.malformed) { try parse(Array(Self.kernelPacket.dropLast())) }  // shorter than announced
        var badUDP = Self.kernelPacket
        badUDP[26] ^= 0x01  // UDP checksum
        #expect(throws: TUNPacket.Refusal.malformed) { try parse(badUDP) }
        var fragment = Self.kernelPacket
        fragment[6] = 0x20; fragment[7] = 0  // MF, DF cleared
        fragment[10] = 0; fragment[11] = 0
        #expect(throws: TUNPacket.Refusal.malformed) { try parse(fixHeaderChecksum(fragment)) }
        #expect(Self.kernelPacket == hexBytes("4500002149c84000401168010a0000027f000001bb8c0007000d776b68656c6c6f"))
    }

    @Test func writeRefusesWhatDoesNotFit() {
        var out = [UInt8](repeating: 0xEE, count: 30)
        let sel = TrafficSelector(local: IPAddress(10, 0, 0, 2), remote: IPAddress(127, 0, 0, 1), localPort: 1, remotePort: 7)
        #expect(out.withUnsafeMutableBytes { TUNPacket.writeInbound($0, selector: sel, payloadLength: 5, ident: 1) } == nil)
        let mixed = TrafficSelector(local: IPAddress(v6High: 1, low: 2), remote: IPAddress(127, 0, 0, 1), localPort: 1, remotePort: 7)
        #expect(out.withUnsafeMutableBytes { TUNPacket.writeInbound($0, selector: mixed, payloadLength: 0, ident: 1) } == nil)
        #expect(out.allSatisfy { $0 == 0xEE })  // refused: nothing written
    }

    /// The firmware reads and writes the interface per packet: both directions must stay off the heap.
    @Test(.disabled(if: addressSanitizerOwnsMalloc, "malloc belongs to AddressSanitizer in this run"))
    func parseAndWriteDoNotAllocate() throws {
        let packet = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { packet.deallocate() }
        let sel = TrafficSelector(local: IPAddress(10, 0, 0, 2), remote: IPAddress(127, 0, 0, 1), localPort: 40000, remotePort: 7)
        let sizes = [5, 512, 1400]
        var parsed = 0, mallocs: Int? = nil, rounds = 0
        for _ in 0..<MallocCounter.attempts where mallocs == nil {
            MallocCounter.start()
            for r in 0..<1_016 {
                if r == 16 { MallocCounter.mine = 0 }
                let len = sizes[r % 3]
                guard let n = TUNPacket.writeInbound(packet, selector: sel, payloadLength: len, ident: UInt16(truncatingIfNeeded: r)),
                      let p = try? TUNPacket.parseOutbound(UnsafeRawBufferPointer(rebasing: packet[0..<n])) else { continue }
                if p.payload.count == len && p.selector.remotePort == 40000 { parsed += 1 }
            }
            mallocs = MallocCounter.stop()
            rounds += 1_016
        }
        #expect(mallocs != nil, "another suite kept taking the malloc hook; nothing was measured")
        #expect(mallocs == 0, "\(mallocs ?? -1) mallocs over 1000 TUN packets written and parsed")
        #expect(parsed == rounds)
    }

    func fixHeaderChecksum(_ p: [UInt8]) -> [UInt8] {
        var b = p
        b[10] = 0; b[11] = 0
        var sum: UInt32 = 0
        for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(b[i]) << 8 | UInt32(b[i + 1]) }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        let c = ~UInt16(sum)
        b[10] = UInt8(c >> 8); b[11] = UInt8(c & 0xFF)
        return b
    }
}
