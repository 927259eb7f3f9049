import Foundation
import Gateway
import GRDB
@testable import HandsetCore

/// The handset's "flash": survives the client being thrown away, as a file survives a power cut.
final class Flash: @unchecked Sendable {
    var image: [UInt8]? = nil
    var failSaves = false
}

struct FlashStore: KeyStateStore {
    let flash: Flash
    mutating func load() throws(StoreError) -> KeyState {
        guard let img = flash.image else { throw .missing }
        guard let s = img.withUnsafeBytes({ KeyState.decode($0) }) else { throw .corrupt }
        return s
    }
    mutating func save(_ state: KeyState) throws(StoreError) {
        if flash.failSaves { throw .io(5) }
        var b = [UInt8](repeating: 0, count: KeyState.maxEncodedLength)
        let n = b.withUnsafeMutableBytes { state.encode(into: $0) }
        flash.image = Array(b[0..<n])
    }
}

/// The opposite party: takes one half of each fresh pair into its own data plane.
final class TestPeer: PeerNegotiator, TrustedServices, @unchecked Sendable {
    var plane = DataPlane<16, 4>()
    let address = IPAddress(192, 0, 2, 1)
    var nextSPI: UInt32 = 0x1000
    var forgotten = 0
    var establishCalls = 0
    /// Each device's pairs (handset outbound, handset inbound SPI): a login forgets that device's only.
    var pairs: [UInt64: [(UInt32, UInt32)]] = [:]
    /// Set by a test: the peer chooses the handset's address (`reshape` puts it in the transfer).
    var assignsHandsetAddress = false
    /// Lets a test make the peer answer something other than the flow asked for.
    var reshape: ((inout KDSATransfer) -> Void)?
    /// Lets a test make the negotiation fail.
    var failWith: NegotiationFailure?

    init() {
        try! plane.spd.append(SPDRule(SelectorPattern(remote: IPAddress(10, 0, 0, 0), prefix: 8), .protect(template: 1)))
    }

    func establish(device: UInt64, handset: IPAddress, selector: TrafficSelector, template: UInt16,
                   reused: Bool) -> Result<KDSATransfer, NegotiationFailure> {
        establishCalls += 1
        if let f = failWith { return .failure(f) }
        var k1 = [UInt8](repeating: 0, count: 32), k2 = k1
        for i in 0..<32 { k1[i] = UInt8.random(in: 0...255); k2[i] = UInt8.random(in: 0...255) }
        let (outSPI, inSPI) = (nextSPI, nextSPI + 1)
        nextSPI += 2
        pairs[device, default: []].append((outSPI, inSPI))
        let sel = SelectorPattern(remote: handset, prefix: 32, proto: IPProto.udp)
        func p(_ spi: UInt32, _ d: SADirection, _ salt: UInt32) -> SAParameters {
            SAParameters(spi: spi, direction: d, algorithm: .aesGCM, keyLength: 32, salt: salt, local: address,
                         selector: sel, peer: handset)
        }
        // Handset outbound = peer inbound, and the reverse.
        k1.withUnsafeBytes { _ = try! plane.sas.install(p(outSPI, .inbound, 0x0102_0304), key: $0) }
        k2.withUnsafeBytes { _ = try! plane.sas.install(p(inSPI, .outbound, 0x0506_0708), key: $0) }
        var t = k1.withUnsafeBytes { a in k2.withUnsafeBytes { b in
            KDSATransfer(requestID: 0, outboundSPI: outSPI, outboundKey: KeyBytes(a), outboundSalt: 0x0102_0304,
                         inboundSPI: inSPI, inboundKey: KeyBytes(b), inboundSalt: 0x0506_0708, peer: address,
                         prefix: 32, proto: IPProto.udp, localPort: selector.localPort, remotePort: selector.remotePort,
                         softSeconds: 0, hardSeconds: 0)
        } }
        reshape?(&t)
        return .success(t)
    }

    func forget(device: UInt64) {
        forgotten += 1
        for (outSPI, inSPI) in pairs.removeValue(forKey: device) ?? [] {
            try? plane.sas.delete(spi: outSPI, direction: .inbound)
            try? plane.sas.delete(spi: inSPI, direction: .outbound)
        }
    }

    func secret(device: UInt64, channel: UInt16, data: [UInt8]) -> [UInt8]? { Array("ack:".utf8) + data }
    /// Runs inside `fetch` before it answers (a test holds the fetch there).
    var duringFetch: (() -> Void)?
    func fetch(device: UInt64, url: String) -> (status: UInt16, body: [UInt8]) {
        duringFetch?()
        return (200, Array("fetched \(url)".utf8))
    }
}

/// A provisioned device plus a gateway on a fresh registry: a SQLite file, or a database of its own on the
/// test PostgreSQL server.
struct World {
    let dir: URL
    let store: StoreKind
    let registry: any RegistryStore
    let peer = TestPeer()
    let gateway: Gateway
    let flash = Flash()
    let deviceID: UInt64 = 0x0123_4567_89AB_CDEF
    /// The PostgreSQL database (nil on SQLite).
    let database: String?

