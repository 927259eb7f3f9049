/// One IKE_SA's keys from our charon plugin, sent only when the proxy's strongswan.conf says
/// `charon.plugins.handset-proxy.ike_keys = yes` (a Wireshark keylog was asked for; docs/ike-proxy.md).
/// Algorithms are IANA IKEv2 transform IDs (RFC 7296 §3.3.2), which are also strongSwan's enum values.
public struct IKEKeyRecord: Equatable, Sendable {
    public var ikeName: String
    public var ikeID: UInt32
    public var spiI: UInt64
    public var spiR: UInt64
    /// Transform type 1 ID (12 AES-CBC, 20 AES-GCM-16, 28 ChaCha20-Poly1305) and key size in bits.
    public var encryption: UInt16
    public var encryptionKeySize: UInt16
    /// Transform type 3 ID (12 HMAC-SHA2-256-128, ...), 0 with an AEAD.
    public var integrity: UInt16
    public var skEI: [UInt8], skER: [UInt8], skAI: [UInt8], skAR: [UInt8]

    /// A record of this kind starts with these lines.
    public static let prefix = Array("v=1\nevent=ike_keys\n".utf8)

    public static func parse(_ bytes: [UInt8]) throws(KeyRecordError) -> IKEKeyRecord {
        guard bytes.count <= KeyRecord.maxSize else { throw .tooLarge(bytes.count) }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .notUTF8 }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        var cursor = FieldCursor(lines: lines)
        guard try cursor.next("v") == "1" else { throw .unsupportedVersion("?") }
        guard try cursor.next("event") == "ike_keys" else { throw .badValue(key: "event") }
        let name = try cursor.name("ike_name"), id = try cursor.number("ike_id")
        guard let spiI = UInt64(try cursor.next("spi_i"), radix: 16), let spiR = UInt64(try cursor.next("spi_r"), radix: 16) else {
            throw .badValue(key: "spi_i")
        }
        let encr = try cursor.number("encr"), size = try cursor.number("encr_keysize"), integ = try cursor.number("integ")
        guard encr <= UInt16.max, size <= UInt16.max, integ <= UInt16.max else { throw .badValue(key: "encr") }
        var r = IKEKeyRecord(ikeName: name, ikeID: id, spiI: spiI, spiR: spiR, encryption: UInt16(encr),
                             encryptionKeySize: UInt16(size), integrity: UInt16(integ), skEI: [], skER: [], skAI: [], skAR: [])
        do throws(KeyRecordError) {
            r.skEI = try cursor.hex("sk_ei"); r.skER = try cursor.hex("sk_er")
            r.skAI = try cursor.hex("sk_ai"); r.skAR = try cursor.hex("sk_ar")
            guard cursor.atEnd else { throw KeyRecordError.trailingData }
        } catch {
            r.wipe()
            throw error
        }
        return r
    }

    public mutating func wipe() {
        for i in skEI.indices { skEI[i] = 0 }
        for i in skER.indices { skER[i] = 0 }
        for i in skAI.indices { skAI[i] = 0 }
        for i in skAR.indices { skAR[i] = 0 }
        skEI = []; skER = []; skAI = []; skAR = []
    }
}

extension FieldCursor {
    /// A hex value of any even length up to 128 octets (SK_e/SK_a of the IKE PRFs and ciphers); may be empty.
    mutating func hex(_ key: String) throws(KeyRecordError) -> [UInt8] {
        let v = try next(key)
        guard v.utf8.count % 2 == 0, v.utf8.count <= 256 else { throw .badValue(key: key) }
        var copy = self
        copy.at -= 1
        let out = try copy.key(key, length: v.utf8.count / 2)
        return out
    }
}
