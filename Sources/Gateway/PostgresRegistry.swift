import Foundation
import HandsetCore
import Logging
import PostgresNIO

/// The PostgreSQL `RegistryStore`, for fleets: several gateway instances share one database.
///
/// Counters: `update` runs `SELECT … FOR UPDATE` on the device's row inside one transaction, applies the change and
/// writes it back before COMMIT. A second instance's `update` of the same device blocks on the row lock, then reads
/// the committed row, so it can neither accept the same uplink counter nor take the same downlink counter; the
/// gateway seals only after COMMIT returned. `skipDownlinks` is one `UPDATE … SET down_counter = down_counter + n`.
/// At rest: keys and IKE PSKs are wrapped under the KEK exactly as in SQLite (device id and slot in the AAD).
public final class PostgresRegistry: RegistryStore, @unchecked Sendable {
    let pool: PostgresBlockingPool
    let kek: KeyEncryptionKey
    private let writes = NSLock()
    private var written = 0

    static let columns = """
        id, msisdn, epoch, key, pending_epoch, pending_key, up_counter, down_counter, last_login, inner_address, \
        ike_identity, ike_psk, ike_certificate, ike_private_key
        """

    /// Connects, applies pending migrations and checks the KEK against the one the database was written with.
    public init(configuration: PostgresConnection.Configuration, kek: KeyEncryptionKey, connections: Int = 4,
                logger: Logger = Logger(label: "registry.postgres")) throws {
        pool = PostgresBlockingPool(configuration: configuration, capacity: connections, logger: logger)
        self.kek = kek
        let check = try kek.checkValue()
        let stored: Data? = try pool.withConnection { c in
            try transaction(c) {
                try PostgresSchema.migrate(c, pool: pool)
                _ = try run(c, "INSERT INTO kek_check (id, wrapped) VALUES (1, \(check)) ON CONFLICT (id) DO NOTHING")
                return try run(c, "SELECT wrapped FROM kek_check WHERE id = 1").first?.decode(Data.self)
            }
        }
        try kek.verify(checkValue: stored)
    }

    /// Closes the connections and the event loop (also done on deinit); later calls fail with `storeUnavailable`.
    public func disconnect() { pool.shutdown() }

    // MARK: Plumbing

    /// Sends without waiting. A connection runs its statements in order, so several sent together cost one round
    /// trip; each still succeeds or fails on its own.
    func send(_ c: PostgresConnection, _ q: PostgresQuery) -> EventLoopFuture<PostgresQueryResult> {
        pool.query(c, q)
    }

    @discardableResult
    func wait(_ c: PostgresConnection, _ f: EventLoopFuture<PostgresQueryResult>) throws -> PostgresQueryResult {
        let r = try pool.wait(f, on: c)
        if let n = r.metadata.rows, ["INSERT", "UPDATE", "DELETE"].contains(r.metadata.command) {
            writes.withLock { written += n }
        }
        return r
    }

    @discardableResult
    func run(_ c: PostgresConnection, _ q: PostgresQuery) throws -> PostgresQueryResult { try wait(c, send(c, q)) }

    /// One statement, its own transaction. Retried once on a fresh connection if a pooled one was dead: every
    /// caller's statement is safe to run twice (an overwrite, an increment of a use count or of skipped counters).
    @discardableResult
    func autocommit(_ q: PostgresQuery) throws -> PostgresQueryResult {
        try pool.withConnection { c in
            do { return try run(c, q) } catch { throw PostgresBlockingPool.FirstStatementFailed(underlying: error) }
        }
    }

    /// The last write and COMMIT go out together. Should the write fail, the server has aborted the transaction
    /// and answers COMMIT with ROLLBACK: the caller gets the write's error, and nothing was kept.
    func commit(_ c: PostgresConnection, after write: PostgresQuery) throws {
        let w = send(c, write), done = send(c, "COMMIT")
        do { try wait(c, w) } catch {
            _ = try? wait(c, done)
            throw error
        }
        let tag = try wait(c, done).metadata.command
        guard tag == "COMMIT" else { throw RegistryError.storeFailed("transaction ended in \(tag)") }
    }

