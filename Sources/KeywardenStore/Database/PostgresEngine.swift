import Foundation
import KeywardenCore
import Logging
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
public final class PostgresEngine: DatabaseEngine {
    public let name = "postgres"
    public let changes = ChangeCounter()
    let client: PostgresClient
    private let runner: Task<Void, Never>
    /// This instance, in announcements: its own are not news to it.
    let instanceID = UUID().uuidString
    private let listeners = Mutex<[Task<Void, Never>]>([])
    let logger: Logger
    /// Where the database is, with the password left out (for logs and errors).
    public let location: String

    /// The advisory lock every write transaction holds (an arbitrary constant: "kw" "write").
    static let writeLock: Int64 = 0x6B77_7772_6974_6500

    /// Connects to the database at `url` (`postgres://user:pass@host:port/db?sslmode=…`) and checks that it answers.
    public init(url: String, logger: Logger) async throws {
        let parsed = try PostgresLocation(url)
        // One connection first, so a refused certificate, a wrong password or an unreachable host is reported as
        // itself at once (the pool retries behind a circuit breaker for a minute and then names only that).
        do {
            try await Self.withTimeout(.seconds(20)) {
                let connection = try await PostgresConnection.connect(configuration: try parsed.connectionConfiguration(), id: 0, logger: logger)
                try await connection.close()
            }
        } catch {
            throw StoreError.databaseUnavailable(path: parsed.redacted, reason: Self.describe(error))
        }
        self.location = parsed.redacted
        self.logger = logger
        let client = PostgresClient(configuration: parsed.configuration, backgroundLogger: logger)
        self.client = client
        self.runner = Task { await client.run() }
        do {
            _ = try await read { db in try await db.raw("SELECT 1 AS ok").first() }
        } catch {
            runner.cancel()
            throw StoreError.databaseUnavailable(path: parsed.redacted, reason: Self.describe(error))
        }
    }

