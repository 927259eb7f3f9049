import Foundation

/// Internet-side capture: every ESP-in-UDP datagram between the handset's module and the opposite party, as pcap
/// (LINKTYPE_RAW, synthesized IPv4/UDP headers with the real loopback ports), plus Wireshark's esp_sa table
/// (one CSV row per SA) so that Wireshark/tshark can decrypt it. It also checks the wire invariants as it goes.
final class Capture: @unchecked Sendable {
    private let lock = NSLock()
    private let pcap: FileHandle?
    private let keylog: FileHandle?
    private(set) var packets = 0
    /// (direction, SPI, IV) seen: with one key per SPI, a repeat would be a reused (key, nonce) pair.
    private var nonces = Set<String>()
    private(set) var nonceReuse = 0
    private var lastSeq: [UInt32: UInt32] = [:]
    private(set) var seqRegressions = 0
    private(set) var spis = Set<UInt32>()
    private var raw: [UInt8] = []
    var peerPort: UInt16 = 0

    init(pcap: String?, keylog: String?) throws {
        self.pcap = try pcap.map { try Self.create($0) }
        self.keylog = try keylog.map { try Self.create($0) }
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
        packets += 1
        raw += esp
        if esp.count >= 16 {
            let spi = UInt32(esp[0]) << 24 | UInt32(esp[1]) << 16 | UInt32(esp[2]) << 8 | UInt32(esp[3])
            let seq = UInt32(esp[4]) << 24 | UInt32(esp[5]) << 16 | UInt32(esp[6]) << 8 | UInt32(esp[7])
            spis.insert(spi)
            let key = "\(toPeer)/\(spi)/\(esp[8..<16].map { String($0) }.joined(separator: "."))"
            if !nonces.insert(key).inserted { nonceReuse += 1 }
            if let last = lastSeq[spi], seq <= last { seqRegressions += 1 }
            lastSeq[spi] = seq
        }
        guard let pcap else { return }
        let handsetPort = UInt16(bigEndian: handset.sin_port)
        let (sport, dport) = toPeer ? (handsetPort, peerPort) : (peerPort, handsetPort)
        var ip = [UInt8](repeating: 0, count: 28)
        let total = 28 + esp.count
        ip[0] = 0x45; ip[2] = UInt8(total >> 8); ip[3] = UInt8(total & 0xFF); ip[6] = 0x40; ip[8] = 64; ip[9] = 17
        ip[12] = 127; ip[15] = 1; ip[16] = 127; ip[19] = 1
        var sum: UInt32 = 0
        for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(ip[i]) << 8 | UInt32(ip[i + 1]) }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        let ck = ~UInt16(sum)
        ip[10] = UInt8(ck >> 8); ip[11] = UInt8(ck & 0xFF)
        ip[20] = UInt8(sport >> 8); ip[21] = UInt8(sport & 0xFF); ip[22] = UInt8(dport >> 8); ip[23] = UInt8(dport & 0xFF)
        let udpLen = 8 + esp.count
        ip[24] = UInt8(udpLen >> 8); ip[25] = UInt8(udpLen & 0xFF)
        var rec = [UInt8]()
        let now = Date().timeIntervalSince1970
        Self.le32(UInt32(now), &rec); Self.le32(UInt32((now - floor(now)) * 1_000_000), &rec)
        Self.le32(UInt32(total), &rec); Self.le32(UInt32(total), &rec)
        pcap.write(Data(rec + ip + esp))
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
        }
    }

    static func le32(_ v: UInt32, _ b: inout [UInt8]) { for i in 0..<4 { b.append(UInt8(v >> (8 * UInt32(i)) & 0xFF)) } }
    static func le16(_ v: UInt16, _ b: inout [UInt8]) { b.append(UInt8(v & 0xFF)); b.append(UInt8(v >> 8)) }
}
