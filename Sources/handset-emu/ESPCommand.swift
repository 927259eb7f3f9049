import ArgumentParser
import Foundation
import HandsetCore

/// `handset-emu esp ...`: seal and open single ESP packets with an SA given on the command line, for
/// interop debugging. Only the requested lines go to stdout; every failure exits non-zero with a message.
struct ESPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "esp",
        abstract: "Seal and open ESP packets (RFC 4303, AES-GCM RFC 4106, ChaCha20-Poly1305 RFC 7634).",
        discussion: """
            seal/open work on the bare ESP packet (SPI through ICV). seal-udp/open-udp go through the handset's \
            data plane: the ESP payload is a UDP datagram (transport) or an IP packet holding one (tunnel), and \
            the ESP packet is what travels as the UDP payload to port 4500 (RFC 3948). Keys are never printed.

            Example (AES-128-GCM, SPI 0x1001, sequence number 1, UDP payload "hello"):
              handset-emu esp seal --alg aes-gcm-16 --salt 01020304 --spi 0x1001 \\
                --key 000102030405060708090a0b0c0d0e0f --seq 1 --next-header 17 68656c6c6f
            """,
        subcommands: [Seal.self, Open.self, SealUDP.self, OpenUDP.self])
}

// MARK: - Shared options

enum ESPAlgorithmName: String, ExpressibleByArgument, CaseIterable {
    case aesGCM16 = "aes-gcm-16", aesGCM12 = "aes-gcm-12", aesGCM8 = "aes-gcm-8"
    case chacha20Poly1305 = "chacha20-poly1305"

    var algorithm: ESPAlgorithm { self == .chacha20Poly1305 ? .chacha20Poly1305 : .aesGCM }
    var icvLength: Int {
        switch self {
        case .aesGCM16, .chacha20Poly1305: 16
        case .aesGCM12: 12
        case .aesGCM8: 8
        }
    }
}

struct SAOptions: ParsableArguments {
    @Option(help: "AEAD and ICV length in bytes.")
    var alg: ESPAlgorithmName

    @Option(help: "Key as hex: 16 or 32 bytes for AES-GCM (picks AES-128 or AES-256), 32 for ChaCha20-Poly1305.")
    var key: String

    @Option(help: "Salt as hex, 4 bytes: the fixed part of the nonce (RFC 4106 §4, RFC 7634 §2).")
    var salt: String

    @Option(help: "SPI, decimal or 0x-hex (256 or more; 1-255 are reserved).", transform: parseUInt32)
    var spi: UInt32

    @Option(help: ArgumentHelp(
        "Sequence number, decimal or 0x-hex.",
        discussion: "seal: the number this packet carries (with --esn the full 64-bit number). open: the receiver's "
            + "window top, from which ESN high bits are inferred (RFC 4303 Appendix A2)."),
        transform: parseUInt64)
    var seq: UInt64

    @Flag(help: "Extended (64-bit) sequence numbers: the high half goes into the AAD (RFC 4303 §2.2.1).")
    var esn = false

    @Flag(help: "Implicit IV (RFC 8750): no IV on the wire; the nonce uses the sequence number.")
    var iiv = false

    func validate() throws {
        if !esn && seq > UInt64(UInt32.max) { throw ValidationError("--seq exceeds 2^32-1; add --esn for 64-bit numbers") }
    }

    /// Builds the SA; addresses matter only to the data-plane commands.
    func parameters(_ direction: SADirection, mode: ESPMode = .transport, local: IPAddress = .anyV4,
                    selector: SelectorPattern = SelectorPattern(remote: .anyV4, prefix: 0),
                    peer: IPAddress = .anyV4) throws -> (SAParameters, [UInt8]) {
        let keyBytes = try hexArgument(key, name: "--key")
        let saltBytes = try hexArgument(salt, name: "--salt")
        guard saltBytes.count == 4 else { throw ToolError("--salt must be 4 bytes, got \(saltBytes.count)") }
        switch alg.algorithm {
        case .aesGCM where keyBytes.count != 16 && keyBytes.count != 32:
            throw ToolError("--key must be 16 or 32 bytes for AES-GCM, got \(keyBytes.count)")
        case .chacha20Poly1305 where keyBytes.count != 32:
            throw ToolError("--key must be 32 bytes for ChaCha20-Poly1305, got \(keyBytes.count)")
        default: break
        }
        guard spi > 255 else { throw ToolError("--spi must be 256 or more (0-255 are reserved, RFC 4303 §2.1)") }
        let salt32 = saltBytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let p = SAParameters(spi: spi, direction: direction, algorithm: alg.algorithm, keyLength: keyBytes.count,
                             icvLength: alg.icvLength, salt: salt32, mode: mode, local: local, selector: selector,
                             peer: peer, esn: esn, implicitIV: iiv)
        return (p, keyBytes)
    }
}

