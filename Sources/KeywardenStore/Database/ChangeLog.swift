import Foundation
import KeywardenCore
import SQLKit
import Synchronization

/// What a committed change touched, so caches reload only that: one workspace, the platform's cards and keys, one
/// token, every token, or (when a write named nothing) everything.
public enum ChangeScope: Sendable, Hashable, CustomStringConvertible {
    /// A workspace: its plan, keys, bindings, members.
    case workspace(String)
    /// A key, by id (the workspace or platform holding it reloads).
    case credential(String)
    /// The platform's cards, keys and settings.
    case platform
    /// One token.
    case token(String)
    /// Every token (a member's tokens revoked).
    case tokens
    /// Something no cache holds (webhooks, events, SMTP settings).
    case uncached
    /// Anything: the safety net for a write that named no scope.
    case everything

    /// The scope holding a key of `scope`.
    public init(_ scope: Scope) {
        self = scope.workspaceID.map(ChangeScope.workspace) ?? .platform
    }

    /// The stored form: `w:<id>`, `c:<id>`, `p`, `t:<id>`, `t`, `-`, `*`.
    public var description: String {
        switch self {
        case .workspace(let id): "w:" + id
        case .credential(let id): "c:" + id
        case .platform: "p"
        case .token(let id): "t:" + id
        case .tokens: "t"
        case .uncached: "-"
        case .everything: "*"
        }
    }

    /// Reads a stored scope; anything unknown (a newer Keywarden's scope) reads as `everything`.
    public init(stored: String) {
        let (kind, id) = (stored.prefix(2), String(stored.dropFirst(2)))
        switch kind {
        case "w:": self = .workspace(id)
        case "c:": self = .credential(id)
        case "t:": self = .token(id)
        default:
            switch stored {
            case "p": self = .platform
            case "t": self = .tokens
            case "-": self = .uncached
            default: self = .everything
            }
        }
    }
}

/// The scopes the current transaction's writes touched. Repositories call ``ChangeLog/touch(_:)`` next to each write;
/// the engine records what was collected in the same transaction.
public final class ChangeCollector: Sendable {
    /// The collector of the transaction running in this task, if any.
    @TaskLocal public static var current: ChangeCollector?

    /// More distinct scopes than this in one transaction (a master-key rotation's batch) are recorded as `everything`.
    static let maximumScopes = 256
    private let scopes = Mutex<Set<ChangeScope>>([])

    public init() {}

    func add(_ scope: ChangeScope) {
        scopes.withLock { _ = $0.insert(scope) }
    }

    /// What to record: the scopes touched, `everything` when none was named or too many were.
    var recorded: [ChangeScope] {
        let touched = scopes.withLock { $0 }
        if touched.isEmpty || touched.count > Self.maximumScopes || touched.contains(.everything) { return [.everything] }
        let cached = touched.filter { $0 != .uncached }
        return cached.isEmpty ? [.uncached] : cached.sorted { $0.description < $1.description }
    }
}

/// The ordered log of committed changes (`change_log`): one row per scope a transaction touched, written in that
/// transaction, numbered without gaps (writes are serialized), so every instance applies each change once, in order.
public struct ChangeLog: Sendable {
    public static let table = "change_log"

    public init() {}

    /// Notes that the running transaction's write touched `scope` (nothing outside a transaction).
    public static func touch(_ scope: ChangeScope) {
        ChangeCollector.current?.add(scope)
    }

    /// Appends the collected scopes; returns the last sequence number written.
    static func append(_ collector: ChangeCollector, on db: any SQLDatabase) async throws -> Int64 {
        var seq = try await latest(on: db)
        let at = Timestamp.string(Date())
        for scope in collector.recorded {
            seq += 1
            try await db.insert(into: table).columns("seq", "scope", "at").values(SQLBind(seq), SQLBind(scope.description), SQLBind(at)).run()
        }
        return seq
    }

    /// The newest sequence number (0 for an empty log): one read of the primary key's end.
    public static func latest(on db: any SQLDatabase) async throws -> Int64 {
        let row = try await db.select().column(SQLFunction("max", args: SQLColumn("seq")), as: "seq").from(table).first()
        guard let row, try !row.decodeNil(column: "seq") else { return 0 }
        return Int64(try row.decode(column: "seq", as: Int.self))
    }

    /// Changes after `seq`, oldest first, at most `limit`.
    public static func since(_ seq: Int64, limit: Int, on db: any SQLDatabase) async throws -> [(seq: Int64, scope: ChangeScope)] {
        try await db.select().columns("seq", "scope").from(table).where("seq", .greaterThan, SQLBind(Int(seq))).orderBy("seq").limit(limit).all()
            .map { (Int64(try $0.decode(column: "seq", as: Int.self)), ChangeScope(stored: try $0.decode(column: "scope", as: String.self))) }
    }

    /// Drops all but the newest `keep` entries (by number, so what remains has no holes; the newest always stays,
    /// the numbering continues from it). An instance further behind reloads everything.
    public static func compact(keeping keep: Int, on db: any SQLDatabase) async throws {
        let newest = try await latest(on: db)
        try await db.delete(from: table).where("seq", .lessThanOrEqual, SQLBind(Int(newest) - max(1, keep))).run()
    }
}
