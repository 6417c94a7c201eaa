import Foundation
import KeywardenCore
import KeywardenVault
import SQLKit

/// The `vault_scope_keys` table: each workspace's (and the platform's) key-encryption keys, wrapped by the master key.
///
/// A scope may have several: the newest seals, every one opens the data keys that name it. Deleting a workspace
/// deletes its keys in the same transaction (its secrets are shredded).
public struct ScopeKeyRepository: Sendable {
    package static let table = "vault_scope_keys"

    public init() {}

    /// A directory over `db`: a key a seal makes is stored in the caller's transaction.
    public func directory(on db: any SQLDatabase) -> Directory { Directory(db: db, engine: nil) }

    /// A directory over `engine`: each read on a pooled connection, a key made in a transaction of its own.
    public func directory(engine: any DatabaseEngine) -> Directory { Directory(db: nil, engine: engine) }

    /// The vault's view of the table, on one connection or on the engine.
    public struct Directory: ScopeKeyDirectory {
        let db: (any SQLDatabase)?
        let engine: (any DatabaseEngine)?
        private let repository = ScopeKeyRepository()

        public func activeKey(for scope: Scope) async throws -> WrappedScopeKey? {
            if let db { return try await repository.activeKey(for: scope, on: db) }
            guard let engine else { return nil }
            return try await engine.read { db in try await repository.activeKey(for: scope, on: db) }
        }

        public func key(id: String) async throws -> WrappedScopeKey? {
            if let db { return try await repository.key(id: id, on: db) }
            guard let engine else { return nil }
            return try await engine.read { db in try await repository.key(id: id, on: db) }
        }

        public func insert(_ key: WrappedScopeKey) async throws {
            if let db { return try await repository.insert(key, on: db) }
            guard let engine else { return }
            try await engine.transaction { db in try await repository.insert(key, on: db) }
        }
    }

    static let columns = ["id", "scope", "master_key_id", "wrapped_key", "created_at"]

    /// The newest key of `scope`.
    public func activeKey(for scope: Scope, on db: any SQLDatabase) async throws -> WrappedScopeKey? {
        try await db.select().columns(Self.columns).from(Self.table).where("scope", .equal, scope.description)
            .orderBy("created_at", .descending).orderBy("id", .descending).limit(1).first().map(Self.decode)
    }

    /// Every key of `scope`, newest first.
    public func keys(of scope: Scope, on db: any SQLDatabase) async throws -> [WrappedScopeKey] {
        try await db.select().columns(Self.columns).from(Self.table).where("scope", .equal, scope.description)
            .orderBy("created_at", .descending).orderBy("id", .descending).all().map(Self.decode)
    }

    /// The key with this id.
    public func key(id: String, on db: any SQLDatabase) async throws -> WrappedScopeKey? {
        try await db.select().columns(Self.columns).from(Self.table).where("id", .equal, id).first().map(Self.decode)
    }

    /// Stores a new key.
    public func insert(_ key: WrappedScopeKey, on db: any SQLDatabase) async throws {
        // No cache holds wrapped workspace keys (the vault finds them by id when it misses): no instance reloads for it.
        ChangeLog.touch(.uncached)
        try await db.insert(into: Self.table).columns(Self.columns + ["updated_at"])
            .values(SQLBind(key.id), SQLBind(key.scope.description), SQLBind(key.masterKeyID), SQLBind(Data(key.wrapped)),
                    SQLBind(key.createdAt), SQLBind(Timestamp.now))
            .run()
    }

    /// Replaces many keys' wrappings in few statements (a rotation's batch), each only if it is still wrapped as it was
    /// read; returns how many changed.
    public func replaceWrappings(_ pairs: [(previous: WrappedScopeKey, rewrapped: WrappedScopeKey)], on db: any SQLDatabase) async throws -> Int {
        guard !pairs.isEmpty else { return 0 }
        ChangeLog.touch(.uncached)
        let rowsPerStatement = StatementLimits.rowsPerStatement(bindingColumns: 4, others: 1)
        var changed = 0
        for start in stride(from: 0, to: pairs.count, by: rowsPerStatement) {
            let chunk = pairs[start..<min(start + rowsPerStatement, pairs.count)]
            // VALUES columns are column1, column2, … on SQLite and PostgreSQL alike.
            let rows: [SQLQueryString] = chunk.map {
                "(\(bind: $0.previous.id), \(bind: $0.previous.masterKeyID), \(bind: $0.rewrapped.masterKeyID), \(bind: Data($0.rewrapped.wrapped)))"
            }
            let query: SQLQueryString = """
                UPDATE \(ident: Self.table) SET master_key_id = v.column3, wrapped_key = v.column4, updated_at = \(bind: Timestamp.now)
                FROM (VALUES \(rows.joined(separator: ", "))) AS v
                WHERE \(ident: Self.table).id = v.column1 AND \(ident: Self.table).master_key_id = v.column2
                RETURNING \(ident: Self.table).id
                """
            changed += try await db.raw(query).all().count
        }
        return changed
    }

    /// Up to `limit` keys not wrapped by `masterKeyID`, after the id `after` (a rotation's walk); keys under a
    /// workspace's own KMS key are not the master key's and are left out.
    public func notWrapped(by masterKeyID: String, after: String, limit: Int, on db: any SQLDatabase) async throws -> [WrappedScopeKey] {
        try await db.select().columns(Self.columns).from(Self.table)
            .where("master_key_id", .notEqual, masterKeyID).where("master_key_id", .notLike, Self.customerWrapped)
            .where("id", .greaterThan, after)
            .orderBy("id").limit(limit).all().map(Self.decode)
    }

    /// The `LIKE` pattern of keys wrapped by a workspace's own KMS key.
    public static let customerWrapped = CustomerKeys.prefix + "%"

    /// How many keys each master key wraps (keys under workspaces' own KMS keys are not counted).
    public func countByMasterKey(on db: any SQLDatabase) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try await db.select().column("master_key_id").column(SQLFunction("count", args: SQLLiteral.all), as: "n")
            .from(Self.table).where("master_key_id", .notLike, Self.customerWrapped).groupBy("master_key_id").all() {
            counts[try row.decode(column: "master_key_id", as: String.self)] = try row.decode(column: "n", as: Int.self)
        }
        return counts
    }

    /// Deletes every key of `scope` (shredding its secrets); returns how many.
    @discardableResult
    public func deleteAll(of scope: Scope, on db: any SQLDatabase) async throws -> Int {
        try await db.delete(from: Self.table).where("scope", .equal, scope.description).returning("id").all().count
    }

    static func decode(_ row: any SQLRow) throws -> WrappedScopeKey {
        let scopeText = try row.decode(column: "scope", as: String.self)
        // A row whose scope does not parse opens nothing (its data keys read as unreadable, as any damaged row).
        guard let scope = Scope(scopeText) else { throw VaultError.unreadable(.malformed) }
        return WrappedScopeKey(
            id: try row.decode(column: "id", as: String.self), scope: scope,
            masterKeyID: try row.decode(column: "master_key_id", as: String.self),
            wrapped: Array(try row.decode(column: "wrapped_key", as: Data.self)),
            createdAt: try row.decode(column: "created_at", as: String.self)
        )
    }
}
