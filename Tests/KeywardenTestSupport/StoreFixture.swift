import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenVault
import Logging
import Synchronization
import KeywardenStore

/// Captures every log line (at trace level) so tests can search them for secrets.
public final class LogCapture: Sendable {
    public init() {}

    private let lines = Mutex<[String]>([])

    public var logger: Logger {
        var logger = Logger(label: "test") { _ in CapturingHandler(capture: self) }
        logger.logLevel = .trace
        return logger
    }

    public var text: String { lines.withLock { $0.joined(separator: "\n") } }

    public func append(_ line: String) { lines.withLock { $0.append(line) } }

    struct CapturingHandler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.append("\(event.level) \(event.message) \(all.map { "\($0)=\($1)" }.sorted().joined(separator: " "))")
        }
    }
}

/// A data directory in /tmp with its own keyring, removed by the test when done; on the engine the run tests
/// (``TestDatabase/engine``): SQLite in the directory, or a fresh PostgreSQL database of its own.
public struct StoreFixture: Sendable {
    public let directory: URL
    public let logs = LogCapture()
    public var environment: [String: String] = [:]
    /// The tests' vendors and receivers listen on loopback.
    public var allowPrivateTargets = true
    /// The PostgreSQL database of this fixture, made on first use (`nil` on SQLite).
    public let database = TestDatabase()
    /// How long an instance serves what it holds without confirming it current (`KEYWARDEN_STALE_AFTER`).
    public var staleAfter: Duration = .seconds(10)

    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kw-store-\(UUID().uuidString)")
    }

    public func configuration(catalog: ProviderCatalog? = nil) throws -> StoreConfiguration {
        var configuration = StoreConfiguration(
            dataDirectory: directory,
            keyringSource: KeyringSource.resolve(environment: environment, dataDirectory: directory),
            catalog: try catalog ?? ProviderCatalog.load(),
            allowPrivateTargets: allowPrivateTargets,
            postgresURL: database.url
        )
        // The whole suite runs at once against one server: an operation may wait longer than in production. The
        // deadline itself is tested with short limits of its own (PostgresFaultTests, the fault suite).
        configuration.databaseTimeouts = Self.databaseTimeouts
        configuration.staleAfter = staleAfter
        return configuration
    }

    /// The deadline of database work in tests.
    public static let databaseTimeouts = DatabaseTimeouts(operation: .seconds(60), connect: .seconds(30))

    /// Opens the store with its application services (catalog seeded, first token issued on a first run).
    public func open(catalog: ProviderCatalog? = nil, create: Bool = true) async throws -> (AppServices, OpenReport) {
        try await database.prepare()
        return try await AppServices.open(try configuration(catalog: catalog), createIfMissing: create, logger: logs.logger)
    }

    /// Every byte Keywarden wrote to the data directory (database, WAL, shared memory, keyring excluded); on
    /// PostgreSQL, the database as `pg_dump` writes it.
    public func databaseBytes() throws -> [UInt8] {
        if let url = database.url { return try TestDatabase.dump(url) }
        var bytes: [UInt8] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where name.hasPrefix("keywarden.sqlite") {
            bytes += Array(try Data(contentsOf: directory.appendingPathComponent(name)))
        }
        return bytes
    }

    public func remove() {
        try? FileManager.default.removeItem(at: directory)
        database.dropLater()
    }
}

/// Whether `needle`'s UTF-8 bytes occur in `haystack`.
public func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
    let needle = Array(needle.utf8)
    guard !needle.isEmpty, haystack.count >= needle.count else { return false }
    let first = needle[0]
    var index = 0
    while index <= haystack.count - needle.count {
        if haystack[index] == first, Array(haystack[index..<index + needle.count]) == needle { return true }
        index += 1
    }
    return false
}

extension StoreFixture {
    /// The SQLite database file.
    public var databaseURL: URL { directory.appendingPathComponent("keywarden.sqlite") }
}
