import BearerDriver
import CHandsetShim
import HandsetCore

/// `tun`, `tun_address`, `tun_mtu` (docs/firmware.md §TUN interface).
struct TUNConfig {
    /// Interface name, NUL-terminated; empty: no TUN.
    var name = InlineArray<16, CChar>(repeating: 0)
    /// < 0: the operator sets address and link state (`ip addr`, `ip link set up`).
    var prefix = -1
    var address = IPAddress.anyV4
    var mtu = 1400

    var enabled: Bool { name[0] != 0 }
}

extension FirmwareConfig {
    /// The TUN keys; false for any other key.
    mutating func applyTUN(_ k: UnsafeRawBufferPointer, _ v: Tokens, line: Int) throws(ConfigError) -> Bool {
        if bytesEqual(k, "tun") {
            let n = v[0]
            guard n.count < 16 else { throw ConfigError(line: line, reason: "tun: an interface name of 1...15 bytes") }
            for i in 0..<n.count { tun.name[i] = CChar(bitPattern: n[i]) }
            tun.name[n.count] = 0
        } else if bytesEqual(k, "tun_address") {
            guard case let (addr, prefix)? = parseIPv4AndNumber(v[0], separator: 0x2F, max: 32) else {
                throw ConfigError(line: line, reason: "tun_address: ADDRESS/PREFIX")
            }
            tun.address = addr
            tun.prefix = Int(prefix)
        } else if bytesEqual(k, "tun_mtu") {
            guard let m = parseUInt(v[0], max: 9000), m >= 576 else { throw ConfigError(line: line, reason: "tun_mtu: 576...9000") }
            tun.mtu = Int(m)
        } else {
            return false
        }
        return true
    }

    /// Checks that need the whole file: programs' packets must carry the SAs' inner address as their source.
    func checkTUN() throws(ConfigError) {
        guard tun.prefix >= 0 else { return }
        guard tun.enabled else { throw ConfigError(line: 0, reason: "tun_address needs tun") }
        guard tun.address == localAddress else { throw ConfigError(line: 0, reason: "tun_address must be local_address") }
    }
}

/// The open interface, the flows programs started through it (their answers go back the same way), counters.
struct TUNState {
    var fd: Int32 = -1
    var flows = InlineArray<16, TUNFlow>(repeating: TUNFlow())
    var nextFlow = 0
    var ident: UInt16 = 0
    var stats = TUNStats()
}

struct TUNFlow {
    var used = false
    var remote = IPAddress.anyV4
    var remotePort: UInt16 = 0
    var localPort: UInt16 = 0
}

struct TUNStats {
    var packetsIn: UInt64 = 0
    var packetsOut: UInt64 = 0
    var notUDP: UInt64 = 0
    var malformed: UInt64 = 0
    var foreignSource: UInt64 = 0
    var tooLongToHold: UInt64 = 0
    var writeErrors: UInt64 = 0
}

extension Firmware {
    /// Opens the TUN interface if configured. Without permission the firmware runs on without it.
    mutating func openTUN() {
        guard config.tun.enabled else { return }
        var name = config.tun.name
        let fd = withUnsafeBytes(of: &name) { n in hs_tun_open(n.baseAddress!.assumingMemoryBound(to: CChar.self)) }
        guard fd >= 0 else {
            LogLine("fw: TUN unavailable (needs root/CAP_NET_ADMIN and /dev/net/tun); running without it: ").append(errno: -fd).emit()
            return
        }
        tun.fd = fd
        guard config.tun.prefix >= 0 else { log("TUN open; address, link and routes are the operator's"); return }
        if addressTUN() { log("TUN up") }
    }

    /// Gives the interface the inner address: `tun_address`, or the one the gateway bound in its place (an IKE
    /// server's virtual IP), at boot and whenever it changes. Only when the firmware manages the address.
    @discardableResult
    mutating func addressTUN() -> Bool {
        guard tun.fd >= 0, config.tun.prefix >= 0 else { return false }
        var name = config.tun.name
        let rc = withUnsafeBytes(of: &name) { n in
            hs_tun_configure(n.baseAddress!.assumingMemoryBound(to: CChar.self), kd.innerAddress.v4,
                             Int32(config.tun.prefix), Int32(config.tun.mtu))
        }
        if rc < 0 { LogLine("fw: setting the TUN address failed: ").append(errno: -rc).emit() }
        return rc >= 0
    }

