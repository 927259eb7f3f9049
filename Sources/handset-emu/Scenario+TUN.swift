import Foundation
import EmulatorSupport
import Gateway

/// A step that could not run here; it counts neither as passed nor as failed.
struct ScenarioSkipped: Error, CustomStringConvertible {
    var description: String
}

/// The firmware's TUN interface, seen from an ordinary program. The interface is moved into a network
/// namespace of its own: there it is the handset's IP stack, with the opposite party (127.0.0.1 in this world)
/// routed into it, while the firmware's modem, the peer and the gateway stay on the host's loopback.
enum TUNWorld {
    /// Root and /dev/net/tun and `ip`: nil when all are there, else why not.
    static var unavailableReason: String? {
        if geteuid() != 0 { return "needs root" }
        if !FileManager.default.fileExists(atPath: "/dev/net/tun") { return "needs /dev/net/tun" }
        if (try? EmulatedWorld.which("ip")) == nil { return "needs ip (iproute2)" }
        if let e = probe() { return "needs CAP_NET_ADMIN (TUNSETIFF: errno \(e))" }
        return nil
    }

    /// Root in a container may still lack CAP_NET_ADMIN: try what the firmware will do (the probe interface
    /// goes away on close). Returns errno, or nil when it worked.
    static func probe() -> Int32? {
        let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        var ifr = [UInt8](repeating: 0, count: 40)  // struct ifreq: name[16], then flags (short)
        let name = Array("hsp\(getpid() % 1_000_000)".utf8)
        ifr.replaceSubrange(0..<name.count, with: name)
        let flags = UInt16(0x0001 | 0x1000)  // IFF_TUN | IFF_NO_PI
        ifr[16] = UInt8(flags & 0xFF); ifr[17] = UInt8(flags >> 8)  // little-endian hosts (x86-64, arm64)
        let rc = ifr.withUnsafeMutableBytes { ioctl(fd, UInt(0x4004_54CA), $0.baseAddress!) }  // TUNSETIFF
        return rc == 0 ? nil : errno
    }

    /// A name of at most 15 bytes, unique per run.
    static func interfaceName() -> String { "hse\(getpid() % 1_000_000)" }

    @discardableResult
    static func run(_ args: [String], input: String? = nil) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try EmulatedWorld.which(args[0]))
        p.arguments = Array(args.dropFirst())
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw ScenarioFailure("\(args.joined(separator: " ")): \(String(decoding: e, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return String(decoding: o, as: UTF8.self)
    }
}

extension Scenario {
    static let tun = Scenario(name: "tun", summary: "an ordinary program's UDP through the firmware's TUN interface, ESP only on the wire",
                              run: tunRoundTrip)

    static func tunRoundTrip(_ c: ScenarioContext) throws -> String {
        let w = c.world
        guard let name = w.tunName else { throw ScenarioSkipped(description: "skipped: \(TUNWorld.unavailableReason ?? "TUN not configured")") }
        // The firmware logs in by itself; wait for it so the key request has a session to go through.
        try c.within(90, "login") { w.gw.counters.rotations >= 1 }
        try c.within(30, "the firmware's TUN interface \(name)") { (try? TUNWorld.run(["ip", "link", "show", name])) != nil }
        let ns = "hsemu-\(getpid())"
        try TUNWorld.run(["ip", "netns", "add", ns])
        defer { _ = try? TUNWorld.run(["ip", "netns", "del", ns]) }
        let local = "10.0.0.2", peer = "127.0.0.1"
        try TUNWorld.run(["ip", "link", "set", name, "netns", ns])
        // 127.0.0.1 is an ordinary remote address in there: loopback stays down and route_localnet lets it through.
        try TUNWorld.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.\(name).route_localnet=1",
                          "net.ipv6.conf.\(name).disable_ipv6=1"])
        try TUNWorld.run(["ip", "-n", ns, "addr", "add", "\(local)/24", "dev", name])
        try TUNWorld.run(["ip", "-n", ns, "link", "set", name, "up"])
        try TUNWorld.run(["ip", "-n", ns, "route", "add", "\(peer)/32", "dev", name, "src", local])
        let token = "through the TUN \(UInt32.random(in: 0...UInt32.max))"
        let espBefore = w.capture.summary.packets
        // An ordinary UDP socket: it knows nothing of the firmware. The first datagram waits for its key.
        let program = """
            import socket, sys, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(3)
            end = time.time() + 60
            while time.time() < end:
                s.sendto(sys.argv[1].encode(), ("\(peer)", \(EmulatedPeer.echoPort)))
                try:
                    data, src = s.recvfrom(2048)
                except socket.timeout:
                    continue
                print(src[0], src[1], s.getsockname()[1], data.decode())
                sys.exit(0)
            sys.exit("no echo within 60 s")
            """
        let out = try TUNWorld.run(["ip", "netns", "exec", ns, "python3", "-c", program, token])
        let fields = out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ", maxSplits: 3).map(String.init)
        guard fields.count == 4, fields[0] == peer, fields[1] == "\(EmulatedPeer.echoPort)", fields[3] == token else {
            throw ScenarioFailure("unexpected echo: \(out)")
        }
        guard w.capture.summary.packets > espBefore else { throw ScenarioFailure("no ESP packet on the Internet side") }
        guard !w.capture.contains(Array(token.utf8)) else { throw ScenarioFailure("'\(token)' seen in clear on the Internet side") }
        return "UDP \(local):\(fields[2]) -> \(peer):\(EmulatedPeer.echoPort) via \(name) and back ('\(token)'); only ESP on the wire"
    }
}
