import Foundation
import KeywardenStore
import Logging
import SQLKit
import Synchronization

/// Which engine the tests run on, and a fresh PostgreSQL database per fixture when that engine is PostgreSQL.
///
/// `swift test` runs on SQLite. With `KEYWARDEN_TEST_ENGINE=postgres` and `KEYWARDEN_TEST_POSTGRES_URL` (a URL to a
/// server's maintenance database, e.g. `postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable`), the same
/// tests run on PostgreSQL: every fixture (and every binary a test starts) gets a database of its own.
public final class TestDatabase: Sendable {
    public enum Engine: String, Sendable {
        case sqlite, postgres
    }

    /// The engine of this test run.
    public static var engine: Engine {
        ProcessInfo.processInfo.environment["KEYWARDEN_TEST_ENGINE"] == "postgres" ? .postgres : .sqlite
    }

    /// The maintenance database databases are made from.
    static var adminURL: String? { ProcessInfo.processInfo.environment["KEYWARDEN_TEST_POSTGRES_URL"] }

    /// Whether a PostgreSQL server is there for the tests that need one whatever the run's engine (moving a store
    /// to it, several instances on one database).
    public static var postgresAvailable: Bool { adminURL.map { !$0.isEmpty } ?? false }

    private let state = Mutex<String?>(nil)

    public init() {}

    /// The database's URL, once prepared on PostgreSQL; `nil` on SQLite.
    public var url: String? { state.withLock { $0 } }

    /// Makes the database on first use (PostgreSQL only).
    public func prepare() async throws {
        guard Self.engine == .postgres, url == nil else { return }
        let made = try await Self.create()
        state.withLock { $0 = made }
    }

    /// A new, empty database on the test server; its URL.
    public static func create() async throws -> String {
        guard let adminURL, var components = URLComponents(string: adminURL) else {
            throw TestDatabaseError.notConfigured
        }
        let name = "kw_t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await withAdmin { db in try await db.raw("CREATE DATABASE \(ident: name)").run() }
        components.path = "/" + name
        // Many fixtures run at once: a small pool each keeps the server under its connection limit.
        components.queryItems = (components.queryItems ?? []).filter { $0.name != "pool_size" } + [URLQueryItem(name: "pool_size", value: "4")]
        return components.string ?? adminURL
    }

    /// Drops the database in the background (the test is done with it).
    public func dropLater() {
        guard let url, let name = URLComponents(string: url)?.path.dropFirst() else { return }
        let database = String(name)
        Task { try? await Self.withAdmin { db in try await db.raw("DROP DATABASE IF EXISTS \(ident: database) WITH (FORCE)").run() } }
    }

    /// The database as `pg_dump` writes it (data included).
    public static func dump(_ url: String) throws -> [UInt8] {
        guard var components = URLComponents(string: url) else { return [] }
        components.queryItems = nil
        let dump = try ChildProcess.run("/usr/bin/env", ["pg_dump", "--no-owner", "--inserts", components.string ?? url])
        return Array(dump.stdout)
    }

    /// The PostgreSQL server's log, when `KEYWARDEN_TEST_POSTGRES_LOG` names it (empty otherwise).
    public static var serverLog: [UInt8] {
        guard let log = ProcessInfo.processInfo.environment["KEYWARDEN_TEST_POSTGRES_LOG"], let text = FileManager.default.contents(atPath: log) else { return [] }
        return Array(text)
    }

    static func withAdmin(_ body: @escaping @Sendable (any SQLDatabase) async throws -> Void) async throws {
        try await AdminConnection.shared.engine().read(body)
    }

    /// One engine on the maintenance database for the whole test process, with few connections: the server creates
    /// databases one at a time anyway, and a hundred fixtures each opening their own would use up its connections.
    actor AdminConnection {
        static let shared = AdminConnection()
        private var made: PostgresEngine?

        func engine() async throws -> PostgresEngine {
            if let made { return made }
            guard let adminURL = TestDatabase.adminURL, var components = URLComponents(string: adminURL) else { throw TestDatabaseError.notConfigured }
            components.queryItems = (components.queryItems ?? []).filter { $0.name != "pool_size" } + [URLQueryItem(name: "pool_size", value: "4")]
            var logger = Logger(label: "test-db")
            logger.logLevel = .critical
            // CREATE DATABASE queues behind every other one of the suite.
            let engine = try await PostgresEngine(url: components.string ?? adminURL,
                                                  timeouts: DatabaseTimeouts(operation: .seconds(300), connect: .seconds(60)), logger: logger)
            made = engine
            return engine
        }
    }

    public enum TestDatabaseError: Error, CustomStringConvertible {
        case notConfigured
        public var description: String { "KEYWARDEN_TEST_ENGINE=postgres needs KEYWARDEN_TEST_POSTGRES_URL" }
    }
}
