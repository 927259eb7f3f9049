import Foundation
import GRDB
import HandsetCore

/// One provisioned handset as the gateway knows it. Keys are stored as the provisioning authority holds them.
public struct DeviceRecord: Codable, FetchableRecord, PersistableRecord, Equatable, Sendable {
    public static let databaseTableName = "device"
    public var id: Int64  // the 64-bit device id, bit pattern preserved
    public var msisdn: String
    public var epoch: Int
    public var key: Data
    public var pendingEpoch: Int
    public var pendingKey: Data?
    public var upCounter: Int64  // last accepted from the handset
    public var downCounter: Int64  // last sent to the handset
    public var lastLogin: Date?

    public var deviceID: UInt64 { UInt64(bitPattern: id) }

    public init(id: UInt64, msisdn: String, key: Data, epoch: Int = 0, upCounter: Int64 = 0, downCounter: Int64 = 0) {
        self.id = Int64(bitPattern: id)
        self.msisdn = msisdn
        self.epoch = epoch
        self.key = key
        pendingEpoch = 0
        pendingKey = nil
        self.upCounter = upCounter
        self.downCounter = downCounter
        lastLogin = nil
    }
}

/// The gateway's registry: devices, and the peers each device has talked to (the reusable "IKE SA" analogue).
/// SQLite through GRDB; every change is one transaction, so a crash never leaves a half-rotated key.
public final class DeviceRegistry: Sendable {
    let db: DatabaseQueue
    public let path: String

    public init(path: String) throws {
        self.path = path
        db = try DatabaseQueue(path: path)
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
        try migrator.migrate(db)
    }

    public func add(_ d: DeviceRecord) throws { try db.write { try d.insert($0) } }
    public func device(id: UInt64) throws -> DeviceRecord? {
        try db.read { try DeviceRecord.fetchOne($0, key: Int64(bitPattern: id)) }
    }
    public func device(msisdn: String) throws -> DeviceRecord? {
        try db.read { try DeviceRecord.filter(Column("msisdn") == msisdn).fetchOne($0) }
    }
    public func save(_ d: DeviceRecord) throws { try db.write { try d.update($0) } }
    public func allDevices() throws -> [DeviceRecord] { try db.read { try DeviceRecord.fetchAll($0) } }
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
}
