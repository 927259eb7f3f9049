/// One CHILD_SA key record from our charon plugin (`handset-proxy`), per the contract in the issue 15 design:
/// `key=value` lines in a fixed order. Keys are held in arrays we own so `wipe()` can overwrite them.
public struct KeyRecord: Equatable, Sendable {
    public enum Event: String, Sendable { case up, rekeyed, down }
    public enum Encryption: String, Sendable {
        case aes128gcm16, aes256gcm16, chacha20poly1305
        /// Key length without the 4-octet salt.
        public var keyLength: Int { self == .aes128gcm16 ? 16 : 32 }
    }

    public var event: Event
    public var ikeName: String
    public var childName: String
    public var ikeID: UInt32
    public var childID: UInt32
    public var initiator: Bool
    public var localID: String
    public var remoteID: String
    public var local: Endpoint
    public var remote: Endpoint
    public var encryption: Encryption
    public var tunnel: Bool
    public var esn: Bool
    /// The SPI the handset receives on, and the one it sends with.
    public var spiIn: UInt32
    public var spiOut: UInt32
    /// key || salt; empty for `down`.
    public var keyIn: [UInt8]
    public var keyOut: [UInt8]
    public var localTS: [String]
    public var remoteTS: [String]
    public var softSeconds: UInt32
    public var hardSeconds: UInt32

    public struct Endpoint: Equatable, Sendable {
        public var address: String
        public var port: UInt16
    }

    /// Overwrites the key bytes (best effort: copies made elsewhere are not ours to reach).
    public mutating func wipe() {
        for i in keyIn.indices { keyIn[i] = 0 }
        for i in keyOut.indices { keyOut[i] = 0 }
        keyIn = []
        keyOut = []
    }
}

public enum KeyRecordError: Error, Equatable, Sendable, CustomStringConvertible {
    case notUTF8
    case tooLarge(Int)
    /// Line `line` is not the key the contract puts there.
    case unexpectedKey(line: Int, expected: String, found: String)
    case missingKey(String)
    case badValue(key: String)
    case unsupportedVersion(String)
    case trailingData

    public var description: String {
        switch self {
        case .notUTF8: "record is not UTF-8"
        case .tooLarge(let n): "record of \(n) octets (at most \(KeyRecord.maxSize))"
        case .unexpectedKey(let l, let e, let f): "line \(l): expected \(e)=, found \(f.prefix(32))"
        case .missingKey(let k): "record ends before \(k)="
        case .badValue(let k): "bad value for \(k)"  // never the value: it may be a key
        case .unsupportedVersion(let v): "record version \(v.prefix(8)) (we read 1)"
        case .trailingData: "data after the last key"
        }
    }
}

extension KeyRecord {
    public static let maxSize = 4096

    /// Parses one record. The keys appear in the contract's order; key_in/key_out only when event is not down.
    public static func parse(_ bytes: [UInt8]) throws(KeyRecordError) -> KeyRecord {
        guard bytes.count <= maxSize else { throw .tooLarge(bytes.count) }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .notUTF8 }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        var cursor = FieldCursor(lines: lines)