    /// Reads what programs sent into the interface; a bounded number per loop turn, so the modem is not starved.
    mutating func pollTUN() {
        guard tun.fd >= 0 else { return }
        // A packet that goes out starts a modem job: the rest wait in the interface's queue until it is done.
        for _ in 0..<16 where modemFree {
            var packet = InlineArray<2048, UInt8>(repeating: 0)
            let n = withUnsafeMutableBytes(of: &packet) { b in
                Int(hs_tun_read(tun.fd, b.baseAddress!.assumingMemoryBound(to: UInt8.self), b.count))
            }
            if n < 0 {
                // The interface was deleted under us (`ip link del`, its namespace removed): carry on without it.
                LogLine("fw: TUN gone; running without it: ").append(errno: Int32(-n)).emit()
                closeTUN()
            }
            guard n > 0 else { return }
            withUnsafeBytes(of: packet) { b in fromTUN(UnsafeRawBufferPointer(rebasing: b[0..<n])) }
        }
    }

    /// One packet from a program: the SPD decides, exactly as for the app interface's SEND.
    mutating func fromTUN(_ packet: UnsafeRawBufferPointer) {
        let parsed: TUNPacket.Outbound
        do throws(TUNPacket.Refusal) {
            parsed = try TUNPacket.parseOutbound(packet)
        } catch {
            if case .malformed = error { tun.stats.malformed &+= 1 } else { tun.stats.notUDP &+= 1 }
            return
        }
        let sel = parsed.selector
        // SAs cover the handset's inner address only (the gateway's binding once it made one); anything else would
        // go out under a selector it does not own.
        guard sel.local == kd.innerAddress else { tun.stats.foreignSource &+= 1; return }
        tun.stats.packetsIn &+= 1
        rememberFlow(sel)
        let payload = UnsafeRawBufferPointer(rebasing: packet[parsed.payload])
        // A datagram too big to hold while its key is requested is dropped (the key request still goes).
        let holdable = payload.count <= HeldDatagram().payload.storage.count
        if !holdable { tun.stats.tooLongToHold &+= 1 }
        sealAndSend(payload, selector: sel, holdIfNoKey: holdable)
    }

    mutating func rememberFlow(_ s: TrafficSelector) {
        if knowsFlow(s) { return }
        tun.flows[tun.nextFlow] = TUNFlow(used: true, remote: s.remote, remotePort: s.remotePort, localPort: s.localPort)
        tun.nextFlow = (tun.nextFlow + 1) % 16
    }

    /// Who gets a decrypted datagram: the TUN for flows a program started through it, or for any flow while
    /// no app has registered; otherwise the app interface.
    func wantsTUN(_ s: TrafficSelector) -> Bool {
        guard tun.fd >= 0 else { return false }
        if !appSocket.hasApp { return true }
        return knowsFlow(s)
    }

    func knowsFlow(_ s: TrafficSelector) -> Bool {
        for i in 0..<16 where tun.flows[i].used && tun.flows[i].remote == s.remote
            && tun.flows[i].remotePort == s.remotePort && tun.flows[i].localPort == s.localPort { return true }
        return false
    }

    /// Writes a decrypted datagram back into the interface as an IP packet with fresh checksums.
    mutating func toTUN(_ s: TrafficSelector, _ payload: UnsafeRawBufferPointer) {
        var packet = InlineArray<2048, UInt8>(repeating: 0)
        tun.ident &+= 1
        let ident = tun.ident
        let fd = tun.fd
        let rc = withUnsafeMutableBytes(of: &packet) { b -> Int32 in
            let h = TUNPacket.headerLength(remote: s.remote)
            guard h + payload.count <= b.count else { return -1 }
            if payload.count > 0 { (b.baseAddress! + h).copyMemory(from: payload.baseAddress!, byteCount: payload.count) }
            guard let n = TUNPacket.writeInbound(b, selector: s, payloadLength: payload.count, ident: ident) else { return -1 }
            return hs_tun_write(fd, b.baseAddress!.assumingMemoryBound(to: UInt8.self), n)
        }
        if rc == 0 { tun.stats.packetsOut &+= 1 } else { tun.stats.writeErrors &+= 1 }
    }
}

extension Firmware {
    /// At a clean stop, or when the interface went away: what it carried and refused, then the descriptor goes.
    mutating func closeTUN() {
        guard tun.fd >= 0 else { return }
        let s = tun.stats
        LogLine("fw: tun in ").append(s.packetsIn).append(" out ").append(s.packetsOut).emit()
        LogLine("fw: tun dropped: not UDP ").append(s.notUDP).append(", malformed ").append(s.malformed)
            .append(", foreign source ").append(s.foreignSource).append(", too long to hold ").append(s.tooLongToHold)
            .append(", write errors ").append(s.writeErrors).emit()
        _ = hs_fd_close(tun.fd)
        tun.fd = -1
    }
}
