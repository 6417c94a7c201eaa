import SQLKit
import Synchronization

/// A database Keywarden stores its state in: reads on any pooled connection, writes one at a time in a transaction.
///
/// Repositories write their queries with SQLKit's builders against the `SQLDatabase` they are handed,
/// so the same code runs on every engine. Where engines differ, the difference lives in the engine.
public protocol DatabaseEngine: Sendable {
    /// A short name for logs and `/readyz` (`sqlite`, `postgres`).
    var name: String { get }

    /// Where the database is, for people: the file, or the URL without its password.
    var location: String { get }

    /// Runs `body` on a connection for reading.
    func read<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R

    /// Runs `body` on a connection for reading, every statement seeing the same committed state (one read
    /// transaction), for a cached part read in several statements.
    func read<R: Sendable>(consistent: Bool, _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R

    /// Runs `body` in a transaction; commits when it returns, rolls back when it throws.
    /// Writes are serialized, so read-then-write inside one transaction (such as the audit chain) is safe.
    ///
    /// `changesState: false` marks a write no cache depends on (the usage ledger), so caches are not reloaded for it.
    func transaction<R: Sendable>(changesState: Bool, _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R

    /// Runs counter updates: statements that each stand alone (a conditional `UPDATE` on one row, an `INSERT` that
    /// ignores a conflict), that no cache depends on and that need no ordering with other writes. On PostgreSQL each
    /// statement commits on its own, without the write lock every other transaction takes (the row's own lock is the
    /// only one needed), so budget and rate counters do not queue the cluster's writes behind them; on SQLite it is an
    /// ordinary write transaction.
    func counterWrite<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R

    /// Runs `body` while holding an exclusive, cross-process lock named `name` (an operation that must run alone, such as
    /// a master-key rotation); throws ``StoreError/lockHeld(operation:)`` at once when another holder has it.
    func withExclusiveLock<R: Sendable>(_ name: String, _ body: @Sendable () async throws -> R) async throws -> R

    /// Tells every other instance on this database something (PostgreSQL `NOTIFY`); a single-file engine has no
    /// other instance to tell and does nothing. Delivery is best effort: receivers must also work without it.
    func announce(_ channel: AnnouncementChannel, _ payload: String) async

    /// Calls `handler` with what other instances announce on `channel` until the engine closes (nothing on SQLite).
    func listen(_ channel: AnnouncementChannel, _ handler: @escaping @Sendable (String) -> Void)

    /// Whether the database has a table named `name` (a first run has none).
    func tableExists(_ name: String) async throws -> Bool

    /// Whether the database answers a trivial query within ``DatabaseTimeouts/ping`` (for `/readyz`).
    func ping() async -> Bool

    /// This process, among the instances sharing the database (budget holds name the instance that owns them).
    var instanceID: String { get }

    /// Closes every connection; later calls fail.
    func close() async

    /// Counts this process's committed transactions, so caches know when to reload.
    var changes: ChangeCounter { get }
}

extension DatabaseEngine {
    /// Runs `body` in a transaction that changes state caches depend on.
    public func transaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await transaction(changesState: true, body)
    }
}

extension SQLDatabase {
    /// Runs `body` between `begin` (the engine's `BEGIN …`) and `COMMIT`, rolling back when it throws.
    func inTransaction<R>(_ begin: String, _ body: () async throws -> R) async throws -> R {
        try await raw("\(unsafeRaw: begin)").run()
        do {
            let result = try await body()
            try await raw("COMMIT").run()
            return result
        } catch {
            try? await raw("ROLLBACK").run()
            throw error
        }
    }
}

/// How long database work may take before its caller is answered with ``StoreError/unavailable(reason:)``.
public struct DatabaseTimeouts: Sendable, Equatable {
    /// One operation: the wait for a connection, its statements and the commit (`KEYWARDEN_DATABASE_TIMEOUT`). On
    /// PostgreSQL the server also stops a statement or a lock wait that runs past it.
    public var operation: Duration
    /// Opening a connection to PostgreSQL (by default the operation's deadline: an overloaded server may be slow to
    /// start a session).
    public var connect: Duration
    /// The check behind `/readyz`, which answers within 2 s.
    public var ping: Duration

    public init(operation: Duration = .seconds(10), connect: Duration? = nil, ping: Duration = .seconds(1)) {
        self.operation = operation
        self.connect = min(connect ?? operation, operation)
        self.ping = ping
    }
}

/// Which connections database work runs on, where an engine keeps several (PostgreSQL).
public enum DatabaseLane: Sendable, Equatable {
    /// Management work, reads, the ledger.
    case general
    /// The change follower: its passes never wait for a connection behind other work.
    case following

    /// The lane of the work running in this task.
    @TaskLocal public static var current: DatabaseLane = .general
}

/// What instances tell each other through the database.
public enum AnnouncementChannel: String, Sendable {
    /// A committed change caches depend on (the payload names the instance that made it).
    case changes = "keywarden_changes"
    /// The gateway's shared moments: a key resting after a vendor's 429 or a refusal (see the gateway's `Cooldowns`),
    /// a workspace's calls moving to or back from the platform's key (`fallback|…`).
    case rests = "keywarden_rests"
}

/// A counter of this process's committed write transactions, and who is told of each (the resolution state, which
/// applies the change before the writing call returns, so the change is used by the next request).
public final class ChangeCounter: Sendable {
    private let counter = Atomic<UInt64>(0)
    private let handler = Mutex<(@Sendable (Int64) async -> Void)?>(nil)

    public init() {}

    public var value: UInt64 { counter.load(ordering: .acquiring) }

    public func bump() { counter.add(1, ordering: .releasing) }

    /// Sets what runs after each committed change, with the change log's sequence number.
    public func onCommit(_ body: @escaping @Sendable (Int64) async -> Void) {
        handler.withLock { $0 = body }
    }

    /// Called by an engine after a commit that changed state.
    func committed(_ seq: Int64) async {
        bump()
        if let body = handler.withLock({ $0 }) { await body(seq) }
    }
}
