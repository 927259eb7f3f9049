import Foundation
import PostgresNIO

/// The PostgreSQL registry's schema, as numbered migrations applied at open.
///
/// `schema_version` holds one row per migration applied. At open, under a transaction-scoped advisory lock (so two
/// instances starting together migrate once), every migration above the highest applied is run in order, in the
/// same transaction as its row: a failed migration leaves the schema as it was. A database migrated past what this
/// gateway knows is refused (`RegistryError.schemaTooNew`) rather than written with an older idea of its rows.
/// Migrations are never edited once released; a change is a new entry at the end.
enum PostgresSchema {
    /// Advisory-lock keys (arbitrary, fixed): one for migrating, one serialising `add`.
    static let migrateLock: Int64 = 0x6873_7265_6701
    static let addLock: Int64 = 0x6873_7265_6702

    static let migrations: [(version: Int, name: String, statements: [String])] = [
        // Starts where SQLite's v4 ends: every column, keys wrapped from the first row (no clear keys to convert).
        (1, "devices, peer contacts, KEK check", [
            """
            CREATE TABLE device (
              id bigint PRIMARY KEY, msisdn text NOT NULL UNIQUE, epoch bigint NOT NULL, key bytea NOT NULL,
              pending_epoch bigint NOT NULL, pending_key bytea, up_counter bigint NOT NULL, down_counter bigint NOT NULL,
              last_login timestamptz, inner_address text UNIQUE, ike_identity text, ike_psk bytea)
            """,
            """
            CREATE TABLE peer_contact (
              device_id bigint NOT NULL, peer text NOT NULL, negotiated_at timestamptz NOT NULL, uses bigint NOT NULL,
              PRIMARY KEY (device_id, peer))
            """,
            "CREATE TABLE kek_check (id integer PRIMARY KEY, wrapped bytea NOT NULL)",
        ]),
        // SQLite's v5: X.509 per device, the private key wrapped under the KEK.
        (2, "IKE certificate and private key", [
            "ALTER TABLE device ADD COLUMN ike_certificate bytea, ADD COLUMN ike_private_key bytea",
        ]),
    ]

    static var latest: Int { migrations.last?.version ?? 0 }

    /// Runs inside the caller's transaction.
    static func migrate(_ c: PostgresConnection, pool: PostgresBlockingPool) throws {
        func run(_ q: PostgresQuery) throws -> PostgresQueryResult { try pool.wait(pool.query(c, q), on: c) }
        _ = try run("SELECT pg_advisory_xact_lock(\(migrateLock))")
        _ = try run("""
            CREATE TABLE IF NOT EXISTS schema_version (
              version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
            """)
        let current = Int(try run("SELECT coalesce(max(version), 0) FROM schema_version").first?.decode(Int32.self) ?? 0)
        guard current <= latest else { throw RegistryError.schemaTooNew(found: current, known: latest) }
        for m in migrations where m.version > current {
            for sql in m.statements { _ = try run(PostgresQuery(unsafeSQL: sql)) }
            _ = try run("INSERT INTO schema_version (version, name) VALUES (\(Int32(m.version)), \(m.name))")
        }
    }
}
