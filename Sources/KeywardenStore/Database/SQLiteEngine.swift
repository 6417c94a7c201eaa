import Foundation
import Logging
import NIOPosix
import SQLKit
import SQLiteKit
import SQLiteNIO

/// The embedded default: one SQLite file in WAL mode, foreign keys on, `synchronous = FULL`
/// (a commit returns only once it is on disk).
///
/// One writer connection serializes transactions (`BEGIN IMMEDIATE`); a few reader connections
/// serve reads concurrently (WAL lets them read while the writer writes). A connection waits for another process's
/// write lock (the CLI beside a running server) up to the operation's deadline (SQLite's busy timeout).
///
/// SQLite's calls block their thread (a write waiting for another process's lock sleeps in it for up to the busy
/// timeout), so the engine owns a thread per connection, as GRDB gives each connection its own queue: no connection
/// waits for a thread another connection, another engine or the key custodian holds (NIO's shared pool has a thread
/// per core).
public final class SQLiteEngine: DatabaseEngine {
    public let name = "sqlite"
    /// The database file.
    public let path: String
    public var location: String { path }

    public let changes = ChangeCounter()
    public let instanceID = UUID().uuidString
    let timeouts: DatabaseTimeouts
    private let writer: ConnectionPool<SQLiteConnection>
    private let readers: ConnectionPool<SQLiteConnection>
    private let logger: Logger

