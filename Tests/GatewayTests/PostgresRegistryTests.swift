import Foundation
import Gateway
import NIOPosix
import Testing
@testable import HandsetCore

/// The store chosen by one configuration string, every mistake in it a typed error.
@Suite struct RegistryStoreSpecTests {
    @Test func specsParseIntoTheirStores() throws {
        #expect(try RegistryStoreSpec.parse("sqlite:/var/lib/gw/registry.sqlite") == .sqlite(path: "/var/lib/gw/registry.sqlite"))
        guard case .postgres(let p) = try RegistryStoreSpec.parse("postgres://gw@db.internal/fleet") else {
            Issue.record("not postgres"); return
        }
        #expect(p.user == "gw" && p.host == "db.internal" && p.port == 5432 && p.database == "fleet")
        #expect(p.password == .none && p.connections == 4)
        guard case .postgres(let q) = try RegistryStoreSpec.parse(
            "postgresql://gw@127.0.0.1:6543/fleet?password_file=/etc/gw/pw&connections=8") else { Issue.record("not postgres"); return }
        #expect(q.port == 6543 && q.password == .file("/etc/gw/pw") && q.connections == 8)
        guard case .postgres(let e) = try RegistryStoreSpec.parse("postgres://gw@h/d?password_env=GW_DB_PASSWORD") else {
            Issue.record("not postgres"); return
        }
        #expect(e.password == .environment("GW_DB_PASSWORD"))
    }

    @Test func badSpecsAreTypedErrors() {
        let cases: [(String, RegistrySpecError)] = [
            ("mysql://gw@h/d", .unknownScheme("mysql")),
            ("registry.sqlite", .unknownScheme("registry.sqlite")),
            ("sqlite:", .missing("the SQLite file path")),
            ("postgres://gw:secret@h/d", .passwordInSpec),
            ("postgres://h/d", .missing("the user (postgres://USER@HOST/DB)")),
            ("postgres://gw@h", .missing("the database name (postgres://USER@HOST/DB)")),
            ("postgres://gw@h/d?sslmode=require", .unknownOption("sslmode")),
            ("postgres://gw@h/d?connections=0", .badValue("connections", "0")),
            ("postgres://gw@h/d?password_file=/a&password_env=B", .badValue("password_env", "a second password source")),
        ]
        for (spec, error) in cases {
            #expect(throws: error, "\(spec)") { try RegistryStoreSpec.parse(spec) }
        }
    }

    @Test func aPasswordSourceThatIsMissingOrOpenToOthersIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let kek = try KeyEncryptionKey.loadOrCreate(path: dir.appendingPathComponent("k").path)
        #expect(throws: RegistrySpecError.passwordSource("environment variable GW_NOPE is not set")) {
            try RegistryStoreSpec.open("postgres://gw@127.0.0.1:1/d?password_env=GW_NOPE", kek: kek, environment: [:])
        }
        let open = dir.appendingPathComponent("pw").path
        #expect(FileManager.default.createFile(atPath: open, contents: Data("pw\n".utf8), attributes: [.posixPermissions: 0o644]))
        #expect(throws: RegistrySpecError.passwordSource("\(open): group or others may read it; chmod 600")) {
            try RegistryStoreSpec.open("postgres://gw@127.0.0.1:1/d?password_file=\(open)", kek: kek)
        }
        // Nothing listens on port 1: a typed unavailable error, not a crash or a hang.
        chmod(open, 0o600)
        #expect {
            try RegistryStoreSpec.open("postgres://gw@127.0.0.1:1/d?password_file=\(open)", kek: kek)
        } throws: { e in
            if case RegistryError.storeUnavailable = e { true } else { false }
        }
    }
}

/// The PostgreSQL store against a real server of its own (PostgresTestServer).
@Suite(.enabled(if: PostgresTestServer.available,
                "PostgreSQL binaries (initdb, pg_ctl under /usr/lib/postgresql/*/bin) not found: run scripts/setup"))
