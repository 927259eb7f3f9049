import Foundation
import GRDB
import HandsetCore

/// The row as stored: `key` and `pendingKey` wrapped (KeyEncryptionKey.wrap).
struct DeviceRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "device"
    var id: Int64
    var msisdn: String
    var epoch: Int
    var key: Data
    var pendingEpoch: Int
    var pendingKey: Data?
    var upCounter: Int64
    var downCounter: Int64
    var lastLogin: Date?
    var innerAddress: String?
    var ikeIdentity: String?
    var ikePSK: Data?
    var ikeCertificate: Data?
    var ikePrivateKey: Data?
}

/// The gateway's registry: devices, and the peers each device has talked to (the reusable "IKE SA" analogue).
/// The SQLite `RegistryStore` (the embedded default), through GRDB; every change is one transaction, so a crash
/// never leaves a half-rotated key.
/// At rest: the file (and its journal) is 0600, device keys are wrapped under `kek`, which lives outside the
/// database, and deleted content is overwritten (secure_delete), so a copied file alone yields no key.
public final class DeviceRegistry: Sendable {
    let db: DatabaseQueue
    let kek: KeyEncryptionKey
    public let path: String

    public init(path: String, kek: KeyEncryptionKey) throws {
        self.path = path
        self.kek = kek
        // Created 0600 before SQLite opens it; SQLite gives its journal and WAL files the same mode.
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RegistryError.registryFile(path: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        fchmod(fd, 0o600)
        close(fd)
        for suffix in ["-journal", "-wal", "-shm"] { chmod(path + suffix, 0o600) }
        var config = Configuration()
        // WAL: a commit appends to one file and flushes it once, where the rollback journal flushes two files and
        // deletes one. synchronous=FULL, not the NORMAL GRDB's own WAL setting picks: a commit lost at power-off
        // would forget a spent counter, and the gateway would seal under that nonce again.
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
            guard try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") == "wal" else {
                throw RegistryError.registryFile(path: path, reason: "cannot switch to WAL")
            }
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        // Another process on the same file (a second gateway) waits its turn rather than failing at once.
        config.busyMode = .timeout(5)
        db = try DatabaseQueue(path: path, configuration: config)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "device") { t in
                t.column("id", .integer).primaryKey()
                t.column("msisdn", .text).notNull().unique()
                t.column("epoch", .integer).notNull()
                t.column("key", .blob).notNull()
                t.column("pendingEpoch", .integer).notNull()
                t.column("pendingKey", .blob)
                t.column("upCounter", .integer).notNull()
                t.column("downCounter", .integer).notNull()
                t.column("lastLogin", .datetime)
            }
            try db.create(table: "peerContact") { t in
                t.column("deviceID", .integer).notNull()
                t.column("peer", .text).notNull()
                t.column("negotiatedAt", .datetime).notNull()
                t.column("uses", .integer).notNull()
                t.primaryKey(["deviceID", "peer"])
            }
        }
        // Rows from v1 get no address: they are refused every SA until provisioned again.
        migrator.registerMigration("v2-inner-address") { db in
            try db.alter(table: "device") { t in t.add(column: "innerAddress", .text) }
            try db.create(index: "device_innerAddress", on: "device", columns: ["innerAddress"], unique: true)
        }
        // Keys stored in clear until v2 are wrapped in place; a check value tells a wrong KEK at open.
        migrator.registerMigration("v3-wrapped-keys") { db in
            try db.create(table: "kekCheck") { t in
                t.column("id", .integer).primaryKey()
                t.column("wrapped", .blob).notNull()
            }
            for row in try Row.fetchAll(db, sql: "SELECT id, key, pendingKey FROM device") {
                let id: Int64 = row["id"]
                let device = UInt64(bitPattern: id)
                let key = try kek.wrap(row["key"], deviceID: device, slot: .current)
                let pending = try (row["pendingKey"] as Data?).map { try kek.wrap($0, deviceID: device, slot: .pending) }
                try db.execute(sql: "UPDATE device SET key = ?, pendingKey = ? WHERE id = ?", arguments: [key, pending, id])
            }
            try db.execute(sql: "INSERT INTO kekCheck (id, wrapped) VALUES (1, ?)",
                           arguments: [try kek.checkValue()])
        }
        // Per-device IKE identity and PSK for the proxy charon (issue 15); the PSK is wrapped like the keys.
        migrator.registerMigration("v4-ike-credentials") { db in
            try db.alter(table: "device") { t in
                t.add(column: "ikeIdentity", .text)
                t.add(column: "ikePSK", .blob)
            }
        }
        // X.509 per device: the certificate in clear (public), the private key wrapped under the KEK.
        migrator.registerMigration("v5-ike-certificate") { db in
            try db.alter(table: "device") { t in
                t.add(column: "ikeCertificate", .blob)
                t.add(column: "ikePrivateKey", .blob)
            }
        }
        let before = try db.read { try migrator.appliedIdentifiers($0) }
        try migrator.migrate(db)
        // A migration rewrites rows into the WAL; the main file keeps the old pages (clear keys before v3) until a
        // checkpoint, so one runs now rather than whenever SQLite's auto-checkpoint comes.
        if try db.read({ try migrator.appliedIdentifiers($0) }) != before {
            _ = try db.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        }
        try kek.verify(checkValue: try db.read { try Data.fetchOne($0, sql: "SELECT wrapped FROM kekCheck WHERE id = 1") })
    }

    /// Adds a device. Without an inner address it gets the lowest free one in `pool`; two devices never share one.
    @discardableResult
    public func add(_ d: DeviceRecord, pool: AddressPool = .standard) throws -> DeviceRecord {
        try db.write { db in
            var d = d
            if let a = d.innerAddress {
                try checkInnerAddress(a)
                if try Int.fetchOne(db, sql: "SELECT 1 FROM device WHERE innerAddress = ?", arguments: [a.dottedQuad]) != nil {
                    throw RegistryError.addressInUse(a.dottedQuad)
                }
            } else {
                let taken = try String.fetchAll(db, sql: "SELECT innerAddress FROM device WHERE innerAddress IS NOT NULL")
                let used = Set(taken.compactMap { IPAddress(dottedQuad: $0)?.v4 })
                guard let a = pool.first(notIn: used) else { throw RegistryError.poolExhausted }
                d.innerAddress = a
            }
            try row(d).insert(db)
            return d
        }
    }

    public func device(id: UInt64) throws -> DeviceRecord? {
        try db.read { try DeviceRow.fetchOne($0, key: Int64(bitPattern: id)) }.map(record)
    }
    public func device(msisdn: String) throws -> DeviceRecord? {
        try db.read { try DeviceRow.filter(Column("msisdn") == msisdn).fetchOne($0) }.map(record)
    }
    public func device(innerAddress: IPAddress) throws -> DeviceRecord? {
        try db.read { try DeviceRow.filter(Column("innerAddress") == innerAddress.dottedQuad).fetchOne($0) }.map(record)
    }
    /// Reads a device, lets `change` edit it, and writes it back if it changed, in one immediate transaction: two
    /// gateway processes sharing this file never both accept one counter nor both spend one. Nil: unknown device.
    public func update<T>(device id: UInt64, _ change: (inout DeviceRecord) throws -> T) throws -> T? {
        try db.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.immediate) {
                guard let stored = try DeviceRow.fetchOne(db, key: Int64(bitPattern: id)) else { return .commit }
                var d = try record(stored)
                let before = d
                result = try change(&d)
                if d != before { try Self.uniqueAddress(d) { try row(d).update(db) } }
                return .commit
            }
            return result
        }
    }

    public func save(_ d: DeviceRecord) throws {
        let r = try row(d)
        do { try Self.uniqueAddress(d) { try db.write { try r.update($0) } } } catch RecordError.recordNotFound {
            throw RegistryError.unknownDevice(d.deviceID)
        }
    }

    /// The inner-address column's UNIQUE refusing `write` is `addressInUse`: another device holds the address
    /// (a gateway sharing the file took it since it was checked). Any other failure passes through.
    static func uniqueAddress<T>(_ d: DeviceRecord, _ write: () throws -> T) throws -> T {
        do { return try write() } catch let e as DatabaseError
            where e.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE && (e.message ?? "").contains("device.innerAddress") {
            throw RegistryError.addressInUse(d.innerAddress?.dottedQuad ?? "?")
        }
    }
    public func allDevices() throws -> [DeviceRecord] { try db.read { try DeviceRow.fetchAll($0) }.map(record) }

    func row(_ d: DeviceRecord) throws(RegistryError) -> DeviceRow { try kek.row(d) }
    func record(_ r: DeviceRow) throws(RegistryError) -> DeviceRecord { try kek.record(r) }

    /// Moves the device's sent counter on by `n`: all that `n` downlinks lost on the way leave behind at the gateway
    /// (the torture fault `downlink-blackout`). One statement, so it never undoes a concurrent write.
    public func skipDownlinks(device: UInt64, _ n: Int64) throws {
        try db.write {
            try $0.execute(sql: "UPDATE device SET downCounter = downCounter + ? WHERE id = ?",
                           arguments: [n, Int64(bitPattern: device)])
        }
    }

    /// Rows written through this registry since it was opened (SQLite's total_changes): tests use it to show that
    /// refused messages write nothing.
    public func rowsWritten() throws -> Int { try db.read { $0.totalChangesCount } }

    /// Records a contact with `peer`; returns true when it was already known (the negotiation is reused).
    public func notePeerContact(device: UInt64, peer: String) throws -> Bool {
        try db.write { db in
            let id = Int64(bitPattern: device)
            let known = try Int.fetchOne(db, sql: "SELECT uses FROM peerContact WHERE deviceID = ? AND peer = ?",
                                         arguments: [id, peer]) != nil
            if known {
                try db.execute(sql: "UPDATE peerContact SET uses = uses + 1 WHERE deviceID = ? AND peer = ?", arguments: [id, peer])
            } else {
                try db.execute(sql: "INSERT INTO peerContact (deviceID, peer, negotiatedAt, uses) VALUES (?, ?, ?, 1)",
                               arguments: [id, peer, Date()])
            }
            return known
        }
    }

    public func forgetPeers(device: UInt64) throws {
        try db.write { try $0.execute(sql: "DELETE FROM peerContact WHERE deviceID = ?", arguments: [Int64(bitPattern: device)]) }
    }

    /// Closes the database at shutdown (after the last write); every later call fails.
    public func closeDatabase() throws { try db.close() }
}