/// Installs `p` into `table`; the key copy is wiped afterwards.
func installSA<let n: Int>(_ p: SAParameters, key: [UInt8], into table: inout SATable<n>) throws -> Int {
    var key = key
    defer { for i in key.indices { key[i] = 0 } }
    do {
        return try key.withUnsafeBytes { k throws(SAError) in try table.install(p, key: k) }
    } catch {
        throw ToolError("SA rejected: \(error)")
    }
}

// MARK: - esp seal / esp open

extension ESPCommand {
    struct Seal: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Seal one ESP payload; prints the ESP packet (SPI through ICV) as hex on one line.")

        @OptionGroup var sa: SAOptions

        @Option(help: "Explicit IV as 8 hex bytes (default: the 64-bit sequence number). Not with --iiv.")
        var iv: String?

        @Option(name: .customLong("next-header"), help: "ESP next header (4 = IPv4, 17 = UDP, 41 = IPv6, 59 = dummy).")
        var nextHeader: UInt8

        @Argument(help: "The ESP payload data as hex (may be empty).")
        var payloadHex: String

        func validate() throws {
            if sa.iiv && iv != nil { throw ValidationError("--iv makes no sense with --iiv (RFC 8750 sends no IV)") }
            if sa.seq == 0 { throw ValidationError("--seq must be 1 or more: 0 is never sent (RFC 4303 §3.3.3)") }
        }

        func run() throws {
            let payload = try hexArgument(payloadHex, name: "PAYLOAD_HEX")
            var ivValue: UInt64?
            if let iv {
                let b = try hexArgument(iv, name: "--iv")
                guard b.count == 8 else { throw ToolError("--iv must be 8 bytes, got \(b.count)") }
                ivValue = b.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            }
            let (p, key) = try sa.parameters(.outbound)
            var table = SATable<1>()
            let slot = try installSA(p, key: key, into: &table)
            table.primeSequence(slot: slot, next: sa.seq)
            var out = [UInt8](repeating: 0, count: ESPFormat.wireLength(p, payload: payload.count))
            let n: Int
            do {
                n = try payload.withUnsafeBytes { pl in
                    try out.withUnsafeMutableBytes { o in
                        try table.seal(slot: slot, payload: pl, nextHeader: nextHeader, into: o, iv: ivValue)
                    }
                }
            } catch let error as ESPError {
                throw ToolError("seal failed: \(describe(error))")
            }
            print(hexString(out[0..<n]))
        }
    }

    struct Open: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Authenticate and decrypt one ESP packet; prints `next-header: N` and `payload: HEX`.")

        @OptionGroup var sa: SAOptions

        @Argument(help: "The ESP packet (SPI through ICV) as hex.")
        var packetHex: String

        func run() throws {
            let packet = try hexArgument(packetHex, name: "PACKET_HEX")
            let (p, key) = try sa.parameters(.inbound)
            var table = SATable<1>()
            let slot = try installSA(p, key: key, into: &table)
            if sa.seq > 0 { table.primeSequence(slot: slot, next: sa.seq) }
            var out = [UInt8](repeating: 0, count: max(packet.count, 1))
            let r: InboundESP
            do {
                r = try packet.withUnsafeBytes { w in
                    try out.withUnsafeMutableBytes { o in try table.open(w, into: o) }
                }
            } catch let error as ESPError {
                throw ToolError("open failed: \(describe(error))")
            }
            print("next-header: \(r.nextHeader)")
            print("payload: \(hexString(out[0..<r.length]))")
        }
    }
}

// MARK: - esp seal-udp / esp open-udp (through the data plane)

enum ModeName: String, ExpressibleByArgument, CaseIterable { case transport, tunnel }

