import KeywardenCore
import Logging
import SQLKit

/// Applies migrations in order and records each in `keywarden_schema_migrations`.
///
/// Each migration runs in its own transaction together with its record, so a failure leaves the
/// schema at the previous version. A database that has a version this build does not know is refused.
public struct Migrator: Sendable {
    public static let table = "keywarden_schema_migrations"

    public let migrations: [Migration]

    public init(migrations: [Migration] = Schema.migrations) {
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// The highest version this build knows.
    public var latestVersion: Int { migrations.last?.version ?? 0 }

    /// Applies every pending migration; returns the versions applied.
    @discardableResult
    public func migrate(_ engine: any DatabaseEngine, logger: Logger) async throws -> [Int] {
        // A migration may rewrite a large table: it is not held to the operation deadline of ordinary work.
        try await DatabaseDeadline.$override.withValue(.seconds(3600)) { try await migrateAll(engine, logger: logger) }
    }

    private func migrateAll(_ engine: any DatabaseEngine, logger: Logger) async throws -> [Int] {
        // Migrations are not changes caches follow (no cache exists before them; the change log may not exist yet).
        try await engine.transaction(changesState: false) { db in
            try await db.create(table: Self.table)
                .ifNotExists()
                .column("version", type: .bigint, .primaryKey(autoIncrement: false))
                .column("name", type: .text, .notNull)
                .column("applied_at", type: .text, .notNull)
                .run()
        }
        let current = try await appliedVersion(engine)
        guard current <= latestVersion else {
            throw StoreError.schemaTooNew(found: current, known: latestVersion)
        }
        var applied: [Int] = []
        for migration in migrations where migration.version > current {
            let didApply: Bool
            do {
                didApply = try await engine.transaction(changesState: false) { db in
                    // Re-check inside the write lock: another process (another instance) may have migrated meanwhile.
                    let done = try await db.select().column("version").from(Self.table)
                        .where("version", .equal, migration.version).first()
                    guard done == nil else { return false }
                    try await migration.apply(db)
                    try await db.insert(into: Self.table)
                        .columns("version", "name", "applied_at")
                        .values(SQLBind(migration.version), SQLBind(migration.name), SQLBind(Timestamp.now))
                        .run()
                    return true
                }
            } catch let error as StoreError {
                throw error
            } catch {
                throw StoreError.migrationFailed(version: migration.version, reason: String(describing: error))
            }
            guard didApply else { continue }
            logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            applied.append(migration.version)
        }
        return applied
    }

    /// The highest applied version, 0 for an empty database.
    public func appliedVersion(_ engine: any DatabaseEngine) async throws -> Int {
        try await engine.read { db in
            let row = try await db.select().column(SQLFunction("max", args: SQLColumn("version")), as: "v")
                .from(Self.table).first()
            return try row?.decodeNil(column: "v") == false ? try row?.decode(column: "v", as: Int.self) ?? 0 : 0
        }
    }
}
