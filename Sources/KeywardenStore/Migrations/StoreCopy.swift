import Logging
import Foundation
import SQLKit

/// Copies every row of one store's database into another's (a SQLite data directory into an empty PostgreSQL
/// database, when an operator outgrows one machine): sealed secrets byte for byte (the keyring does not change),
/// the audit chain as it is (it verifies on the target), usage kept. Resumable: the rows copied per table are
/// recorded in the target in the same transaction as the rows, so a second run continues where the first stopped.
/// A target that already holds data of its own is refused.
public struct StoreCopy: Sendable {
    /// The tables copied, parents before children, each with the columns that order its rows.
    public static let tables: [(name: String, order: [String])] = [
        ("providers", ["id"]), ("plans", ["name"]), ("workspaces", ["id"]), ("vault_scope_keys", ["id"]), ("credentials", ["id"]),
        ("vault_secrets", ["owner_id", "field"]),
        ("vault_rotations", ["id"]), ("members", ["id"]), ("tokens", ["id"]), ("audit_log", ["seq"]), ("events", ["id"]),
        ("webhooks", ["id"]), ("deliveries", ["id"]), ("settings", ["key"]), ("bindings", ["workspace_id", "consumer", "modality"]),
        ("usage", ["id"]), ("sessions", ["digest"]), ("fallback_engagements", ["workspace_id", "provider_id"]),
        ("budget_spend", ["workspace_id", "period", "scope"]), ("rate_windows", ["workspace_id", "minute"]),
        ("routes", ["owner", "name"]), ("custody_log", ["workspace_id", "seq"]),
    ]
    /// The target's record of what was copied.
    static let progressTable = "keywarden_store_copy"

    public let batchSize: Int

    public init(batchSize: Int = 500) {
        self.batchSize = max(1, batchSize)
    }

    /// Where a copy stands.
    public struct Progress: Sendable {
        public var table: String
        public var copied: Int
        public var total: Int
    }

    /// What a copy did.
    public struct Report: Sendable {
        public var rows: [String: Int] = [:]
        public var resumed = false
    }

    /// Why a copy was refused.
    public enum CopyError: Error, CustomStringConvertible, Equatable {
        case targetNotEmpty(table: String)
        case schemaMismatch(source: Int, target: Int)
        case sourceChanged(table: String, source: Int, target: Int)

        public var description: String {
            switch self {
            case .targetNotEmpty(let table):
                return "the target database already holds data (table \(table)) that no earlier migrate-store put there; use an empty database"
            case .schemaMismatch(let source, let target):
                return "the source has schema version \(source) and the target \(target); run the same keywarden on both"
            case .sourceChanged(let table, let source, let target):
                return "table \(table) has \(source) rows in the source and \(target) in the target: the source changed during the copy; stop every instance that uses it and copy again into an empty database"
            }
        }
    }

    /// Copies `source` into `target` (whose schema is brought to this build's version first).
    public func run(from source: any DatabaseEngine, to target: any DatabaseEngine, logger: Logger,
                    progress: @Sendable (Progress) -> Void = { _ in }) async throws -> Report {
        // Maintenance: a batch (or a count of a large table) may take longer than the deadline of ordinary work.
        try await DatabaseDeadline.$override.withValue(.seconds(600)) {
            try await copy(from: source, to: target, logger: logger, progress: progress)
        }
    }

    private func copy(from source: any DatabaseEngine, to target: any DatabaseEngine, logger: Logger,
                      progress: @Sendable (Progress) -> Void) async throws -> Report {
        try await Migrator().migrate(target, logger: logger)
        let (sourceVersion, targetVersion) = (try await Migrator().appliedVersion(source), try await Migrator().appliedVersion(target))
        guard sourceVersion == targetVersion else { throw CopyError.schemaMismatch(source: sourceVersion, target: targetVersion) }

        var report = Report()
        let done = try await prepareProgress(target, source: try await identity(of: source), report: &report)
        let types = try await columnTypes(target)
        for (table, order) in Self.tables {
            let total = try await count(table, on: source)
            var copied = done[table] ?? 0
            progress(Progress(table: table, copied: copied, total: total))
            while copied < total {
                let offset = copied
                let rows = try await source.read { db in
                    var select = db.select().column("*").from(table)
                    for column in order { select = select.orderBy(column) }
                    return try await select.limit(self.batchSize).offset(offset).all()
                }
                guard !rows.isEmpty else { break }
                let columns = types[table] ?? [:]
                let names = rows[0].allColumns.filter { columns[$0] != nil }
                let values: [[any SQLExpression]] = try rows.map { row in try names.map { try Self.value(row, column: $0, type: columns[$0] ?? "text") } }
                let next = copied + rows.count
                let rowsPerInsert = StatementLimits.rowsPerStatement(bindingColumns: names.count)
                try await target.transaction(changesState: false) { db in
                    for start in stride(from: 0, to: values.count, by: rowsPerInsert) {
                        var insert = db.insert(into: table).columns(names)
                        for row in values[start..<min(start + rowsPerInsert, values.count)] { insert = insert.values(row) }
                        try await insert.ignoringConflicts().run()
                    }
                    try await db.update(Self.progressTable).set("copied", to: SQLBind(next)).where("table_name", .equal, table).run()
                }
                copied = next
                progress(Progress(table: table, copied: copied, total: total))
            }
            report.rows[table] = copied
        }
        // Rows are read page by page: a source that changed meanwhile (an instance still running) shows in the counts.
        for (table, _) in Self.tables {
            let (inSource, inTarget) = (try await count(table, on: source), try await count(table, on: target))
            guard inSource == inTarget else { throw CopyError.sourceChanged(table: table, source: inSource, target: inTarget) }
        }
        return report
    }