/// The datagram as it travels: `src` sends to `dst`. seal-udp: src is the handset. open-udp: dst is the handset.
struct FlowOptions: ParsableArguments {
    @Option(help: "transport (ESP carries the UDP datagram) or tunnel (ESP carries an IPv4/IPv6 packet).")
    var mode: ModeName = .transport
    @Option(help: "Source address of the datagram (IPv4 or IPv6).", transform: parseIP) var src: IPAddress
    @Option(help: "Destination address of the datagram.", transform: parseIP) var dst: IPAddress
    @Option(help: "Source UDP port.") var sport: UInt16
    @Option(help: "Destination UDP port.") var dport: UInt16
    @Option(name: .customLong("tunnel-src"), help: "Outer (tunnel) source; default --src.", transform: parseIP)
    var tunnelSrc: IPAddress?
    @Option(name: .customLong("tunnel-dst"), help: "Outer (tunnel) destination; default --dst.", transform: parseIP)
    var tunnelDst: IPAddress?

    func validate() throws {
        if src.isV6 != dst.isV6 { throw ValidationError("--src and --dst must be the same address family") }
        if mode == .transport && (tunnelSrc != nil || tunnelDst != nil) {
            throw ValidationError("--tunnel-src/--tunnel-dst need --mode tunnel")
        }
    }

    var outerSrc: IPAddress { tunnelSrc ?? src }
    var outerDst: IPAddress { tunnelDst ?? dst }
    var espMode: ESPMode { mode == .transport ? .transport : .tunnel(local: outerSrc, remote: outerDst) }
}

/// Template number the tool's single protect rule names; it never reaches a key request.
private let toolTemplate: UInt16 = 1

extension ESPCommand {
    struct SealUDP: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "seal-udp",
            abstract: "Seal one UDP datagram from the handset (--src) through the data plane; prints the ESP packet "
                + "(the UDP payload to send to port 4500) as hex on one line.")

        @OptionGroup var sa: SAOptions
        @OptionGroup var flow: FlowOptions
        @Argument(help: "The datagram's UDP payload as hex (may be empty).") var payloadHex: String

        func validate() throws {
            if sa.seq == 0 { throw ValidationError("--seq must be 1 or more: 0 is never sent (RFC 4303 §3.3.3)") }
        }

        func run() throws {
            let payload = try hexArgument(payloadHex, name: "PAYLOAD_HEX")
            let (p, key) = try sa.parameters(
                .outbound, mode: flow.espMode, local: flow.src,
                selector: SelectorPattern(remote: flow.dst, prefix: flow.dst.bitWidth, proto: IPProto.udp),
                peer: flow.outerDst)
            var plane = DataPlane<1, 1>(defaultAction: .discard)
            try plane.spd.append(SPDRule(SelectorPattern(remote: flow.dst, prefix: flow.dst.bitWidth), .protect(template: toolTemplate)))
            let slot = try installSA(p, key: key, into: &plane.sas)
            plane.sas.primeSequence(slot: slot, next: sa.seq)
            let selector = TrafficSelector(local: flow.src, remote: flow.dst, proto: IPProto.udp,
                                           localPort: flow.sport, remotePort: flow.dport)
            var out = [UInt8](repeating: 0, count: payload.count + 128)
            let result = payload.withUnsafeBytes { pl in
                out.withUnsafeMutableBytes { o in plane.seal(pl, selector: selector, into: o) }
            }
            guard case .packet(let n, _, _) = result else {
                if case .failed(let e) = result { throw ToolError("seal failed: \(describe(e))") }
                throw ToolError("seal failed: data plane answered \(result)")
            }
            print(hexString(out[0..<n]))
        }
    }

    struct OpenUDP: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "open-udp",
            abstract: "Open one ESP-in-UDP payload addressed to the handset (--dst) through the data plane; prints "
                + "src, dst, sport, dport and payload lines.")

        @OptionGroup var sa: SAOptions
        @OptionGroup var flow: FlowOptions
        @Argument(help: "What arrived on the ESP-in-UDP socket (the ESP packet) as hex.") var packetHex: String

        func run() throws {
            let packet = try hexArgument(packetHex, name: "PACKET_HEX")
            // Inbound: the handset is the datagram's destination; the tunnel runs from --tunnel-src to --tunnel-dst.
            let mode: ESPMode = flow.mode == .transport ? .transport : .tunnel(local: flow.outerDst, remote: flow.outerSrc)
            let (p, key) = try sa.parameters(
                .inbound, mode: mode, local: flow.dst,
                selector: SelectorPattern(remote: flow.src, prefix: flow.src.bitWidth, proto: IPProto.udp),
                peer: flow.outerSrc)
            var plane = DataPlane<1, 1>(defaultAction: .discard)
            try plane.spd.append(SPDRule(SelectorPattern(remote: flow.src, prefix: flow.src.bitWidth), .protect(template: toolTemplate)))
            let slot = try installSA(p, key: key, into: &plane.sas)
            if sa.seq > 0 { plane.sas.primeSequence(slot: slot, next: sa.seq) }
            var out = [UInt8](repeating: 0, count: max(packet.count, 1))
            let result: OpenResult
            do {
                result = try packet.withUnsafeBytes { w in
                    try out.withUnsafeMutableBytes { o in try plane.open(w, into: o) }
                }
            } catch let error as ESPError {
                throw ToolError("open failed: \(describe(error))")
            }
            guard case .datagram(let sel, let range) = result else {
                throw ToolError("open: no datagram (\(result))")
            }
            print("src: \(formatIP(sel.remote))")
            print("dst: \(formatIP(sel.local))")
            print("sport: \(sel.remotePort)")
            print("dport: \(sel.localPort)")
            print("payload: \(hexString(out[range]))")
        }
    }
}

