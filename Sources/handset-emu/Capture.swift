import Foundation

/// Internet-side capture: every ESP-in-UDP datagram between the handset's module and the opposite party, as pcap
/// (LINKTYPE_RAW, synthesized IPv4/UDP headers with the real loopback ports), plus Wireshark's esp_sa table
/// (one CSV row per SA) so that Wireshark/tshark can decrypt it. It also checks the wire invariants as it goes.
/// With `--server strongswan` it holds the packet gateway's public side instead (the proxy's IKE and the handset's
/// ESP, real addresses), and the keylog gets a sibling `<keylog>.ikev2_decryption_table` for the IKE_SAs.
final class Capture: @unchecked Sendable {
    private let lock = NSLock()
    private let pcap: FileHandle?
    private let keylog: FileHandle?
    /// `<keylog>.ikev2_decryption_table`, with `--server strongswan` only.
    private let ikeKeylog: FileHandle?
    private(set) var packets = 0
    /// (direction, SPI, IV) seen: with one key per SPI, a repeat would be a reused (key, nonce) pair.
    private var nonces = Set<String>()
    private(set) var nonceReuse = 0
    private var lastSeq: [UInt32: UInt32] = [:]
    private(set) var seqRegressions = 0
    private(set) var spis = Set<UInt32>()
    private var raw: [UInt8] = []
    var peerPort: UInt16 = 0

    init(pcap: String?, keylog: String?, ike: Bool = false) throws {
        self.pcap = try pcap.map { try Self.create($0) }
        self.keylog = try keylog.map { try Self.create($0) }
        self.ikeKeylog = try keylog.flatMap { path in try ike ? Self.create(path + ".ikev2_decryption_table") : nil }
        var header = [UInt8]()
        Self.le32(0xA1B2_C3D4, &header); Self.le16(2, &header); Self.le16(4, &header)
        Self.le32(0, &header); Self.le32(0, &header); Self.le32(65535, &header); Self.le32(101, &header)
        self.pcap?.write(Data(header))
    }

