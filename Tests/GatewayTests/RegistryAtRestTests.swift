import Foundation
import Gateway
import GRDB
import Testing
@testable import HandsetCore

/// Issue 12 item 5: a copied registry alone yields no device key, and nobody but the owner can read the files.
@Suite struct RegistryAtRestTests {
    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("reg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    func mode(_ path: String) throws -> mode_t {
        var st = stat()
        try #require(stat(path, &st) == 0, "\(path)")
        return st.st_mode & 0o777
    }

    /// Every byte SQLite keeps for the registry: the file and whatever journal, WAL or shm lies beside it.
    func storedBytes(_ path: String) -> [UInt8] {
        ["", "-journal", "-wal", "-shm"].flatMap { (try? Data(contentsOf: URL(fileURLWithPath: path + $0))).map { [UInt8]($0) } ?? [] }
    }

    func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= hay.count else { return false }
        return (0...(hay.count - needle.count)).contains { hay[$0..<($0 + needle.count)].elementsEqual(needle) }
    }

    @Test func registryAndKEKFilesAreOwnerOnlyEvenWhenTheRegistryExistedWorldReadable() throws {
        let dir = try tempDir()
        let path = dir.appendingPathComponent("r.sqlite").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o644]))
        let kekPath = dir.appendingPathComponent("r.kek").path
        let reg = try DeviceRegistry(path: path, kek: try KeyEncryptionKey.loadOrCreate(path: kekPath))
        try reg.add(DeviceRecord(id: 1, msisdn: "+1", key: Data(repeating: 0x5A, count: 32)))
        #expect(try mode(path) == 0o600)
        #expect(try mode(kekPath) == 0o600)
        #expect(try Data(contentsOf: URL(fileURLWithPath: kekPath)).count == 32)
        for suffix in ["-journal", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            #expect(try mode(path + suffix) == 0o600, "\(suffix)")
        }
    }

    @Test func theDatabaseBytesHoldNeitherTheCurrentNorThePendingKey() throws {
        let w = try World()
        var c = try w.handset()
        var plane = HandsetPlane()
        c.boot(now: 0)
        exchange(&c, w.gateway, plane: &plane)
        var dev = try #require(try w.registry.device(id: w.deviceID))
        let provisioned = (0..<32).map { UInt8($0 * 7 & 0xFF) }
        let pending = [UInt8](repeating: 0xC3, count: 32)
        dev.pendingEpoch = 9
        dev.pendingKey = Data(pending)
        let ikeKey = [UInt8](repeating: 0xE5, count: 119)  // an IKE private key (v5): wrapped like the others
        dev.ikePrivateKey = Data(ikeKey)
        try w.registry.save(dev)
        let bytes = storedBytes(w.sqlite.path)
        #expect(bytes.count > 0)
        #expect(!contains(bytes, [UInt8](dev.key)))
        #expect(!contains(bytes, pending))
        #expect(!contains(bytes, ikeKey))
        #expect(try w.registry.device(id: w.deviceID)?.ikePrivateKey == Data(ikeKey))
        #expect(!contains(bytes, provisioned))  // the key before the login rotation
        // Both keys come back intact through the KEK.
        let back = try #require(try w.registry.device(id: w.deviceID))
        #expect(back.key == dev.key && back.pendingKey == Data(pending) && back.pendingEpoch == 9)
    }

    @Test func openingWithAnotherKEKFailsWithATypedError() throws {
        let dir = try tempDir()
        let path = dir.appendingPathComponent("r.sqlite").path
        do {
            let reg = try DeviceRegistry(path: path, kek: try KeyEncryptionKey.loadOrCreate(path: dir.appendingPathComponent("a.kek").path))
            try reg.add(DeviceRecord(id: 1, msisdn: "+1", key: Data(repeating: 0x5A, count: 32)))
        }
        let other = try KeyEncryptionKey.loadOrCreate(path: dir.appendingPathComponent("b.kek").path)
        #expect(throws: RegistryError.wrongKeyEncryptionKey) { try DeviceRegistry(path: path, kek: other) }
    }

    /// Each wrap takes a fresh nonce and binds the device id: a blob copied to another row does not open there.
    @Test func wrappedKeysAreFreshPerSaveAndBoundToTheirRow() throws {
        let dir = try tempDir()
        let path = dir.appendingPathComponent("r.sqlite").path
        let reg = try DeviceRegistry(path: path, kek: try KeyEncryptionKey.loadOrCreate(path: dir.appendingPathComponent("r.kek").path))
        try reg.add(DeviceRecord(id: 1, msisdn: "+1", key: Data(repeating: 0x11, count: 32)))
        try reg.add(DeviceRecord(id: 2, msisdn: "+2", key: Data(repeating: 0x22, count: 32)))
        let raw = try DatabaseQueue(path: path)
        let blob = { (id: Int) in try raw.read { try Data.fetchOne($0, sql: "SELECT key FROM device WHERE id = ?", arguments: [id]) } }
        let first = try #require(try blob(1))
        #expect(first.count == 1 + 12 + 32 + 16)
        try reg.save(try #require(try reg.device(id: 1)))
        let second = try #require(try blob(1))
        #expect(first != second && first[1..<13] != second[1..<13])  // a new nonce, same key
        try raw.write { try $0.execute(sql: "UPDATE device SET key = ? WHERE id = 2", arguments: [second]) }
        #expect(throws: RegistryError.keyUnwrapFailed(device: 2)) { try reg.device(id: 2) }
        #expect(try reg.device(id: 1)?.key == Data(repeating: 0x11, count: 32))
    }

    /// A key that does not unwrap is a registry failure at the gateway, never taken for an unknown device.
    @Test(arguments: StoreKind.all) func aKeyThatDoesNotUnwrapIsAStoreFailureNotAnUnknownDevice(store: StoreKind) throws {
        let w = try World(store: store)
        var c = try w.handset()
        c.boot(now: 0)
        let login = c.drain()[0]
        try w.rawSQL(sqlite: "UPDATE device SET key = zeroblob(61)", postgres: "UPDATE device SET key = decode(repeat('00', 61), 'hex')")
        #expect(w.gateway.handleUplink(login).isEmpty)
        #expect(w.gateway.counters.storeFailures == 1 && w.gateway.counters.unknownDevice == 0)
    }

    /// A registry written before keys were wrapped: opening it wraps them in place and leaves no clear copy.
    @Test func aRegistryWithClearKeysIsWrappedOnOpen() throws {
        let dir = try tempDir()
        let path = dir.appendingPathComponent("r.sqlite").path
        let clear = [UInt8](repeating: 0x77, count: 32), clearPending = [UInt8](repeating: 0x78, count: 32)
        do {
            let old = try DatabaseQueue(path: path)
            try old.write { db in
                try db.execute(sql: """
                    CREATE TABLE device (id INTEGER PRIMARY KEY, msisdn TEXT NOT NULL UNIQUE, epoch INTEGER NOT NULL,
                      key BLOB NOT NULL, pendingEpoch INTEGER NOT NULL, pendingKey BLOB, upCounter INTEGER NOT NULL,
                      downCounter INTEGER NOT NULL, lastLogin DATETIME);
                    CREATE TABLE peerContact (deviceID INTEGER NOT NULL, peer TEXT NOT NULL, negotiatedAt DATETIME NOT NULL,
                      uses INTEGER NOT NULL, PRIMARY KEY (deviceID, peer));
                    CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                    INSERT INTO grdb_migrations VALUES ('v1');
                    """)
                try db.execute(sql: "INSERT INTO device VALUES (7, '+7', 1, ?, 2, ?, 5, 6, NULL)", arguments: [Data(clear), Data(clearPending)])
            }
        }
        #expect(contains(storedBytes(path), clear))
        let reg = try DeviceRegistry(path: path, kek: try KeyEncryptionKey.loadOrCreate(path: dir.appendingPathComponent("r.kek").path))
        let dev = try #require(try reg.device(id: 7))
        #expect(dev.key == Data(clear) && dev.pendingKey == Data(clearPending) && dev.upCounter == 5)
        #expect(dev.innerAddress == nil)
        let bytes = storedBytes(path)
        #expect(!contains(bytes, clear) && !contains(bytes, clearPending))
    }

    @Test func aKEKFileOthersCanReadOrOfTheWrongSizeIsRefused() throws {
        let dir = try tempDir()
        let open = dir.appendingPathComponent("open.kek").path
        #expect(FileManager.default.createFile(atPath: open, contents: Data(count: 32), attributes: [.posixPermissions: 0o644]))
        #expect(throws: RegistryError.self) { try KeyEncryptionKey.load(path: open) }
        let short = dir.appendingPathComponent("short.kek").path
        #expect(FileManager.default.createFile(atPath: short, contents: Data(count: 16), attributes: [.posixPermissions: 0o600]))
        #expect(throws: RegistryError.self) { try KeyEncryptionKey.load(path: short) }
        #expect(throws: RegistryError.self) { try KeyEncryptionKey.load(path: dir.appendingPathComponent("absent.kek").path) }
        // loadOrCreate never replaces an existing file, even a refused one.
        #expect(throws: RegistryError.self) { try KeyEncryptionKey.loadOrCreate(path: short) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: short)).count == 16)
    }
}