func parseIP(_ s: String) throws -> IPAddress {
    var v4 = in_addr()
    if inet_pton(AF_INET, s, &v4) == 1 { return IPAddress(v4: UInt32(bigEndian: v4.s_addr)) }
    var v6 = [UInt8](repeating: 0, count: 16)
    if inet_pton(AF_INET6, s, &v6) == 1 {
        let hi = v6[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let lo = v6[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return IPAddress(v6High: hi, low: lo)
    }
    throw ValidationError("'\(s)' is not an IPv4 or IPv6 address")
}

func formatIP(_ a: IPAddress) -> String {
    var buf = [CChar](repeating: 0, count: 64)
    if a.isV6 {
        var b = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 { b[i] = UInt8(truncatingIfNeeded: a.high >> (56 - 8 * i)); b[8 + i] = UInt8(truncatingIfNeeded: a.low >> (56 - 8 * i)) }
        _ = inet_ntop(AF_INET6, b, &buf, socklen_t(buf.count))
    } else {
        var v4 = in_addr(s_addr: a.v4.bigEndian)
        _ = inet_ntop(AF_INET, &v4, &buf, socklen_t(buf.count))
    }
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

// MARK: - helpers

struct ToolError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

func describe(_ e: ESPError) -> String {
    switch e {
    case .truncated: "packet truncated"
    case .malformed: "malformed packet (ciphertext not a multiple of 4 bytes)"
    case .unknownSPI: "unknown SPI (does --spi match the packet?)"
    case .replayed: "replayed sequence number"
    case .tooOld: "sequence number left of the replay window (check --seq)"
    case .authenticationFailed: "authentication failed (ICV mismatch: wrong key, salt, SPI, ESN or tampered packet)"
    case .badPadding: "bad padding (RFC 4303 §2.4)"
    case .expired: "SA expired"
    case .sequenceExhausted: "sequence number exhausted (use --esn for numbers beyond 2^32-1)"
    case .bufferTooSmall: "buffer too small"
    case .badInnerPacket: "inner packet is not a well-formed UDP datagram for this SA"
    case .policyMismatch: "inner datagram does not match the SA's selectors and policy"
    }
}

func parseUInt64(_ s: String) throws -> UInt64 {
    let v = s.hasPrefix("0x") || s.hasPrefix("0X") ? UInt64(s.dropFirst(2), radix: 16) : UInt64(s)
    guard let v else { throw ValidationError("'\(s)' is not a number (decimal or 0x-hex, 0...2^64-1)") }
    return v
}

func parseUInt32(_ s: String) throws -> UInt32 {
    guard let v = UInt32(exactly: try parseUInt64(s)) else { throw ValidationError("'\(s)' does not fit in 32 bits") }
    return v
}