    /// Owner-only (0600), a file that already existed included: the keylog holds SA keys.
    static func create(_ path: String) throws -> FileHandle {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw WorldError("cannot create \(path): \(String(cString: strerror(errno)))") }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        guard fchmod(fd, 0o600) == 0 else { throw WorldError("cannot chmod \(path): \(String(cString: strerror(errno)))") }
        return handle
    }

    func packet(toPeer: Bool, esp: [UInt8], handset: sockaddr_in) {
        lock.lock()
        defer { lock.unlock() }
        account(toPeer: toPeer, esp)
        let handsetPort = UInt16(bigEndian: handset.sin_port)
        let (sport, dport) = toPeer ? (handsetPort, peerPort) : (peerPort, handsetPort)
        write(src: [127, 0, 0, 1], sport: sport, dst: [127, 0, 0, 1], dport: dport, esp)
    }

    /// A datagram on the packet gateway's public side (`--server strongswan`): the proxy's IKE and the handset's
    /// ESP as the server sees them, with their real addresses and ports.
    func wire(toServer: Bool, _ payload: [UInt8], public pub: (host: String, port: Int), server: (host: String, port: Int)) {
        guard let a = Self.octets(pub.host), let b = Self.octets(server.host) else { return }
        lock.lock()
        defer { lock.unlock() }
        let isESP = payload.count >= 16 && server.port != 500 && payload[0..<4] != [0, 0, 0, 0]
        if isESP { account(toPeer: toServer, payload) }
        if toServer {
            write(src: a, sport: UInt16(pub.port), dst: b, dport: UInt16(server.port), payload)
        } else {
            write(src: b, sport: UInt16(server.port), dst: a, dport: UInt16(pub.port), payload)
        }
    }

    /// The wire invariants' bookkeeping for one ESP packet; the caller holds the lock.
    private func account(toPeer: Bool, _ esp: [UInt8]) {
        packets += 1
        raw += esp
        guard esp.count >= 16 else { return }
        let spi = UInt32(esp[0]) << 24 | UInt32(esp[1]) << 16 | UInt32(esp[2]) << 8 | UInt32(esp[3])
        let seq = UInt32(esp[4]) << 24 | UInt32(esp[5]) << 16 | UInt32(esp[6]) << 8 | UInt32(esp[7])
        spis.insert(spi)
        let key = "\(toPeer)/\(spi)/\(esp[8..<16].map { String($0) }.joined(separator: "."))"
        if !nonces.insert(key).inserted { nonceReuse += 1 }
        if let last = lastSeq[spi], seq <= last { seqRegressions += 1 }
        lastSeq[spi] = seq
    }

    /// The highest ESP sequence number seen on the wire for `spi`: what its sender has sent on that SA so far.
    func lastSequence(spi: UInt32) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return Int(lastSeq[spi] ?? 0)
    }

    /// One pcap record: a synthesized IPv4/UDP header and the payload; the caller holds the lock.
    private func write(src: [UInt8], sport: UInt16, dst: [UInt8], dport: UInt16, _ payload: [UInt8]) {
        guard let pcap else { return }
        var ip = [UInt8](repeating: 0, count: 28)
        let total = 28 + payload.count
        ip[0] = 0x45; ip[2] = UInt8(total >> 8); ip[3] = UInt8(total & 0xFF); ip[6] = 0x40; ip[8] = 64; ip[9] = 17
        ip.replaceSubrange(12..<16, with: src)
        ip.replaceSubrange(16..<20, with: dst)
        var sum: UInt32 = 0
        for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(ip[i]) << 8 | UInt32(ip[i + 1]) }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        let ck = ~UInt16(sum)
        ip[10] = UInt8(ck >> 8); ip[11] = UInt8(ck & 0xFF)
        ip[20] = UInt8(sport >> 8); ip[21] = UInt8(sport & 0xFF); ip[22] = UInt8(dport >> 8); ip[23] = UInt8(dport & 0xFF)
        let udpLen = 8 + payload.count
        ip[24] = UInt8(udpLen >> 8); ip[25] = UInt8(udpLen & 0xFF)
        var rec = [UInt8]()
        let now = Date().timeIntervalSince1970
        Self.le32(UInt32(now), &rec); Self.le32(UInt32((now - floor(now)) * 1_000_000), &rec)
        Self.le32(UInt32(total), &rec); Self.le32(UInt32(total), &rec)
        pcap.write(Data(rec + ip + payload))
    }

    static func octets(_ host: String) -> [UInt8]? {
        let parts = host.split(separator: ".").compactMap { UInt8($0) }
        return parts.count == 4 ? parts : nil
    }

    /// One esp_sa row (Wireshark's UAT format). Keys go only to the file the user asked for.
    func sa(spi: UInt32, fromHandset: Bool, key: [UInt8], salt: UInt32) {
        lock.lock()
        defer { lock.unlock() }
        guard let keylog else { return }
        let saltBytes = [UInt8(salt >> 24), UInt8(salt >> 16 & 0xFF), UInt8(salt >> 8 & 0xFF), UInt8(salt & 0xFF)]
        let material = (key + saltBytes).map { String(format: "%02x", $0) }.joined()
        let row = "\"IPv4\",\"127.0.0.1\",\"127.0.0.1\",\"0x\(String(format: "%08x", spi))\","
            + "\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x\(material)\",\"NULL\",\"\"\n"
        keylog.write(Data(row.utf8))
    }

    /// One esp_sa row for an SA a strongSwan server negotiated (key record: key || salt), with the addresses the
    /// pcap shows. Wireshark 4.0 has no ChaCha20-Poly1305 for ESP: no row for it.
    func espSA(spi: UInt32, aesGCM: Bool, keySalt: [UInt8], src: String, dst: String) {
        lock.lock()
        defer { lock.unlock() }
        guard let keylog, aesGCM else { return }
        let row = "\"IPv4\",\"\(src)\",\"\(dst)\",\"0x\(String(format: "%08x", spi))\","
            + "\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x\(Self.hex(keySalt))\",\"NULL\",\"\"\n"
        keylog.write(Data(row.utf8))
    }

    /// One ikev2_decryption_table row (Wireshark's UAT) in the file beside the keylog, for the proxy's IKE_SAs.
    /// Algorithms Wireshark 4.0 cannot decrypt (ChaCha20-Poly1305) get no row.
    func ikeSA(spiI: UInt64, spiR: UInt64, encryption: UInt16, keySize: UInt16, integrity: UInt16,
               skEI: [UInt8], skER: [UInt8], skAI: [UInt8], skAR: [UInt8]) {
        lock.lock()
        defer { lock.unlock() }
        guard let ikeKeylog, let enc = Self.wiresharkIKEEncryption(encryption, keySize),
              let integ = Self.wiresharkIKEIntegrity(integrity) else { return }
        let row = String(format: "%016llx,%016llx,", spiI, spiR) + "\(Self.hex(skEI)),\(Self.hex(skER)),\"\(enc)\","
            + "\(Self.hex(skAI)),\(Self.hex(skAR)),\"\(integ)\"\n"
        ikeKeylog.write(Data(row.utf8))
    }

    /// Wireshark's names (packet-isakmp.c UAT values) for IANA IKEv2 transform IDs (RFC 7296 §3.3.2, RFC 5282).
    static func wiresharkIKEEncryption(_ id: UInt16, _ bits: UInt16) -> String? {
        guard [128, 192, 256].contains(bits) else { return nil }
        switch id {
        case 12: return "AES-CBC-\(bits) [RFC3602]"
        case 13: return "AES-CTR-\(bits) [RFC5930]"
        case 20: return "AES-GCM-\(bits) with 16 octet ICV [RFC5282]"
        default: return nil
        }
    }

    static func wiresharkIKEIntegrity(_ id: UInt16) -> String? {
        switch id {
        case 0: "NONE [RFC4306]"
        case 2: "HMAC_SHA1_96 [RFC2404]"
        case 12: "HMAC_SHA2_256_128 [RFC4868]"
        case 13: "HMAC_SHA2_384_192 [RFC4868]"
        case 14: "HMAC_SHA2_512_256 [RFC4868]"
        default: nil
        }
    }

    static func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

    /// Does `needle` appear anywhere on the Internet side? (It must not, for anything protected or secret.)
    func contains(_ needle: [UInt8]) -> Bool {
        lock.withLock { !needle.isEmpty && raw.contains(needle) }
    }

    var summary: (packets: Int, nonceReuse: Int, seqRegressions: Int, spis: Int) {
        lock.withLock { (packets, nonceReuse, seqRegressions, spis.count) }
    }

    func close() {
        lock.withLock {
            try? pcap?.close()
            try? keylog?.close()
            try? ikeKeylog?.close()
        }
    }

    static func le32(_ v: UInt32, _ b: inout [UInt8]) { for i in 0..<4 { b.append(UInt8(v >> (8 * UInt32(i)) & 0xFF)) } }
    static func le16(_ v: UInt16, _ b: inout [UInt8]) { b.append(UInt8(v & 0xFF)); b.append(UInt8(v >> 8)) }
}
