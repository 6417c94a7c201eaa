import Foundation
import KeywardenCore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresKit
import PostgresNIO
import SQLKit
import Synchronization

/// Several instances on one PostgreSQL database (`KEYWARDEN_DATABASE_URL=postgres://…`).
///
/// Reads run on any pooled connection. Every write transaction first takes one transaction-scoped advisory lock,
/// so writes are serialized across every instance as SQLite serializes them in one file: the audit chain (read the
/// last hash, append the next) stays one chain, and read-then-write checks inside a transaction hold.
///
/// Through a fault every operation is answered within ``DatabaseTimeouts/operation``: the connections are this
/// engine's own (three pools: management work, the gateway's counters, and the change follower, so none waits behind
/// another), a statement is refused at once on a connection the server closed, an operation past its deadline is
/// answered `store_unavailable` and the connection it holds is closed and forgotten, and the server itself stops a
/// statement or a lock wait past the same limit (`statement_timeout`, `lock_timeout`).
public final class PostgresEngine: DatabaseEngine {
    public let name = "postgres"
    public let changes = ChangeCounter()
    /// This instance, in announcements (its own are not news to it) and on the budget holds it owns.
    public let instanceID = UUID().uuidString
    let logger: Logger
    /// Where the database is, with the password left out (for logs and errors).
    public let location: String
    let timeouts: DatabaseTimeouts
    private let connect: @Sendable () async throws -> PostgresConnection
    private let general: ConnectionPool<PostgresConnection>
    private let counters: ConnectionPool<PostgresConnection>
    private let following: ConnectionPool<PostgresConnection>
    /// The announcement handlers by channel, and the task listening to all of them.
    private struct Listening {
        var handlers: [AnnouncementChannel: [@Sendable (String) -> Void]] = [:]
        var task: Task<Void, Never>?
    }

    private let listening = Mutex(Listening())

    /// The advisory lock every write transaction holds (an arbitrary constant: "kw" "write").
    static let writeLock: Int64 = 0x6B77_7772_6974_6500

    /// Connects to the database at `url` (`postgres://user:pass@host:port/db?sslmode=…`) and checks that it answers.
    public init(url: String, timeouts: DatabaseTimeouts = DatabaseTimeouts(), logger: Logger) async throws {
        let parsed = try PostgresLocation(url)
        var configuration: PostgresConnection.Configuration
        do {
            configuration = try parsed.connectionConfiguration()
        } catch {
            throw StoreError.databaseUnavailable(path: parsed.redacted, reason: Self.describe(error))
        }
        configuration.options.connectTimeout = .nanoseconds(Int64(timeouts.connect.components.seconds) * 1_000_000_000
                                                             + timeouts.connect.components.attoseconds / 1_000_000_000)
        // The server stops what runs past the operation deadline itself, so an abandoned statement does not run on. A
        // wait for a lock gives up at half of it: a writer that could not get the write lock soon enough gives up before
        // doing its work, instead of taking the lock late and dying past its deadline while holding it (which would
        // waste the lock's time for every instance queued behind it: congestion collapse on a slow database).
        let limit = "\(timeouts.operation.milliseconds)"
        configuration.options.additionalStartupParameters = [
            ("application_name", "keywarden"), ("statement_timeout", limit), ("lock_timeout", "\(timeouts.operation.milliseconds / 2)"),
            ("idle_in_transaction_session_timeout", "\(max(60_000, timeouts.operation.milliseconds * 6))"),
        ]
        let opening = configuration
        let ids = Atomic<Int>(0)
        let connect: @Sendable () async throws -> PostgresConnection = {
            let id = ids.add(1, ordering: .relaxed).newValue
            return try await PostgresConnection.connect(configuration: opening, id: id, logger: logger)
        }
        // One connection first, so a refused certificate, a wrong password or an unreachable host is reported as
        // itself at once.
        do {
            try await Deadline.run(.seconds(20)) {
                let connection = try await connect()
                try? await connection.close()
            }
        } catch {
            throw StoreError.databaseUnavailable(path: parsed.redacted, reason: Self.describe(error))
        }
        self.location = parsed.redacted
        self.logger = logger
        self.timeouts = timeouts
        self.connect = connect
        let close: @Sendable (PostgresConnection) async -> Void = { try? await $0.close() }
        let usable: @Sendable (PostgresConnection) -> Bool = { !$0.isClosed }
        let sizes = parsed.lanes
        general = ConnectionPool(capacity: sizes.general, open: connect, close: close, isUsable: usable)
        counters = ConnectionPool(capacity: sizes.counters, open: connect, close: close, isUsable: usable)
        following = ConnectionPool(capacity: sizes.following, open: connect, close: close, isUsable: usable)
    }

