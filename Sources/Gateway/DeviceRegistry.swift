import Foundation
import GRDB
import HandsetCore

/// One provisioned handset as the gateway knows it. Keys are held in clear in memory only; the registry
/// stores them wrapped.
public struct DeviceRecord: Equatable, Sendable {
    public var id: Int64  // the 64-bit device id, bit pattern preserved
    public var msisdn: String
    public var epoch: Int
    public var key: Data
    public var pendingEpoch: Int
    public var pendingKey: Data?
    public var upCounter: Int64  // last accepted from the handset
    public var downCounter: Int64  // last sent to the handset
    public var lastLogin: Date?
    /// The only handset address this device may ask SAs for; nil (a row from before addresses) may ask for none.
    public var innerAddress: IPAddress?

    public var deviceID: UInt64 { UInt64(bitPattern: id) }

    public init(id: UInt64, msisdn: String, key: Data, epoch: Int = 0, upCounter: Int64 = 0, downCounter: Int64 = 0,
                innerAddress: IPAddress? = nil) {
        self.id = Int64(bitPattern: id)
        self.msisdn = msisdn
        self.epoch = epoch
        self.key = key
        pendingEpoch = 0
        pendingKey = nil
        self.upCounter = upCounter
        self.downCounter = downCounter
        lastLogin = nil
        self.innerAddress = innerAddress
    }
}

public enum RegistryError: Error, Equatable, CustomStringConvertible {
    /// Another device already has this inner address.
    case addressInUse(String)
    /// No address given and none left in the pool.
    case poolExhausted
    /// Inner addresses are IPv4 unicast only.
    case badInnerAddress(String)
    /// A stored inner address that does not parse: the row was edited by hand.
    case corruptRow(device: UInt64)

    public var description: String {
        switch self {
        case .addressInUse(let a): "inner address \(a) is already assigned to another device"
        case .poolExhausted: "no free inner address left in the pool"
        case .badInnerAddress(let a): "\(a) is not a usable inner IPv4 address"
        case .corruptRow(let d): "registry row of device \(String(d, radix: 16)) is corrupt"
        }
    }
}

/// The row as stored.
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
        // Rows from v1 get no address: they are refused every SA until provisioned again.
        migrator.registerMigration("v2-inner-address") { db in
            try db.alter(table: "device") { t in t.add(column: "innerAddress", .text) }
            try db.create(index: "device_innerAddress", on: "device", columns: ["innerAddress"], unique: true)
        }
        try migrator.migrate(db)
    }

    /// Adds a device. Without an inner address it gets the lowest free one in `pool`; two devices never share one.
    @discardableResult
    public func add(_ d: DeviceRecord, pool: AddressPool = .standard) throws -> DeviceRecord {
        try db.write { db in
            var d = d
            if let a = d.innerAddress {
                guard !a.isV6, a.v4 != 0, a.v4 >> 24 != 127, a.v4 >> 28 < 14 else {
                    throw RegistryError.badInnerAddress(a.isV6 ? "IPv6" : a.dottedQuad)
                }
                if try Int.fetchOne(db, sql: "SELECT 1 FROM device WHERE innerAddress = ?", arguments: [a.dottedQuad]) != nil {
                    throw RegistryError.addressInUse(a.dottedQuad)
                }
            } else {
                let taken = try String.fetchAll(db, sql: "SELECT innerAddress FROM device WHERE innerAddress IS NOT NULL")
                let used = Set(taken.compactMap { IPAddress(dottedQuad: $0)?.v4 })
                guard let a = pool.first(notIn: used) else { throw RegistryError.poolExhausted }
                d.innerAddress = a
            }
            try Self.row(d).insert(db)
            return d
        }
    }

    public func device(id: UInt64) throws -> DeviceRecord? {
        try db.read { try DeviceRow.fetchOne($0, key: Int64(bitPattern: id)) }.map(Self.record)
    }
    public func device(msisdn: String) throws -> DeviceRecord? {
        try db.read { try DeviceRow.filter(Column("msisdn") == msisdn).fetchOne($0) }.map(Self.record)
    }
    public func device(innerAddress: IPAddress) throws -> DeviceRecord? {
        try db.read { try DeviceRow.filter(Column("innerAddress") == innerAddress.dottedQuad).fetchOne($0) }.map(Self.record)
    }
    public func save(_ d: DeviceRecord) throws { try db.write { try Self.row(d).update($0) } }
    public func allDevices() throws -> [DeviceRecord] { try db.read { try DeviceRow.fetchAll($0) }.map(Self.record) }

    static func row(_ d: DeviceRecord) -> DeviceRow {
        DeviceRow(id: d.id, msisdn: d.msisdn, epoch: d.epoch, key: d.key, pendingEpoch: d.pendingEpoch, pendingKey: d.pendingKey,
                  upCounter: d.upCounter, downCounter: d.downCounter, lastLogin: d.lastLogin, innerAddress: d.innerAddress?.dottedQuad)
    }

    static func record(_ r: DeviceRow) throws -> DeviceRecord {
        var d = DeviceRecord(id: UInt64(bitPattern: r.id), msisdn: r.msisdn, key: r.key, epoch: r.epoch,
                             upCounter: r.upCounter, downCounter: r.downCounter)
        d.pendingEpoch = r.pendingEpoch
        d.pendingKey = r.pendingKey
        d.lastLogin = r.lastLogin
        if let s = r.innerAddress {
            guard let a = IPAddress(dottedQuad: s) else { throw RegistryError.corruptRow(device: d.deviceID) }
            d.innerAddress = a
        }
        return d
    }

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