struct PostgresRegistryTests {
    @Test func migrationsAreRecordedOnceAndANewerSchemaIsRefused() throws {
        let w = try World(store: .postgres)
        let server = try PostgresTestServer.shared.get()
        let db = try #require(w.database)
        #expect(try server.psql(db, "SELECT string_agg(version || ':' || name, ',' ORDER BY version) FROM schema_version")
                == "1:devices, peer contacts, KEK check,2:IKE certificate and private key")
        _ = try w.openAnother()  // a second open finds nothing to do
        #expect(try server.psql(db, "SELECT count(*) FROM schema_version") == "2")
        try server.psql(db, "INSERT INTO schema_version (version, name) VALUES (3, 'from a newer gateway')")
        #expect(throws: RegistryError.schemaTooNew(found: 3, known: 2)) { try w.openAnother() }
    }

    /// Instances starting together on an empty database: the advisory lock lets one migrate, the others find it done.
    @Test func instancesOpeningAnEmptyDatabaseTogetherMigrateItOnce() throws {
        let server = try PostgresTestServer.shared.get()
        let db = try server.createDatabase()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pgm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let kek = try KeyEncryptionKey.loadOrCreate(path: dir.appendingPathComponent("k").path)
        let opened = Outcome()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            if (try? RegistryStoreSpec.open(server.spec(db, connections: 1), kek: kek)) != nil { opened.add(1) }
        }
        #expect(opened.seen.count == 4)
        #expect(try server.psql(db, "SELECT count(*) || ' ' || count(DISTINCT version) FROM schema_version") == "2 2")
        #expect(try server.psql(db, "SELECT count(*) FROM kek_check") == "1")
    }

    /// Every session of the gateway is killed server-side while it sits idle in the pool (a failover, an
    /// operator's pg_terminate_backend): the next calls redial and succeed, and the gateway sees no failure.
    @Test func sessionsKilledWhileIdleAreReplacedUnseen() throws {
        let w = try World(store: .postgres)
        let server = try PostgresTestServer.shared.get()
        let start = try #require(try w.registry.device(id: w.deviceID)).downCounter
        #expect(w.gateway.deleteSA(device: w.deviceID, outboundSPI: 1, inboundSPI: 1).count == 1)
        let killed = try server.psql(w.database!, """
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
            """)
        #expect(Int(killed) ?? 0 >= 1)
        #expect(w.gateway.deleteSA(device: w.deviceID, outboundSPI: 2, inboundSPI: 2).count == 1)
        #expect(try w.registry.notePeerContact(device: w.deviceID, peer: "192.0.2.9") == false)
        #expect(w.gateway.counters.storeFailures == 0)
        #expect(try w.registry.device(id: w.deviceID)?.downCounter == start + 2)
    }

    /// The server ends the session between an update's locking read and its write (a restart, a failover): the
    /// update fails typed at once, nothing of it is kept, and the next one works. Issue 18's hang: the write went
    /// to a connection PostgresNIO had already torn down, which never completes such a query, and the caller
    /// (a device worker) waited for ever.
    @Test func aSessionEndedInsideAnUpdateFailsItTypedNotForever() throws {
        let w = try World(store: .postgres)
        let server = try PostgresTestServer.shared.get()
        let db = try #require(w.database)
        let registry = w.registry, id = w.deviceID
        let start = try #require(try registry.device(id: id)).downCounter
        let outcome = Eventually<Result<Int64?, Error>>()
        let began = Date()
        Thread.detachNewThread {
            outcome.set(Result {
                try registry.update(device: id) { d -> Int64 in
                    try server.psql(db, """
                        SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                        WHERE datname = current_database() AND pid <> pg_backend_pid()
                        """)
                    Thread.sleep(forTimeInterval: 0.5)  // the client has seen its connection close by now
                    d.downCounter += 1
                    return d.downCounter
                }
            })
        }
        // Bounded here too: before the fix this waited for ever.
        guard let result = outcome.wait(seconds: 20) else {
            Issue.record("the update did not return within 20 s: it hangs on a dead connection")
            return
        }
        #expect(Date().timeIntervalSince(began) < 5)  // failed at once, not after the pool's 10 s bound
        #expect {
            try result.get()
        } throws: { e in
            if case RegistryError.storeUnavailable = e { true } else { false }
        }
        #expect(try registry.device(id: id)?.downCounter == start)
        #expect(try registry.update(device: id) { d -> Int64 in d.downCounter += 1; return d.downCounter } == start + 1)
    }

    /// The store blocks its caller: called on a NIO event loop it refuses at once rather than risk a deadlock.
    @Test func aCallFromAnEventLoopIsRefusedNotDeadlocked() throws {
        let w = try World(store: .postgres)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let registry = w.registry
        let id = w.deviceID
        let outcome = try group.next().submit { () -> String in
            do { return "read \(try registry.device(id: id) != nil)" } catch { return "\(error)" }
        }.wait()
        #expect(outcome.contains("registry called from a NIO event loop"))
        #expect(try w.registry.device(id: w.deviceID) != nil)  // and from an ordinary thread it works
    }

    /// PostgreSQL keeps rows, WAL and freed pages in files we can read: no key is in any of them in clear.
    @Test func noFileOfTheDataDirectoryHoldsAKeyInClear() throws {
        let w = try World(store: .postgres)
        var c = try w.handset()
        var plane = HandsetPlane()
        c.boot(now: 0)
        exchange(&c, w.gateway, plane: &plane)  // a login rotation: a new key, first pending, then current
        var dev = try #require(try w.registry.device(id: w.deviceID))
        let pending = [UInt8](repeating: 0xC3, count: 32), psk = [UInt8](repeating: 0xA7, count: 32)
        dev.pendingEpoch = 9
        dev.pendingKey = Data(pending)
        dev.ikePSK = Data(psk)
        let ikeKey = [UInt8](repeating: 0xE5, count: 119)  // an IKE private key (migration 2): wrapped like the PSK
        dev.ikePrivateKey = Data(ikeKey)
        try w.registry.save(dev)
        let server = try PostgresTestServer.shared.get()
        try server.psql(w.database!, "CHECKPOINT")
        let provisioned = (0..<32).map { UInt8($0 * 7 & 0xFF) }
        var scanned = 0
        for path in FileManager.default.subpaths(atPath: server.data) ?? [] {
            guard let bytes = FileManager.default.contents(atPath: server.data + "/" + path) else { continue }
            scanned += bytes.count
            for secret in [[UInt8](dev.key), pending, psk, ikeKey, provisioned] {
                #expect(!Self.contains(bytes, secret), "\(path)")
            }
        }
        #expect(scanned > 1_000_000)
        #expect(try w.registry.device(id: w.deviceID) == dev)
    }

    static func contains(_ hay: Data, _ needle: [UInt8]) -> Bool {
        hay.range(of: Data(needle)) != nil
    }

    /// The server stops mid-run: calls fail typed and the gateway answers nothing; once it is back, the same
    /// gateway and store carry on, and no downlink counter is used twice across the outage.
    @Test func aRestartedServerIsPickedUpWithoutRestartingTheGateway() throws {
        let server = try PostgresTestServer()
        defer { server.destroy() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pgr-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let kek = try KeyEncryptionKey.loadOrCreate(path: dir.appendingPathComponent("k").path)
        let store = try RegistryStoreSpec.open(server.spec(try server.createDatabase(), connections: 2), kek: kek)
        let gateway = Gateway(registry: store, negotiator: TestPeer())
        try store.add(DeviceRecord(id: 5, msisdn: "+5", key: Data(repeating: 5, count: 32)))
        var counters: [UInt64] = []
        func delete(_ n: Int) -> Int {
            let sent = gateway.deleteSA(device: 5, outboundSPI: UInt32(n), inboundSPI: UInt32(n))
            counters += sent.compactMap { d in d.bytes.withUnsafeBytes { KDHeader.parse($0, direction: .down) }?.counter }
            return sent.count
        }
        #expect((0..<5).map(delete) == [1, 1, 1, 1, 1])

        try server.stop()
        let began = Date()
        #expect {
            try store.device(id: 5)
        } throws: { e in
            if case RegistryError.storeUnavailable = e { true } else { false }
        }
        #expect(delete(5) == 0)
        #expect(gateway.counters.storeFailures == 1)
        #expect(Date().timeIntervalSince(began) < 5)  // fails fast while down

        try server.start()
        #expect((6..<11).map(delete) == [1, 1, 1, 1, 1])
        #expect(try store.device(id: 5)?.downCounter == 10)
        #expect(counters == Array(1...10))
        store.disconnect()  // a drain: the store lets go, and says so if called again
        #expect {
            try store.device(id: 5)
        } throws: { e in
            if case RegistryError.storeUnavailable = e { true } else { false }
        }
    }
}