        let v = try cursor.next("v")
        guard v == "1" else { throw .unsupportedVersion(String(v)) }
        guard let event = Event(rawValue: String(try cursor.next("event"))) else { throw .badValue(key: "event") }
        let ikeName = try cursor.name("ike_name"), childName = try cursor.name("child_name")
        let ikeID = try cursor.number("ike_id"), childID = try cursor.number("child_id")
        let initiator = try cursor.flag("initiator")
        let localID = try cursor.name("local_id"), remoteID = try cursor.name("remote_id")
        let local = try cursor.endpoint("local"), remote = try cursor.endpoint("remote")
        guard let encr = Encryption(rawValue: String(try cursor.next("encr"))) else { throw .badValue(key: "encr") }
        let mode = try cursor.next("mode")
        guard mode == "tunnel" || mode == "transport" else { throw .badValue(key: "mode") }
        let esn = try cursor.flag("esn")
        let spiIn = try cursor.spi("spi_in"), spiOut = try cursor.spi("spi_out")
        var keyIn: [UInt8] = [], keyOut: [UInt8] = []
        if event != .down {
            keyIn = try cursor.key("key_in", length: encr.keyLength + 4)
            keyOut = try cursor.key("key_out", length: encr.keyLength + 4)
        }
        let localTS = try cursor.selectors("local_ts"), remoteTS = try cursor.selectors("remote_ts")
        let soft = try cursor.number("soft"), hard = try cursor.number("hard")
        guard cursor.atEnd else {
            wipeAll(&keyIn, &keyOut)
            throw .trailingData
        }
        return KeyRecord(event: event, ikeName: ikeName, childName: childName, ikeID: ikeID, childID: childID,
                         initiator: initiator, localID: localID, remoteID: remoteID, local: local, remote: remote,
                         encryption: encr, tunnel: mode == "tunnel", esn: esn, spiIn: spiIn, spiOut: spiOut,
                         keyIn: keyIn, keyOut: keyOut, localTS: localTS, remoteTS: remoteTS,
                         softSeconds: soft, hardSeconds: hard)
    }

    static func wipeAll(_ a: inout [UInt8], _ b: inout [UInt8]) {
        for i in a.indices { a[i] = 0 }
        for i in b.indices { b[i] = 0 }
    }
}

/// Walks the record's lines in order; each read names the key it expects there.
struct FieldCursor {
    let lines: [Substring]
    var at = 0

    var atEnd: Bool { at == lines.count }

    mutating func next(_ key: String) throws(KeyRecordError) -> Substring {
        guard at < lines.count else { throw .missingKey(key) }
        let line = lines[at]
        guard let eq = line.firstIndex(of: "="), line[..<eq] == key else {
            throw .unexpectedKey(line: at + 1, expected: key, found: String(line.prefix { $0 != "=" }))
        }
        at += 1
        return line[line.index(after: eq)...]
    }

    mutating func name(_ key: String) throws(KeyRecordError) -> String {
        let v = try next(key)
        guard !v.isEmpty, v.count <= 255 else { throw .badValue(key: key) }
        return String(v)
    }

    mutating func number(_ key: String) throws(KeyRecordError) -> UInt32 {
        guard let n = UInt32(try next(key)) else { throw .badValue(key: key) }
        return n
    }

    mutating func flag(_ key: String) throws(KeyRecordError) -> Bool {
        switch try next(key) {
        case "1": return true
        case "0": return false
        default: throw .badValue(key: key)
        }
    }

    mutating func spi(_ key: String) throws(KeyRecordError) -> UInt32 {
        let v = try next(key)
        guard v.count == 8, let n = UInt32(v, radix: 16), n >= 256 else { throw .badValue(key: key) }  // 1-255 reserved (RFC 4303)
        return n
    }

    mutating func endpoint(_ key: String) throws(KeyRecordError) -> KeyRecord.Endpoint {
        let v = try next(key)
        guard let colon = v.lastIndex(of: ":"), let port = UInt16(v[v.index(after: colon)...]) else {
            throw .badValue(key: key)
        }
        var host = v[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty else { throw .badValue(key: key) }
        return .init(address: String(host), port: port)
    }

    mutating func key(_ key: String, length: Int) throws(KeyRecordError) -> [UInt8] {
        let v = try next(key).utf8
        guard v.count == 2 * length else { throw .badValue(key: key) }
        var out = [UInt8](repeating: 0, count: length)
        var i = 0
        var high: UInt8 = 0
        for (n, c) in v.enumerated() {
            guard let d = Self.hexDigit(c) else {
                for j in out.indices { out[j] = 0 }
                throw .badValue(key: key)
            }
            if n % 2 == 0 { high = d } else { out[i] = high << 4 | d; i += 1 }
        }
        return out
    }

    mutating func selectors(_ key: String) throws(KeyRecordError) -> [String] {
        let v = try next(key)
        let list = v.split(separator: ",").map { String($0) }
        guard !list.isEmpty, list.allSatisfy({ $0.contains("/") }) else { throw .badValue(key: key) }
        return list
    }

    static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }
}