    /// What names a source store: the hash of its first audit entry (written when it was created).
    func identity(of source: any DatabaseEngine) async throws -> String {
        try await source.read { db in
            try await db.select().column("hash").from("audit_log").orderBy("seq").limit(1).first()?.decode(column: "hash", as: String.self) ?? ""
        }
    }

    /// The target's record of copied rows; creates it on a first run, refusing a target with data of its own (or
    /// the data of another source).
    func prepareProgress(_ target: any DatabaseEngine, source: String, report: inout Report) async throws -> [String: Int] {
        let existing = try await !target.tableExists(Self.progressTable) ? nil : target.read { db in
            try await db.select().columns("table_name", "copied", "source").from(Self.progressTable).all()
                .map { (try $0.decode(column: "table_name", as: String.self), try $0.decode(column: "copied", as: Int.self),
                        try $0.decode(column: "source", as: String.self)) }
        }
        if let existing {
            if let other = existing.first(where: { $0.2 != source }) { throw CopyError.targetNotEmpty(table: other.0) }
            report.resumed = existing.contains { $0.1 > 0 }
            return Dictionary(existing.map { ($0.0, $0.1) }) { $1 }
        }
        for (table, _) in Self.tables where try await count(table, on: target) > 0 {
            throw CopyError.targetNotEmpty(table: table)
        }
        try await target.transaction(changesState: false) { db in
            try await db.create(table: Self.progressTable).ifNotExists()
                .column("table_name", type: .text, .primaryKey(autoIncrement: false))
                .column("copied", type: .bigint, .notNull, .default(0))
                .column("source", type: .text, .notNull)
                .run()
            for (table, _) in Self.tables {
                try await db.insert(into: Self.progressTable).columns("table_name", "copied", "source")
                    .values(SQLBind(table), SQLBind(0), SQLBind(source)).run()
            }
        }
        return [:]
    }

    func count(_ table: String, on engine: any DatabaseEngine) async throws -> Int {
        try await engine.read { db in
            try await db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n").from(table).first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }

    /// Each table's columns and their types on the target (`text`, `bigint`, `boolean`, `bytea`, …), from the catalog
    /// of the target engine: a SQLite integer 0/1 becomes a boolean where the target column is one.
    func columnTypes(_ target: any DatabaseEngine) async throws -> [String: [String: String]] {
        try await target.read { db in
            var types: [String: [String: String]] = [:]
            if target.name == "postgres" {
                let rows = try await db.raw("SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema()").all()
                for row in rows {
                    types[try row.decode(column: "table_name", as: String.self), default: [:]][try row.decode(column: "column_name", as: String.self)] =
                        try row.decode(column: "data_type", as: String.self).lowercased()
                }
            } else {
                for (table, _) in Self.tables {
                    for row in try await db.raw("SELECT name, type FROM pragma_table_info(\(bind: table))").all() {
                        types[table, default: [:]][try row.decode(column: "name", as: String.self)] = try row.decode(column: "type", as: String.self).lowercased()
                    }
                }
            }
            return types
        }
    }

    /// A source value bound as the target column's type.
    static func value(_ row: any SQLRow, column: String, type: String) throws -> any SQLExpression {
        if try row.decodeNil(column: column) { return SQLLiteral.null }
        switch type {
        case "boolean": return SQLBind(try row.decode(column: column, as: Bool.self))
        case "bigint", "integer", "smallint": return SQLBind(try row.decode(column: column, as: Int.self))
        case "bytea", "blob": return SQLBind(try row.decode(column: column, as: Data.self))
        case "double precision", "real", "numeric": return SQLBind(try row.decode(column: column, as: Double.self))
        default: return SQLBind(try row.decode(column: column, as: String.self))
        }
    }
}