/// Two gateways, each with its own connection(s) to one registry, take downlink counters for one device from
/// several threads at once: every sealed downlink's counter, read off the wire, is distinct. Prints the rate.
@Suite struct RegistryCounterRaceTests {
    @Test(arguments: StoreKind.all) func twoGatewaysHammeringOneDeviceNeverShareACounter(store: StoreKind) throws {
        let w = try World(store: store)
        let other = Gateway(registry: try w.openAnother(), negotiator: TestPeer())
        let start = try #require(try w.registry.device(id: w.deviceID)).downCounter
        // REGISTRY_RACE_PER_THREAD makes a longer run for measuring (docs/registry.md).
        let threads = 8, perThread = ProcessInfo.processInfo.environment["REGISTRY_RACE_PER_THREAD"].flatMap { Int($0) } ?? 60
        let seen = Outcome()
        let began = Date()
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let g = t % 2 == 0 ? w.gateway : other
            for n in 0..<perThread {
                for d in g.deleteSA(device: w.deviceID, outboundSPI: UInt32(n), inboundSPI: UInt32(t)) {
                    seen.add(d.bytes.withUnsafeBytes { KDHeader.parse($0, direction: .down) }?.counter ?? 0)
                }
            }
        }
        let seconds = Date().timeIntervalSince(began)
        let total = threads * perThread
        #expect(seen.seen.count == total)
        #expect(Set(seen.seen).count == total && !seen.seen.contains(0))
        #expect(try w.registry.device(id: w.deviceID)?.downCounter == start + Int64(total))
        #expect(w.gateway.counters.storeFailures == 0 && other.counters.storeFailures == 0)
        print("counter race [\(store)]: \(total) counters by 2 gateways x \(threads / 2) threads in "
              + "\(String(format: "%.2f", seconds)) s = \(Int(Double(total) / seconds)) counter-takes/s")
    }
}

/// A value another thread sets once, waited for with a bound.
final class Eventually<T>: @unchecked Sendable {
    private let cond = NSCondition()
    private var value: T?
    func set(_ v: T) { cond.withLock { value = v; cond.broadcast() } }
    func wait(seconds: Double) -> T? {
        let deadline = Date().addingTimeInterval(seconds)
        return cond.withLock {
            while value == nil, cond.wait(until: deadline) {}
            return value
        }
    }
}
