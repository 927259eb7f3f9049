import Foundation
import Logging
import PostgresNIO

/// A few PostgreSQL connections used from the gateway's synchronous call sites.
///
/// The bridge: the connections live on an event loop group of their own, and callers block on futures from their
/// own (non-NIO) threads. A caller never runs on that group, so a blocked caller cannot starve the loop its answer
/// comes from; a call from any NIO event loop is refused rather than risk that deadlock. Every wait is bounded.
/// A connection that failed is dropped and the next call dials afresh, so a restarted server is picked up without
/// restarting the gateway; while it is down calls fail fast with `RegistryError.storeUnavailable`.
final class PostgresBlockingPool: @unchecked Sendable {
    let configuration: PostgresConnection.Configuration
    let group: MultiThreadedEventLoopGroup
    let capacity: Int
    let timeout: TimeAmount
    let logger: Logger
    private let cond = NSCondition()
    private var idle: [PostgresConnection] = []
    private var live = 0
    private var closed = false
    private var nextID = 0

    init(configuration: PostgresConnection.Configuration, capacity: Int, timeout: TimeAmount = .seconds(10),
         logger: Logger = Logger(label: "registry.postgres")) {
        var configuration = configuration
        configuration.options.connectTimeout = .seconds(3)
        // Server-side bounds below the client's own: a row lock waited on too long is a clean error (55P03), and
        // a client that vanished mid-transaction (a partition, not a crash: that closes the socket) frees its rows.
        configuration.options.additionalStartupParameters += [
            ("lock_timeout", "5s"), ("idle_in_transaction_session_timeout", "15s"),
        ]
        self.configuration = configuration
        self.capacity = max(1, capacity)
        self.timeout = timeout
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    deinit { shutdown() }

    /// Closes every connection and stops the loop; later calls fail with `storeUnavailable`.
    func shutdown() {
        let conns: [PostgresConnection] = cond.withLock {
            defer { closed = true; idle = [] }
            return closed ? [] : idle
        }
        // Waiting is only safe off the group's own threads.
        guard MultiThreadedEventLoopGroup.currentEventLoop == nil else {
            group.shutdownGracefully { _ in }
            return
        }
        for c in conns { try? (c.close() as EventLoopFuture<Void>).wait() }
        try? group.syncShutdownGracefully()
    }

    /// Thrown by a body when its first statement failed, before anything could have reached the database: the
    /// call may then be retried on a fresh connection.
    struct FirstStatementFailed: Error { let underlying: Error }

    /// Runs `body` on a connection of its own for the call. Errors from the database come out typed. A pooled
    /// connection found dead on its first statement (the server restarted while it sat idle) is replaced once,
    /// along with every other idle one.
    func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        guard MultiThreadedEventLoopGroup.currentEventLoop == nil else {
            throw RegistryError.storeFailed("registry called from a NIO event loop: it blocks, call it from another thread")
        }
        var (conn, reused) = try checkOut()
        while true {
            do {
                let result = try body(conn)
                checkIn(conn, healthy: true)
                return result
            } catch let e as FirstStatementFailed where reused && Self.isLinkFailure(e.underlying) && !(e.underlying is NoAnswer) {
                checkIn(conn, healthy: false)
                dropIdle()
                (conn, reused) = try checkOut()
            } catch {
                let underlying = (error as? FirstStatementFailed)?.underlying ?? error
                // A refusal, a bad row or the caller's own error leaves the session usable (the caller rolled
                // back); a lost link drops it.
                checkIn(conn, healthy: !conn.isClosed && !Self.isLinkFailure(underlying))
                throw Self.typed(underlying)
            }
        }
    }