    public func read<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        // Maintenance reads (copying a store) may run past the server's statement timeout: in a transaction that lifts it.
        if DatabaseDeadline.override != nil { return try await read(consistent: true, body) }
        return try await withConnection(generalPool) { db in try await body(db) }
    }

    public func read<R: Sendable>(consistent: Bool, _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        guard consistent else { return try await read(body) }
        let extended = DatabaseDeadline.override
        return try await withConnection(generalPool) { db in
            try await db.inTransaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
                if let extended { try await db.raw("SET LOCAL statement_timeout = \(unsafeRaw: String(extended.milliseconds))").run() }
                return try await body(db)
            }
        }
    }

    public func transaction<R: Sendable>(changesState: Bool, _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        let extended = DatabaseDeadline.override
        let (result, seq) = try await withConnection(generalPool) { db -> (R, Int64?) in
            // Read committed whatever the server's default (each statement sees what committed before the lock was
            // granted); a stalled writer cannot hold every instance's write lock past the statement and lock timeouts.
            return try await db.inTransaction("BEGIN ISOLATION LEVEL READ COMMITTED") {
                if let extended {
                    // Maintenance (a migration): its statements may run as long as its own deadline.
                    try await db.raw("SET LOCAL statement_timeout = \(unsafeRaw: String(extended.milliseconds))").run()
                }
                try await db.raw("SELECT pg_advisory_xact_lock(\(bind: Self.writeLock))").run()
                let collector = ChangeCollector()
                let result = try await ChangeCollector.$current.withValue(collector) { try await body(db) }
                // A transaction that wrote nothing (a failed sign-in, an unchanged save) has no transaction id.
                let wrote = changesState
                    ? try await db.raw("SELECT txid_current_if_assigned() IS NOT NULL AS wrote").first()?.decode(column: "wrote", as: Bool.self) ?? true
                    : false
                // What changed is logged in the same transaction (numbered under the write lock, so without gaps), and
                // every listening instance is woken when (and only if) it commits.
                var seq: Int64?
                if wrote {
                    seq = try await ChangeLog.append(collector, on: db)
                    try await db.raw("SELECT pg_notify(\(bind: AnnouncementChannel.changes.rawValue), \(bind: self.instanceID + " " + String(seq ?? 0)))").run()
                }
                return (result, seq)
            }
        }
        if let seq { await changes.committed(seq) }
        return result
    }

    public func counterWrite<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        // Autocommit on connections of their own: each statement is its own transaction and takes only its row's lock,
        // and the gateway's counters never wait for a connection behind management work.
        try await withConnection(counters) { db in try await body(db) }
    }

    /// A session-level advisory lock held on one connection for the duration of `body` (which has no deadline: an
    /// exclusive operation such as a master-key rotation runs as long as it needs; its own statements have theirs).
    public func withExclusiveLock<R: Sendable>(_ name: String, _ body: @Sendable () async throws -> R) async throws -> R {
        let key = Self.lockKey(name)
        let connection = try await Deadline.run(timeouts.operation, disposeLate: { connection in Task { try? await connection.close() } }) { try await self.connect() }
        let db = OpenConnectionDatabase(connection)
        let limit = timeouts.operation
        func statement(_ query: SQLQueryString) async throws -> Bool {
            try await Deadline.run(limit, onAbandon: { connection.closeNow() }) {
                try await db.raw(query).first()?.decode(column: "done", as: Bool.self) ?? false
            }
        }
        do {
            guard try await statement("SELECT pg_try_advisory_lock(\(bind: key)) AS done") else { throw StoreError.lockHeld(operation: name) }
            let result = try await body()
            _ = try? await statement("SELECT pg_advisory_unlock(\(bind: key)) AS done")
            try? await connection.close()
            return result
        } catch {
            // Closing the connection releases the lock whatever happened.
            _ = try? await statement("SELECT pg_advisory_unlock(\(bind: key)) AS done")
            try? await connection.close()
            throw Self.classify(error)
        }
    }

    public func announce(_ channel: AnnouncementChannel, _ payload: String) async {
        _ = try? await counterWrite { db in try await db.raw("SELECT pg_notify(\(bind: channel.rawValue), \(bind: self.instanceID + " " + payload))").run() }
    }

    /// Calls `handler` with what other instances announce on `channel`. Every channel is listened to on one connection
    /// of the engine's own (outside the pools), opened again a second after it is lost (what was missed meanwhile is
    /// caught by the change follower's poll); a new channel restarts it with all of them.
    public func listen(_ channel: AnnouncementChannel, _ handler: @escaping @Sendable (String) -> Void) {
        let (connect, instanceID, logger) = (self.connect, self.instanceID, self.logger)
        let (old, handlers) = listening.withLock { state -> (Task<Void, Never>?, [AnnouncementChannel: [@Sendable (String) -> Void]]) in
            state.handlers[channel, default: []].append(handler)
            return (state.task, state.handlers)
        }
        old?.cancel()
        let task = Task {
            await old?.value
            while !Task.isCancelled {
                do {
                    let connection = try await Deadline.run(.seconds(10), disposeLate: { connection in Task { try? await connection.close() } }) { try await connect() }
                    defer { Task { try? await connection.close() } }
                    try await Self.listen(to: Array(handlers.keys), on: connection, instanceID: instanceID, handlers: handlers) {
                        // A connection dropped silently (a NAT's idle timeout, a failover) would wait forever: ask it
                        // something every 30 s, and listen again on a new one when it does not answer in 10.
                        while true {
                            try await Task.sleep(for: .seconds(30))
                            try await Deadline.run(.seconds(10), onAbandon: { connection.closeNow() }) {
                                _ = try await connection.query("SELECT 1", logger: logger)
                            }
                        }
                    }
                } catch {
                    if Task.isCancelled { return }
                    logger.warning("database announcements lost; listening again", metadata: ["channels": "\(handlers.keys.map(\.rawValue))"])
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        listening.withLock { $0.task = task }
    }

    /// Listens to each of `channels` on `connection` while `body` runs (or until a listen ends); announcements of this
    /// instance are not news to it.
    private static func listen(to channels: [AnnouncementChannel], on connection: PostgresConnection, instanceID: String,
                               handlers: [AnnouncementChannel: [@Sendable (String) -> Void]],
                               while body: @escaping @Sendable () async throws -> Void) async throws {
        guard let channel = channels.first else {
            try await body()
            return
        }
        try await connection.listen(on: channel.rawValue) { notifications in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await notification in notifications {
                        let (sender, payload) = Self.split(notification.payload)
                        guard sender != instanceID else { continue }
                        for handler in handlers[channel] ?? [] { handler(payload) }
                    }
                }
                group.addTask {
                    try await listen(to: Array(channels.dropFirst()), on: connection, instanceID: instanceID, handlers: handlers, while: body)
                }
                try await group.next()
                group.cancelAll()
            }
        }
    }

    static func split(_ payload: String) -> (sender: String, payload: String) {
        guard let space = payload.firstIndex(of: " ") else { return (payload, "") }
        return (String(payload[..<space]), String(payload[payload.index(after: space)...]))
    }

    public func tableExists(_ name: String) async throws -> Bool {
        try await read { db in
            try await db.raw("SELECT 1 AS found FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = \(bind: name)").first() != nil
        }
    }

    public func ping() async -> Bool {
        (try? await withConnection(following, limit: timeouts.ping) { db in try await db.raw("SELECT 1 AS ok").first() != nil }) ?? false
    }

    /// Closes every connection: idle ones at once, one in use when its holder gives it back (within the operation's
    /// deadline).
    public func close() async {
        listening.withLock { $0.task }?.cancel()
        async let generalClosed: Void = general.close(within: timeouts.operation)
        async let countersClosed: Void = counters.close(within: timeouts.operation)
        async let followingClosed: Void = following.close(within: timeouts.operation)
        _ = await (generalClosed, countersClosed, followingClosed)
    }

    // MARK: Connections

    /// The pool for reads and transactions: the change follower's own when it runs the work (``DatabaseLane/current``).
    private var generalPool: ConnectionPool<PostgresConnection> {
        DatabaseLane.current == .following ? following : general
    }

    /// Runs `body` on a connection of `pool`, answered within the operation's deadline whatever the connection does:
    /// past it, the connection is closed and forgotten (its place refilled) and the caller gets `store_unavailable`.
    /// Driver errors that mean the database cannot answer become ``StoreError/unavailable(reason:)``.
    private func withConnection<R: Sendable>(_ pool: ConnectionPool<PostgresConnection>, limit: Duration? = nil,
                                             _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        let held = HeldLease<PostgresConnection>()
        do {
            return try await Deadline.run(limit ?? DatabaseDeadline.override ?? timeouts.operation, onAbandon: {
                // The work may be stuck on the connection: close it (the server rolls back what was open) and free its place.
                guard let lease = held.expire() else { return }
                lease.connection.closeNow()
                pool.release(lease, reusable: false)
            }) {
                let lease = try await pool.acquire()
                guard held.hold(lease) else {
                    pool.release(lease, reusable: true)
                    throw CancellationError()
                }
                let result: R
                do {
                    result = try await body(OpenConnectionDatabase(lease.connection))
                } catch {
                    if held.drop() { pool.release(lease, reusable: true) }
                    throw error
                }
                if held.drop() { pool.release(lease, reusable: true) }
                return result
            }
        } catch {
            throw Self.classify(error)
        }
    }

    /// A stable 64-bit key for a lock name (FNV-1a).
    static func lockKey(_ name: String) -> Int64 {
        let hash = name.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
        return Int64(bitPattern: hash)
    }

    /// The error a caller sees: ``StoreError/unavailable(reason:)`` for every way the database can fail to answer
    /// (connection refused, closed or reset, the server shutting down or starting, too many connections, a statement
    /// or lock wait past its timeout); other errors as they are.
    static func classify(_ error: any Error) -> any Error {
        switch error {
        case is StoreError, is CancellationError: return error
        case let error as PSQLError:
            switch error.code {
            case .server:
                let state = error.serverInfo?[.sqlState] ?? ""
                // 22021 character not in repertoire (a NUL in text), 22P05 untranslatable character: the client's text.
                if state == "22021" || state == "22P05" { return StoreError.unstorableText }
                // 08: connection exception; 53: insufficient resources; 57: operator intervention (shutdown, statement
                // timeout); 55P03: lock not available (lock timeout); 25P03: idle in transaction timeout; 40: transaction
                // rollback (a deadlock's victim, a serialization failure): each may be tried again.
                guard state.hasPrefix("08") || state.hasPrefix("53") || state.hasPrefix("57") || state.hasPrefix("40")
                    || state == "55P03" || state == "25P03" else { return error }
            case .clientClosedConnection, .serverClosedConnection, .connectionError, .uncleanShutdown, .poolClosed,
                 .messageDecodingFailure, .unexpectedBackendMessage:
                break
            default:
                return error
            }
            return StoreError.unavailable(reason: describe(error))
        case is ChannelError, is IOError, is NIOConnectionError:
            return StoreError.unavailable(reason: describe(error))
        default:
            return error
        }
    }

    /// A driver error in words, without the connection string.
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            // The cause (a refused certificate, a refused connection) says more than the code.
            let cause = error.underlying.map { ": " + String(describing: $0) } ?? ""
            return "\(error.code)" + (error.serverInfo?[.message].map { ": \($0)" } ?? "") + cause
        }
        return String(describing: error)
    }
}

