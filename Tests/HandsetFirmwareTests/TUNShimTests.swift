import CHandsetShim
import Foundation
import HandsetCore
import Testing

/// The shim's TUN calls (Sources/CHandsetShim/tun.c) against the real kernel. The loop test needs root and
/// /dev/net/tun; it uses 198.18.77.0/24 from the benchmarking range (RFC 2544 §C.2.2), never routed on real
/// networks, and the interface disappears when the descriptor closes.
@Suite struct TUNShimTests {
    static let permitted = geteuid() == 0 && FileManager.default.fileExists(atPath: "/dev/net/tun")

    @Test func badNamesAreRefusedWithoutTouchingTheKernel() {
        #expect(hs_tun_open("") == -EINVAL)
        #expect(hs_tun_open("abcdefghijklmnop") == -EINVAL)  // 16 bytes: IFNAMSIZ leaves 15
        #expect(hs_tun_configure("abcdefghijklmnop", 0xC612_4D01, 24, 0) == -EINVAL)
        #expect(hs_tun_configure("hs0", 0xC612_4D01, 33, 0) == -EINVAL)
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/abcdefghijklmno"))
    }

    @Test(.enabled(if: !permitted)) func withoutPermissionOpenFailsWithErrno() {
        let fd = hs_tun_open("hstest\(getpid() % 100_000)")
        #expect(fd == -EPERM || fd == -EACCES || fd == -ENOENT)
    }

    /// A UDP socket sends into the interface, the test reads the packet with the shim, parses it, writes the
    /// answer back as the firmware does, and the socket receives it.
    @Test(.enabled(if: permitted)) func packetsGoBothWays() throws {
        let name = "hst\(getpid() % 1_000_000)"
        let fd = hs_tun_open(name)
        try #require(fd >= 0)
        defer { _ = hs_fd_close(fd) }
        #expect(hs_tun_configure(name, 0xC612_4D01, 24, 1280) == 0)  // 198.18.77.1/24
        #expect((try? String(contentsOfFile: "/sys/class/net/\(name)/mtu", encoding: .utf8)) == "1280\n")
        let flags = (try? String(contentsOfFile: "/sys/class/net/\(name)/flags", encoding: .utf8)) ?? "0"
        #expect((Int(flags.dropFirst(2).trimmingCharacters(in: .whitespacesAndNewlines), radix: 16) ?? 0) & 1 == 1)  // IFF_UP

        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(s) }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var to = sockaddr_in()
        to.sin_family = sa_family_t(AF_INET)
        to.sin_port = UInt16(9).bigEndian
        to.sin_addr.s_addr = inet_addr("198.18.77.9")
        let sent = Array("to the tun".utf8).withUnsafeBytes { b in
            withUnsafePointer(to: &to) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(s, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            } }
        }
        #expect(sent == 10)

        var buf = [UInt8](repeating: 0, count: 2048)
        var n = 0
        let deadline = Date().addingTimeInterval(3)
        var outbound: TUNPacket.Outbound?
        while outbound == nil && Date() < deadline {  // IPv6 router solicitations may come first
            n = buf.withUnsafeMutableBytes { Int(hs_tun_read(fd, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.count)) }
            if n == 0 { usleep(10_000); continue }
            try #require(n > 0)
            outbound = try? buf.withUnsafeBytes { try TUNPacket.parseOutbound(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        let o = try #require(outbound)
        #expect(o.selector.local == IPAddress(198, 18, 77, 1) && o.selector.remote == IPAddress(198, 18, 77, 9))
        #expect(o.selector.remotePort == 9 && Array(buf[o.payload]) == Array("to the tun".utf8))

        let reply = Array("from the tun".utf8)
        let h = TUNPacket.headerLength(remote: o.selector.remote)
        buf.replaceSubrange(h..<(h + reply.count), with: reply)
        let len = try #require(buf.withUnsafeMutableBytes { TUNPacket.writeInbound($0, selector: o.selector, payloadLength: reply.count, ident: 1) })
        #expect(buf.withUnsafeBytes { hs_tun_write(fd, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), len) } == 0)
        var got = [UInt8](repeating: 0, count: 100)
        let r = got.withUnsafeMutableBytes { recv(s, $0.baseAddress, $0.count, 0) }
        #expect(r == reply.count && Array(got[0..<max(0, r)]) == reply)  // the kernel accepted both checksums
    }
}