    /// Sends `query` on the connection's event loop, or fails at once with `ChannelError.ioOnClosedChannel` if
    /// the connection has closed. PostgresNIO drops a query written after the channel's handlers were removed
    /// (the server went away under it) without ever completing it; checked on the loop, the channel cannot close
    /// between the check and the write.
    func query(_ conn: PostgresConnection, _ query: PostgresQuery) -> EventLoopFuture<PostgresQueryResult> {
        conn.eventLoop.flatSubmit { [logger] in
            conn.isClosed ? conn.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) : conn.query(query, logger: logger)
        }
    }

    /// The wait gave up: PostgreSQL did not answer within the pool's timeout (the connection is then closed).
    struct NoAnswer: Error, CustomStringConvertible {
        let timeout: TimeAmount
        var description: String { "no answer from PostgreSQL within \(timeout.nanoseconds / 1_000_000) ms" }
    }

    /// Waits for `future` at most `timeout`; on expiry the wait fails with `NoAnswer` and the connection is closed.
    /// The bound is on a promise of our own: it holds even if the query's own promise is never completed.
    func wait<T: Sendable>(_ future: EventLoopFuture<T>, on conn: PostgresConnection) throws -> T {
        let bounded = future.eventLoop.makePromise(of: T.self)
        future.cascade(to: bounded)  // whichever completes it first wins; the later one is ignored
        let timer = future.eventLoop.scheduleTask(in: timeout) { [timeout] in
            bounded.fail(NoAnswer(timeout: timeout))
            Self.closeSoon(conn)
        }
        defer { timer.cancel() }
        return try bounded.futureResult.wait()
    }

    private func dropIdle() {
        let stale: [PostgresConnection] = cond.withLock {
            defer { live -= idle.count; idle = []; cond.broadcast() }
            return idle
        }
        for c in stale { Self.closeSoon(c) }
    }

    private func checkOut() throws -> (PostgresConnection, reused: Bool) {
        let deadline = Date().addingTimeInterval(Double(timeout.nanoseconds) / 1e9)
        cond.lock()
        while true {
            if closed { cond.unlock(); throw RegistryError.storeUnavailable("registry closed") }
            if let c = idle.popLast() {
                if c.isClosed { live -= 1; continue }
                cond.unlock()
                return (c, true)
            }
            if live < capacity { break }
            if !cond.wait(until: deadline) {
                cond.unlock()
                throw RegistryError.storeUnavailable("all \(capacity) connections busy for \(timeout)")
            }
        }
        live += 1
        nextID += 1
        let id = nextID
        cond.unlock()
        do {
            return (try PostgresConnection.connect(on: group.next(), configuration: configuration, id: id, logger: logger).wait(), false)
        } catch {
            cond.withLock { live -= 1; cond.signal() }
            let typed = Self.typed(error)
            throw typed is RegistryError ? typed : RegistryError.storeUnavailable("\(error)")
        }
    }

    private func checkIn(_ conn: PostgresConnection, healthy: Bool) {
        let keep = cond.withLock { () -> Bool in
            let keep = healthy && !closed && !conn.isClosed
            if keep { idle.append(conn) } else { live -= 1 }
            cond.signal()
            return keep
        }
        if !keep { Self.closeSoon(conn) }
    }

    /// Closes without waiting (the future-returning `close`, not the async one). The connection is kept until its
    /// channel has closed: PostgresNIO asserts that none is released open.
    static func closeSoon(_ c: PostgresConnection) {
        let closing: EventLoopFuture<Void> = c.close()
        closing.whenComplete { _ in withExtendedLifetime(c) {} }
    }

    /// Database errors typed: a refusal by the server (an SQLSTATE outside the connection, shutdown and resource
    /// classes) is `storeFailed`; a lost or refused link, a timeout or a server going down is `storeUnavailable`.
    /// The caller's own errors (thrown from inside a transaction) pass through unchanged.
    static func typed(_ error: Error) -> Error {
        if error is RegistryError { return error }
        if let e = error as? PSQLError, e.code == .server, let info = e.serverInfo {
            let state = info[.sqlState] ?? ""
            let message = info[.message] ?? "server error"
            return isLinkFailure(error) ? RegistryError.storeUnavailable("\(state) \(message)")
                : RegistryError.storeFailed("\(state) \(message)")
        }
        if let e = error as? PSQLError { return RegistryError.storeUnavailable("\(e.code)") }
        if isLinkFailure(error) { return RegistryError.storeUnavailable("\(error)") }
        return error
    }

    static func isLinkFailure(_ error: Error) -> Bool {
        if let e = error as? PSQLError {
            guard e.code == .server else { return true }
            let state = e.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("57P") || state.hasPrefix("53")
        }
        return error is ChannelError || error is IOError || error is NIOConnectionError || error is EventLoopError
            || error is NoAnswer
    }
}