extension PostgresConnection {
    /// Starts closing the connection without waiting (pending queries fail; the server rolls back what was open). The
    /// caller keeps the connection until it is closed (PostgresNIO asserts that it is closed before it goes).
    func closeNow() {
        let _: EventLoopFuture<Void> = close()
    }
}

/// A connection's `SQLDatabase` that refuses a statement once the connection is closed.
///
/// PostgresNIO (1.33) writes a query to its channel without a write promise (`PostgresConnection.query`): on a channel
/// that already closed, the write fails unseen and the query never completes. The statement after the one the server's
/// shutdown failed (the `ROLLBACK`) would wait forever. Checking first closes that door in the common case; the
/// operation's deadline covers a close that races the check.
struct OpenConnectionDatabase: SQLDatabase {
    let base: any SQLDatabase
    let connection: PostgresConnection

    init(_ connection: PostgresConnection) {
        self.connection = connection
        self.base = connection.sql(queryLogLevel: nil)
    }

    var logger: Logger { base.logger }
    var eventLoop: any EventLoop { base.eventLoop }
    var version: (any SQLDatabaseReportedVersion)? { base.version }
    var dialect: any SQLDialect { base.dialect }
    var queryLogLevel: Logger.Level? { nil }

    static let closed = StoreError.unavailable(reason: "the database closed the connection")

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        guard !connection.isClosed else { return eventLoop.makeFailedFuture(Self.closed) }
        return base.execute(sql: query, onRow)
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        guard !connection.isClosed else { throw Self.closed }
        try await base.execute(sql: query, onRow)
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await closure(self)
    }
}