    /// Opens (creating if needed) the database at `path` and checks that it is usable.
    public init(path: String, readers: Int = 4, timeouts: DatabaseTimeouts = DatabaseTimeouts(), logger: Logger) async throws {
        self.path = path
        self.timeouts = timeouts
        self.logger = logger
        // The file holds sealed secrets and token digests: readable by its owner only. SQLite gives
        // the -wal and -shm files the same permissions as the database file.
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw StoreError.databaseUnavailable(path: path, reason: "cannot create the file")
            }
        }
        // The threads SQLite's calls run on: one per connection.
        let threads = SQLiteThreads(count: max(1, readers) + 1)
        let open: @Sendable (Bool) async throws -> SQLiteConnection = { readOnly in
            let connection = try await SQLiteConnection.open(
                storage: .file(path: path), threadPool: threads.pool, logger: logger, on: MultiThreadedEventLoopGroup.singleton.any()
            )
            do {
                for pragma in Self.connectionPragmas(readOnly: readOnly, busyTimeout: timeouts.operation) {
                    _ = try await connection.query(pragma, [])
                }
            } catch {
                try? await connection.close()
                throw error
            }
            return connection
        }
        // Closing a connection needs the threads: the closure holds them, so they outlive every connection the pools
        // can still close (one given back after the engine closed, one whose opening finished late).
        let close: @Sendable (SQLiteConnection) async -> Void = { connection in
            try? await connection.close()
            withExtendedLifetime(threads) {}
        }
        self.writer = ConnectionPool(capacity: 1, open: { try await open(false) }, close: close)
        self.readers = ConnectionPool(capacity: readers, open: { try await open(true) }, close: close)
        do {
            try await writer.withConnection { connection in
                let rows = try await connection.query("PRAGMA journal_mode = WAL", [])
                let mode = rows.first?.column("journal_mode")?.string ?? ""
                guard mode.lowercased() == "wal" else {
                    throw StoreError.databaseUnavailable(path: path, reason: "could not switch to WAL mode (got '\(mode)')")
                }
                _ = try await connection.query("SELECT count(*) FROM sqlite_master", [])
            }
        } catch let error as StoreError {
            await self.close()
            throw error
        } catch {
            await self.close()
            throw StoreError.databaseUnavailable(path: path, reason: String(describing: error))
        }
    }

    /// The writer's page cache, in KiB.
    static let writerCacheKilobytes = 32 * 1024

    /// What each connection is set to; `busyTimeout` is how long it waits for another connection's write lock.
    static func connectionPragmas(readOnly: Bool, busyTimeout: Duration) -> [String] {
        var pragmas = [
            // SQLite keeps the timeout in a C int (compared before converting: a huge duration's milliseconds overflow).
            "PRAGMA busy_timeout = \(busyTimeout >= .milliseconds(Int32.max) ? Int64(Int32.max) : max(0, busyTimeout.milliseconds))",
            "PRAGMA foreign_keys = ON",
            "PRAGMA synchronous = FULL",
            // Statement journals (an UPDATE of many rows in a transaction keeps one) and temporary b-trees in memory,
            // not in temporary files: they are bounded by one statement, and a file costs a write per page.
            "PRAGMA temp_store = MEMORY",
        ]
        if readOnly {
            pragmas.append("PRAGMA query_only = ON")
        } else {
            // The one writer keeps more pages than SQLite's 2 MB default: a batch of updates (a master-key rotation, a
            // usage flush) walks the primary key's index and the table, and a miss is a read from the file.
            pragmas.append("PRAGMA cache_size = -\(writerCacheKilobytes)")
        }
        return pragmas
    }

    public func read<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await answered { try await self.readers.withConnection { connection in try await body(connection.sql(queryLogLevel: nil)) } }
    }

    public func read<R: Sendable>(consistent: Bool, _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        guard consistent else { return try await read(body) }
        return try await answered {
            try await self.readers.withConnection { connection in
                let db = connection.sql(queryLogLevel: nil)
                // A deferred transaction reads one snapshot of the file (WAL) from its first statement on.
                return try await db.inTransaction("BEGIN") { try await body(db) }
            }
        }
    }

    public func transaction<R: Sendable>(changesState: Bool, _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        let (result, seq) = try await answered {
            try await self.writer.withConnection { connection -> (R, Int64?) in
                let db = connection.sql(queryLogLevel: nil)
                return try await db.inTransaction("BEGIN IMMEDIATE") {
                    // A transaction that wrote nothing (a failed sign-in, an unchanged save) is no reason for caches to reload.
                    let before = changesState ? try await Self.totalChanges(db) : 0
                    let collector = ChangeCollector()
                    let result = try await ChangeCollector.$current.withValue(collector) { try await body(db) }
                    let wrote = changesState ? try await Self.totalChanges(db) != before : false
                    // What changed is logged in the same transaction: a rolled-back change leaves no entry.
                    let seq = wrote ? try await ChangeLog.append(collector, on: db) : nil
                    return (result, seq)
                }
            }
        }
        if let seq { await changes.committed(seq) }
        return result
    }

    /// Runs an operation within its deadline (a caller waiting for the writer behind a long write, another process's
    /// write lock held past the busy timeout), with SQLite's errors said as the store's: a full disk is
    /// ``StoreError/storageFull(path:)``, a lock held too long ``StoreError/unavailable(reason:)``.
    ///
    /// A statement SQLite is already running is not interrupted at the deadline: it ends on its own (a write may then
    /// still commit, after its caller was told it did not answer).
    private func answered<R: Sendable>(_ limit: Duration? = nil, _ body: @escaping @Sendable () async throws -> R) async throws -> R {
        do {
            return try await Deadline.run(limit ?? DatabaseDeadline.override ?? timeouts.operation, what: "the database file", body)
        } catch let error as SQLiteError {
            switch error.reason {
            case .full: throw StoreError.storageFull(path: path)
            case .busy, .busyTimeout, .busyInRecovery, .busyInSnapshot, .locked, .lockedBySharedCache, .ioError, .ioErrorFailedWrite, .ioErrorFailedSync:
                throw StoreError.unavailable(reason: String(describing: error))
            default: throw error
            }
        }
    }

    public func ping() async -> Bool {
        (try? await answered(timeouts.ping) { try await self.readers.withConnection { connection in
            try await connection.sql(queryLogLevel: nil).raw("SELECT 1 AS ok").first() != nil
        } }) ?? false
    }

    /// One process owns the file's server; another process (the CLI) is seen by the caches' age rule.
    public func announce(_ channel: AnnouncementChannel, _ payload: String) async {}

    public func listen(_ channel: AnnouncementChannel, _ handler: @escaping @Sendable (String) -> Void) {}

    /// A lock file beside the database, held with `flock` (released by the kernel if the process dies).
    public func counterWrite<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await transaction(changesState: false, body)
    }

    public func withExclusiveLock<R: Sendable>(_ name: String, _ body: @Sendable () async throws -> R) async throws -> R {
        let lockPath = path + "." + name + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StoreError.databaseUnavailable(path: lockPath, reason: "cannot open the lock file: \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            closeDescriptor(fd)
            throw StoreError.lockHeld(operation: name)
        }
        defer {
            flock(fd, LOCK_UN)
            closeDescriptor(fd)
        }
        return try await body()
    }

    /// The rows this connection has written since it opened (SQLite's `total_changes()`).
    static func totalChanges(_ db: any SQLDatabase) async throws -> Int {
        try await db.raw("SELECT total_changes() AS n").first()?.decode(column: "n", as: Int.self) ?? 0
    }

    public func tableExists(_ name: String) async throws -> Bool {
        try await read { db in
            try await db.raw("SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = \(bind: name)").first() != nil
        }
    }

    /// Closes every connection: idle ones at once, one in use when its holder gives it back (within the operation's
    /// deadline). The pools close one after the other: SQLite moves the WAL into the file when its last connection
    /// closes alone, and two closing together may each leave it to the other.
    public func close() async {
        await writer.close(within: timeouts.operation)
        await readers.close(within: timeouts.operation)
    }
}

/// The threads of one engine's connections, stopped when the last holder (the engine, its pools' open and close)
/// lets go: a connection can be closed as long as anything can still hand it back.
final class SQLiteThreads: Sendable {
    let pool: NIOThreadPool

    init(count: Int) {
        pool = NIOThreadPool(numberOfThreads: count)
        pool.start()
    }

    deinit {
        pool.shutdownGracefully { _ in }
    }
}

/// `close(2)`, out of reach of ``SQLiteEngine/close()``'s name.
private func closeDescriptor(_ fd: Int32) {
    _ = close(fd)
}