    init(store: StoreKind = .sqlite) throws {
        self.store = store
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        database = store == .postgres ? try PostgresTestServer.shared.get().createDatabase() : nil
        registry = try Self.openStore(store, dir: dir, database: database)
        gateway = Gateway(registry: registry, negotiator: peer, services: peer)
        var key = [UInt8](repeating: 0, count: 32)
        for i in 0..<32 { key[i] = UInt8(i * 7 & 0xFF) }
        try registry.add(DeviceRecord(id: deviceID, msisdn: "+15550001", key: Data(key), innerAddress: IPAddress(10, 0, 0, 2)))
        var st = FlashStore(flash: flash)
        // (A typed-throws closure here crashes the 6.3.1 compiler in IRGen; build the key first.)
        let deviceKey = key.withUnsafeBytes { KeyBytes($0) }
        try st.save(KeyState(deviceID: deviceID, key: deviceKey))
    }

    /// Opens the world's store through the configuration factory, as the daemon does.
    static func openStore(_ store: StoreKind, dir: URL, database: String?) throws -> any RegistryStore {
        let kek = try KeyEncryptionKey.loadOrCreate(path: dir.appendingPathComponent("registry.kek").path)
        return try RegistryStoreSpec.open(try spec(store, dir: dir, database: database), kek: kek)
    }

    static func spec(_ store: StoreKind, dir: URL, database: String?) throws -> String {
        switch store {
        case .sqlite: "sqlite:" + dir.appendingPathComponent("registry.sqlite").path
        case .postgres: try PostgresTestServer.shared.get().spec(database!)
        }
    }

    /// The configuration string this world's store was opened with.
    var spec: String { (try? Self.spec(store, dir: dir, database: database)) ?? "" }

    /// A second connection to the same registry, as a second gateway process would open.
    func openAnother() throws -> any RegistryStore { try Self.openStore(store, dir: dir, database: database) }

    /// The SQLite store (tests of the file itself).
    var sqlite: DeviceRegistry { registry as! DeviceRegistry }

    /// Runs SQL behind the store's back (the same statement on both: column names differ, so give each its own).
    func rawSQL(sqlite: String, postgres: String) throws {
        switch store {
        case .sqlite:
            let db = try DatabaseQueue(path: dir.appendingPathComponent("registry.sqlite").path)
            try db.write { try $0.execute(sql: sqlite) }
        case .postgres:
            try PostgresTestServer.shared.get().psql(database!, postgres)
        }
    }

    /// Makes every device update fail inside the database, as a full disk or an I/O error would (or stops that).
    func failDeviceUpdates(_ on: Bool) throws {
        if on {
            try rawSQL(sqlite: "CREATE TRIGGER fail BEFORE UPDATE ON device BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END",
                       postgres: """
                           CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'disk I/O error'; END$$;
                           CREATE TRIGGER fail BEFORE UPDATE ON device FOR EACH ROW EXECUTE FUNCTION fail();
                           """)
        } else {
            try rawSQL(sqlite: "DROP TRIGGER fail", postgres: "DROP TRIGGER fail ON device; DROP FUNCTION fail()")
        }
    }
}

/// The registry stores the contract tests run on: PostgreSQL only where its binaries are installed.
enum StoreKind: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite, postgres
    static var all: [StoreKind] { PostgresTestServer.available ? allCases : [.sqlite] }
    var description: String { rawValue }
}

extension World {
    func handset() throws -> KeyDelegationClient<FlashStore> {
        var c = try KeyDelegationClient(store: FlashStore(flash: flash))
        c.localAddress = IPAddress(10, 0, 0, 2)
        return c
    }

    /// A handset booted and logged in against the gateway (its SA table thrown away).
    func loggedInHandset() throws -> KeyDelegationClient<FlashStore> {
        var c = try handset()
        var plane = HandsetPlane()
        c.boot(now: 0)
        exchange(&c, gateway, plane: &plane)
        return c
    }
}

typealias HandsetPlane = DataPlane<16, 4>

/// The handset's data plane with its policy: traffic to the test peer's network is protected (pushes from the
/// peer must fall within a protect rule, docs/key-delegation.md §6).
func handsetPlane() -> HandsetPlane {
    var plane = HandsetPlane()
    try! plane.spd.append(SPDRule(SelectorPattern(remote: IPAddress(192, 0, 2, 0), prefix: 24), .protect(template: 1)))
    return plane
}

extension KeyDelegationClient {
    /// Drains the outbox as byte arrays (what would go out as SMS).
    mutating func drain() -> [[UInt8]] {
        var out: [[UInt8]] = []
        while let m = outbox.pop() { out.append(m.bytes.withBytes { Array($0) }) }
        return out
    }

    mutating func deliver(_ msgs: [Downlink], plane: inout HandsetPlane, now: UInt64 = 0) -> [KDReceiveResult] {
        var results: [KDReceiveResult] = []
        for m in msgs { results.append(m.bytes.withUnsafeBytes { receive($0, now: now, plane: &plane) }) }
        return results
    }
}

/// Runs the handset and gateway against each other until both fall quiet.
func exchange(_ c: inout KeyDelegationClient<FlashStore>, _ g: Gateway, plane: inout HandsetPlane, rounds: Int = 10) {
    for _ in 0..<rounds {
        let up = c.drain()
        if up.isEmpty { return }
        for m in up { _ = c.deliver(g.handleUplink(m), plane: &plane) }
    }
}