/// The lease an operation holds, shared with its deadline: whichever of the work (giving it back) and the deadline
/// (closing it) comes first takes it.
final class HeldLease<Connection: Sendable>: Sendable {
    private enum State {
        case waiting
        case holding(ConnectionPool<Connection>.Lease)
        case done
    }

    private let state = Mutex(State.waiting)

    /// Notes the lease the work got; `false` when the deadline passed first (the work gives it back itself).
    func hold(_ lease: ConnectionPool<Connection>.Lease) -> Bool {
        state.withLock { state in
            guard case .waiting = state else { return false }
            state = .holding(lease)
            return true
        }
    }

    /// The work is done with it; whether the work still held it (and gives it back).
    func drop() -> Bool {
        state.withLock { state in
            guard case .holding = state else { return false }
            state = .done
            return true
        }
    }

    /// The deadline passed: the lease held, if any (the deadline closes it).
    func expire() -> ConnectionPool<Connection>.Lease? {
        state.withLock { state in
            defer { state = .done }
            if case .holding(let lease) = state { return lease }
            return nil
        }
    }
}

/// A PostgreSQL connection URL, read as libpq reads one: `postgres://user:password@host:port/database?sslmode=…`
/// with `sslmode` `disable`, `prefer` (the default), `require` (encrypted, the server not verified), `verify-ca` or
/// `verify-full` (the certificate checked against the system's roots, or `sslrootcert=<file>`), and `pool_size=N`.
public struct PostgresLocation: Sendable {
    public let host: String
    public let port: Int
    public let username: String
    let password: String?
    public let database: String?
    /// The TLS rule of every connection.
    private let tlsRule: TLSRule
    private enum TLSRule: Sendable {
        case disable
        case prefer(TLSConfiguration)
        case require(TLSConfiguration)
    }
    /// The URL without its password.
    public let redacted: String
    /// Connections per instance (`pool_size`, 4…200; default 10), besides the one each announcement listener holds.
    public let poolSize: Int