    /// BEGIN, `body`, COMMIT; ROLLBACK on any error (best effort: a lost connection rolls back by itself).
    func transaction<T>(_ c: PostgresConnection, _ body: () throws -> T) throws -> T {
        do { try run(c, "BEGIN") } catch { throw PostgresBlockingPool.FirstStatementFailed(underlying: error) }
        do {
            let result = try body()
            try run(c, "COMMIT")
            return result
        } catch {
            if !c.isClosed { _ = try? run(c, "ROLLBACK") }
            throw error
        }
    }

    func write<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try pool.withConnection { c in try transaction(c) { try body(c) } }
    }

    func fetch(_ q: PostgresQuery) throws -> [DeviceRecord] {
        try pool.withConnection { c in
            let rows: PostgresQueryResult
            do { rows = try run(c, q) } catch { throw PostgresBlockingPool.FirstStatementFailed(underlying: error) }
            return try rows.map(record)
        }
    }

    func record(_ r: PostgresRow) throws -> DeviceRecord {
        let (id, msisdn, epoch, key, pendingEpoch, pendingKey, up, down, lastLogin, inner, ikeID, ikePSK, cert, privateKey) =
            try r.decode((Int64, String, Int64, Data, Int64, Data?, Int64, Int64, Date?, String?, String?, Data?, Data?, Data?).self)
        return try kek.record(DeviceRow(id: id, msisdn: msisdn, epoch: Int(epoch), key: key, pendingEpoch: Int(pendingEpoch),
                                        pendingKey: pendingKey, upCounter: up, downCounter: down, lastLogin: lastLogin,
                                        innerAddress: inner, ikeIdentity: ikeID, ikePSK: ikePSK, ikeCertificate: cert,
                                        ikePrivateKey: privateKey))
    }

    func insert(_ c: PostgresConnection, _ r: DeviceRow) throws {
        try run(c, """
            INSERT INTO device (\(unescaped: Self.columns)) VALUES (\(r.id), \(r.msisdn), \(Int64(r.epoch)), \(r.key), \
            \(Int64(r.pendingEpoch)), \(r.pendingKey), \(r.upCounter), \(r.downCounter), \(r.lastLogin), \(r.innerAddress), \
            \(r.ikeIdentity), \(r.ikePSK), \(r.ikeCertificate), \(r.ikePrivateKey))
            """)
    }

    func updateRow(_ r: DeviceRow) throws -> PostgresQuery {
        try """
            UPDATE device SET msisdn = \(r.msisdn), epoch = \(Int64(r.epoch)), key = \(r.key), \
            pending_epoch = \(Int64(r.pendingEpoch)), pending_key = \(r.pendingKey), up_counter = \(r.upCounter), \
            down_counter = \(r.downCounter), last_login = \(r.lastLogin), inner_address = \(r.innerAddress), \
            ike_identity = \(r.ikeIdentity), ike_psk = \(r.ikePSK), \
            ike_certificate = \(r.ikeCertificate), ike_private_key = \(r.ikePrivateKey) WHERE id = \(r.id)
            """
    }

    // MARK: RegistryStore

    @discardableResult
    public func add(_ d: DeviceRecord, pool addresses: AddressPool = .standard) throws -> DeviceRecord {
        try write { c in
            var d = d
            // Adds are serialised across instances, so two never pick the same free address.
            try run(c, "SELECT pg_advisory_xact_lock(\(PostgresSchema.addLock))")
            if let a = d.innerAddress {
                try checkInnerAddress(a)
                if try run(c, "SELECT 1 FROM device WHERE inner_address = \(a.dottedQuad)").first != nil {
                    throw RegistryError.addressInUse(a.dottedQuad)
                }
            } else {
                let taken = try run(c, "SELECT inner_address FROM device WHERE inner_address IS NOT NULL")
                let used = Set(try taken.compactMap { IPAddress(dottedQuad: try $0.decode(String.self))?.v4 })
                guard let a = addresses.first(notIn: used) else { throw RegistryError.poolExhausted }
                d.innerAddress = a
            }
            try insert(c, try kek.row(d))
            return d
        }
    }

    public func device(id: UInt64) throws -> DeviceRecord? {
        try fetch("SELECT \(unescaped: Self.columns) FROM device WHERE id = \(Int64(bitPattern: id))").first
    }
    public func device(msisdn: String) throws -> DeviceRecord? {
        try fetch("SELECT \(unescaped: Self.columns) FROM device WHERE msisdn = \(msisdn)").first
    }
    public func device(innerAddress: IPAddress) throws -> DeviceRecord? {
        try fetch("SELECT \(unescaped: Self.columns) FROM device WHERE inner_address = \(innerAddress.dottedQuad)").first
    }
    public func allDevices() throws -> [DeviceRecord] {
        try fetch("SELECT \(unescaped: Self.columns) FROM device ORDER BY id")
    }

    /// Two round trips when the device changes: BEGIN with the locking read, then the write with COMMIT.
    public func update<T>(device id: UInt64, _ change: (inout DeviceRecord) throws -> T) throws -> T? {
        try pool.withConnection { c in
            let begin = send(c, "BEGIN")
            let read = send(c, "SELECT \(unescaped: Self.columns) FROM device WHERE id = \(Int64(bitPattern: id)) FOR UPDATE")
            do { try wait(c, begin) } catch {
                _ = try? wait(c, read)
                throw PostgresBlockingPool.FirstStatementFailed(underlying: error)
            }
            do {
                guard let row = try wait(c, read).first else {
                    try run(c, "COMMIT")
                    return nil
                }
                var d = try record(row)
                let before = d
                let result = try change(&d)
                if d != before {
                    try Self.uniqueAddress(d) { try commit(c, after: try updateRow(try kek.row(d))) }
                } else {
                    try run(c, "COMMIT")
                }
                return result
            } catch {
                if !c.isClosed { _ = try? run(c, "ROLLBACK") }
                throw error
            }
        }
    }

    /// One UPDATE; a device not in the table is `RegistryError.unknownDevice`, as on SQLite.
    public func save(_ d: DeviceRecord) throws {
        let r = try Self.uniqueAddress(d) { try autocommit(try updateRow(try kek.row(d))) }
        guard r.metadata.rows ?? 0 > 0 else { throw RegistryError.unknownDevice(d.deviceID) }
    }

    /// The inner-address column's UNIQUE refusing `write` (SQLSTATE 23505 on `device_inner_address_key`) is
    /// `addressInUse`: another device holds the address (another gateway took it since it was checked). Any other
    /// failure passes through.
    static func uniqueAddress<T>(_ d: DeviceRecord, _ write: () throws -> T) throws -> T {
        do { return try write() } catch {
            if let e = error as? PSQLError, e.code == .server, e.serverInfo?[.sqlState] == "23505",
               e.serverInfo?[.constraintName] == "device_inner_address_key" {
                throw RegistryError.addressInUse(d.innerAddress?.dottedQuad ?? "?")
            }
            if case RegistryError.storeFailed(let m) = error, m.hasPrefix("23505 "), m.contains("device_inner_address_key") {
                throw RegistryError.addressInUse(d.innerAddress?.dottedQuad ?? "?")
            }
            throw error
        }
    }

    public func skipDownlinks(device: UInt64, _ n: Int64) throws {
        try autocommit("UPDATE device SET down_counter = down_counter + \(n) WHERE id = \(Int64(bitPattern: device))")
    }

    public func rowsWritten() throws -> Int { writes.withLock { written } }

    /// One upsert: `uses` counts every contact; the first one inserts it (xmax = 0 tells an insert from an update).
    public func notePeerContact(device: UInt64, peer: String) throws -> Bool {
        let r = try autocommit("""
            INSERT INTO peer_contact (device_id, peer, negotiated_at, uses) VALUES (\(Int64(bitPattern: device)), \
            \(peer), now(), 1) ON CONFLICT (device_id, peer) DO UPDATE SET uses = peer_contact.uses + 1 \
            RETURNING (xmax <> 0) AS known
            """)
        return try r.first?.decode(Bool.self) ?? false
    }

    public func forgetPeers(device: UInt64) throws {
        try autocommit("DELETE FROM peer_contact WHERE device_id = \(Int64(bitPattern: device))")
    }
}