    public func read<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await client.withConnection { connection in
            try await body(connection.sql(queryLogLevel: nil))
        }
    }

    public func read<R: Sendable>(consistent: Bool, _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        guard consistent else { return try await read(body) }
        return try await client.withConnection { connection in
            let db = connection.sql(queryLogLevel: nil)
            return try await db.inTransaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { try await body(db) }
        }
    }

    public func transaction<R: Sendable>(changesState: Bool, _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        let (result, seq) = try await client.withConnection { connection -> (R, Int64?) in
            let db = connection.sql(queryLogLevel: nil)
            // Read committed whatever the server's default (each statement sees what committed before the lock was
            // granted); a stalled writer cannot hold every instance's write lock for long.
            return try await db.inTransaction("BEGIN ISOLATION LEVEL READ COMMITTED") {
                try await db.raw("SET LOCAL lock_timeout = '30s'").run()
                try await db.raw("SET LOCAL idle_in_transaction_session_timeout = '60s'").run()
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
        // Autocommit: each statement is its own transaction and takes only its row's lock.
        try await client.withConnection { connection in try await body(connection.sql(queryLogLevel: nil)) }
    }

    /// A session-level advisory lock held on one connection for the duration of `body`.
    public func withExclusiveLock<R: Sendable>(_ name: String, _ body: @Sendable () async throws -> R) async throws -> R {
        let key = Self.lockKey(name)
        return try await client.withConnection { connection in
            let db = connection.sql(queryLogLevel: nil)
            let got = try await db.raw("SELECT pg_try_advisory_lock(\(bind: key)) AS got").first()?.decode(column: "got", as: Bool.self) ?? false
            guard got else { throw StoreError.lockHeld(operation: name) }
            do {
                let result = try await body()
                _ = try? await db.raw("SELECT pg_advisory_unlock(\(bind: key))").run()
                return result
            } catch {
                _ = try? await db.raw("SELECT pg_advisory_unlock(\(bind: key))").run()
                throw error
            }
        }
    }

    public func announce(_ channel: AnnouncementChannel, _ payload: String) async {
        _ = try? await read { db in try await db.raw("SELECT pg_notify(\(bind: channel.rawValue), \(bind: self.instanceID + " " + payload))").run() }
    }

    /// Listens on a connection of its own, reconnecting after a second when it is lost (what was missed meanwhile
    /// is caught by the caches' age rule).
    public func listen(_ channel: AnnouncementChannel, _ handler: @escaping @Sendable (String) -> Void) {
        let (client, instanceID, logger) = (self.client, self.instanceID, self.logger)
        let task = Task {
            while !Task.isCancelled {
                do {
                    try await client.withConnection { connection in
                        try await connection.listen(on: channel.rawValue) { notifications in
                            try await withThrowingTaskGroup(of: Void.self) { group in
                                group.addTask {
                                    for try await notification in notifications {
                                        // Our own announcements are not news; a change announcement carries only the instance id.
                                        let (sender, payload) = Self.split(notification.payload)
                                        if sender != instanceID { handler(payload) }
                                    }
                                }
                                // A connection dropped silently (a NAT's idle timeout, a failover) would wait forever: ask
                                // it something every 30 s, and listen again on a new one when it does not answer in 10.
                                group.addTask {
                                    while true {
                                        try await Task.sleep(for: .seconds(30))
                                        try await Self.withTimeout(.seconds(10)) { _ = try await connection.query("SELECT 1", logger: logger) }
                                    }
                                }
                                try await group.next()
                                group.cancelAll()
                            }
                        }
                    }
                } catch {
                    if Task.isCancelled { return }
                    logger.warning("database announcements lost; listening again", metadata: ["channel": "\(channel.rawValue)"])
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        listeners.withLock { $0.append(task) }
    }

    /// Runs `body`, failing when it takes longer than `limit`.
    static func withTimeout(_ limit: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                throw StoreError.databaseUnavailable(path: "(listening connection)", reason: "no answer within \(limit)")
            }
            try await group.next()
            group.cancelAll()
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

    public func close() async {
        let tasks = listeners.withLock { $0 }
        for task in tasks { task.cancel() }
        runner.cancel()
        await runner.value
    }

    /// A stable 64-bit key for a lock name (FNV-1a).
    static func lockKey(_ name: String) -> Int64 {
        let hash = name.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
        return Int64(bitPattern: hash)
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

/// A PostgreSQL connection URL, read as libpq reads one: `postgres://user:password@host:port/database?sslmode=…`
/// with `sslmode` `disable`, `prefer` (the default), `require` (encrypted, the server not verified), `verify-ca` or
/// `verify-full` (the certificate checked against the system's roots, or `sslrootcert=<file>`).
public struct PostgresLocation: Sendable {
    public let configuration: PostgresClient.Configuration
    /// The TLS rule for a single connection (the same as the pool's).
    private let tlsRule: TLSRule
    private enum TLSRule: Sendable {
        case disable
        case prefer(TLSConfiguration)
        case require(TLSConfiguration)
    }
    /// The URL without its password.
    public let redacted: String

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
        let tls: PostgresClient.Configuration.TLS
        switch query["sslmode"] ?? "prefer" {
        case "disable":
            tls = .disable
            tlsRule = .disable
        case "prefer", "allow":
            tlsConfiguration.certificateVerification = .none
            tls = .prefer(tlsConfiguration)
            tlsRule = .prefer(tlsConfiguration)
        case "require":
            tlsConfiguration.certificateVerification = .none
            tls = .require(tlsConfiguration)
            tlsRule = .require(tlsConfiguration)
        case "verify-ca":
            tlsConfiguration.certificateVerification = .noHostnameVerification
            tls = .require(tlsConfiguration)
            tlsRule = .require(tlsConfiguration)
        case "verify-full":
            tlsConfiguration.certificateVerification = .fullVerification
            tls = .require(tlsConfiguration)
            tlsRule = .require(tlsConfiguration)
        case let other:
            throw StoreError.databaseUnavailable(path: redacted, reason: "sslmode '\(other)' is not disable, prefer, require, verify-ca or verify-full")
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: password,
            database: (database?.isEmpty ?? true) ? nil : database, tls: tls
        )
        // `pool_size=N` (4…200): connections per instance; two are held by the listeners for announcements and one by an
        // exclusive operation, so fewer would leave queries waiting forever.
        configuration.options.maximumConnections = query["pool_size"].flatMap { UntrustedNumber.integer($0) }.map { min(max($0, 4), 200) } ?? 10
        self.configuration = configuration
    }

    /// The same server, user, database and TLS rule for one connection.
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch tlsRule {
        case .disable: tls = .disable
        case .prefer(let rule): tls = .prefer(try NIOSSLContext(configuration: rule))
        case .require(let rule): tls = .require(try NIOSSLContext(configuration: rule))
        }
        return PostgresConnection.Configuration(
            host: configuration.host ?? "127.0.0.1", port: configuration.port ?? 5432, username: configuration.username,
            password: configuration.password, database: configuration.database, tls: tls
        )
    }
}