    /// How the pool's connections are shared: the change follower's one (it is never queued behind other work), the
    /// gateway's counters (a quarter, at least one), and the rest for everything else.
    public var lanes: (general: Int, counters: Int, following: Int) {
        let counters = max(1, poolSize / 4)
        return (poolSize - counters - 1, counters, 1)
    }

    public init(_ text: String) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "postgres" || scheme == "postgresql", let host = components.host, !host.isEmpty else {
            throw StoreError.databaseUnavailable(path: "(database URL)", reason: "not a postgres://user:password@host:port/database URL")
        }
        // URLComponents has already decoded these (decoding again would turn "50%25off" into nothing).
        let user = components.user ?? "postgres"
        let password = components.password
        let database: String? = String(components.path.drop { $0 == "/" })
        let query = Dictionary((components.queryItems ?? []).map { ($0.name.lowercased(), $0.value ?? "") }) { $1 }
        guard query["password"] == nil else {
            throw StoreError.databaseUnavailable(path: "(database URL)", reason: "give the password in the URL's user part (user:password@), not as a query parameter")
        }
        var redactedComponents = components
        redactedComponents.password = password == nil ? nil : "***"
        redacted = redactedComponents.string ?? "postgres://\(host)"

        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        if let root = query["sslrootcert"], !root.isEmpty {
            tlsConfiguration.trustRoots = .file(root)
        }
        switch query["sslmode"] ?? "prefer" {
        case "disable":
            tlsRule = .disable
        case "prefer", "allow":
            tlsConfiguration.certificateVerification = .none
            tlsRule = .prefer(tlsConfiguration)
        case "require":
            tlsConfiguration.certificateVerification = .none
            tlsRule = .require(tlsConfiguration)
        case "verify-ca":
            tlsConfiguration.certificateVerification = .noHostnameVerification
            tlsRule = .require(tlsConfiguration)
        case "verify-full":
            tlsConfiguration.certificateVerification = .fullVerification
            tlsRule = .require(tlsConfiguration)
        case let other:
            throw StoreError.databaseUnavailable(path: redacted, reason: "sslmode '\(other)' is not disable, prefer, require, verify-ca or verify-full")
        }
        self.host = host
        self.port = components.port ?? 5432
        self.username = user
        self.password = password
        self.database = (database?.isEmpty ?? true) ? nil : database
        // Fewer than 4 would leave a lane without a connection.
        poolSize = query["pool_size"].flatMap { UntrustedNumber.integer($0) }.map { min(max($0, 4), 200) } ?? 10
    }

    /// The server, user, database and TLS rule, for one connection.
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch tlsRule {
        case .disable: tls = .disable
        case .prefer(let rule): tls = .prefer(try NIOSSLContext(configuration: rule))
        case .require(let rule): tls = .require(try NIOSSLContext(configuration: rule))
        }
        return PostgresConnection.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
    }
}
