import Foundation
import KeywardenCore
import SQLKit

/// The `usage` table: one row per gateway call, written in batches.
public struct UsageRepository: Sendable {
    package static let table = "usage"
    static let columns = [
        "id", "at", "workspace_id", "provider_id", "model", "credential_id", "source", "modality", "consumer",
        "status", "latency_ms", "tokens_in", "tokens_out", "characters", "milli_credits", "attempts", "hold_id",
    ]
    /// Rows per INSERT statement (17 binds each, well under SQLite's limit of 32,766).
    static let rowsPerStatement = 500

    public init() {}

    /// Inserts a batch of records in the caller's transaction; a record whose id is already stored is skipped.
    public func insert(_ records: [UsageRecord], on db: any SQLDatabase) async throws {
        for start in stride(from: 0, to: records.count, by: Self.rowsPerStatement) {
            var insert = db.insert(into: Self.table).columns(Self.columns)
            for record in records[start..<min(start + Self.rowsPerStatement, records.count)] {
                insert = insert.values(Self.binds(record))
            }
            try await insert.ignoringConflicts(with: ["id"]).run()
        }
    }

    /// What one workspace spent in a period and scope after a batch settled holds there.
    public struct Settled: Sendable, Equatable {
        public let workspaceID: String
        public let period: String
        public let scope: String
        public let spent: Int
        public let announced: Int
    }

    /// Inserts records and settles the budget holds they name, each statement on its own (PostgreSQL; autocommit): the
    /// rows of a statement and the settles of their holds commit together or not at all. A row already stored (a batch
    /// written again after its first answer was lost) is skipped and settles nothing, so a hold's cost is counted once.
    /// A hold that was given back because its instance was taken for dead adds its cost and gives back nothing more.
    /// Returns the spending after each settle.
    public func insertSettlingHolds(_ records: [UsageRecord], on db: any SQLDatabase) async throws -> [Settled] {
        var settled: [Settled] = []
        for start in stride(from: 0, to: records.count, by: Self.rowsPerStatement) {
            let chunk = records[start..<min(start + Self.rowsPerStatement, records.count)]
            var values: [SQLQueryString] = []
            for record in chunk { values.append("(\(binds: Self.values(record)))") }
            let rows = try await db.raw("""
                WITH new_rows AS (
                    INSERT INTO usage (\(idents: Self.columns, joinedBy: ", ")) VALUES \(SQLList(values))
                    ON CONFLICT (id) DO NOTHING RETURNING hold_id, milli_credits
                ), settled AS (
                    DELETE FROM budget_holds h USING new_rows n WHERE h.id = n.hold_id
                    RETURNING h.workspace_id, h.period, h.scope, h.amount_milli, h.reclaimed, n.milli_credits
                )
                UPDATE budget_spend b
                SET spent_milli = b.spent_milli + s.cost,
                    reserved_milli = CASE WHEN b.reserved_milli > s.held THEN b.reserved_milli - s.held ELSE 0 END
                FROM (SELECT workspace_id, period, scope, sum(milli_credits) AS cost,
                             sum(CASE WHEN reclaimed THEN 0 ELSE amount_milli END) AS held
                      FROM settled GROUP BY workspace_id, period, scope) s
                WHERE b.workspace_id = s.workspace_id AND b.period = s.period AND b.scope = s.scope
                RETURNING b.workspace_id, b.period, b.scope, b.spent_milli, b.announced
                """).all()
            for row in rows {
                settled.append(Settled(workspaceID: try row.decode(column: "workspace_id", as: String.self), period: try row.decode(column: "period", as: String.self),
                                       scope: try row.decode(column: "scope", as: String.self), spent: try row.decode(column: "spent_milli", as: Int.self),
                                       announced: try row.decode(column: "announced", as: Int.self)))
            }
        }
        return settled
    }

    /// One stored usage row, as exported.
    public struct Row: Sendable, Equatable {
        public let id: String
        public let at: String
        public let record: UsageRecord
    }

    /// Up to `limit` rows of `query`'s workspace and period (and `source`, when given), in time order, after `cursor`
    /// (the last row of the previous page: `at`, then `id`): pages that stay correct while calls are added.
    public func rows(_ query: UsageQuery, source: KeySource?, after cursor: (at: String, id: String)?, limit: Int, on db: any SQLDatabase) async throws -> [Row] {
        var select = Self.scoped(db.select().columns(Self.columns).from(Self.table), workspaceID: query.workspaceID, from: query.from, to: query.to)
        if let source { select = select.where("source", .equal, source.rawValue) }
        if let cursor {
            select = select.where(SQLGroupExpression([SQLColumn("at"), SQLColumn("id")]), .greaterThan,
                                  SQLGroupExpression([SQLBind(cursor.at), SQLBind(cursor.id)]))
        }
        return try await select.orderBy("at").orderBy("id").limit(limit).all().map(Self.decodeRow)
    }

    /// `select` narrowed to one workspace (when given) and a period (`from` inclusive, `to` exclusive): the one place the
    /// ledger's reads say which rows a report, an export or the request log covers.
    static func scoped(_ select: SQLSelectBuilder, workspaceID: String?, from: Date?, to: Date?) -> SQLSelectBuilder {
        var select = select
        if let workspaceID { select = select.where("workspace_id", .equal, workspaceID) }
        if let from { select = select.where("at", .greaterThanOrEqual, Timestamp.string(from)) }
        if let to { select = select.where("at", .lessThan, Timestamp.string(to)) }
        return select
    }

    static func binds(_ r: UsageRecord) -> [any SQLExpression] {
        values(r).map { SQLBind($0) }
    }

    /// A record's values, in the order of ``columns``. Text a caller chose (the model named in a request body, the
    /// consumer) is stored without NUL characters, which PostgreSQL's text cannot hold: one such row would otherwise
    /// make its whole batch fail on every round.
    static func values(_ r: UsageRecord) -> [any Encodable & Sendable] {
        [
            r.id, Timestamp.string(r.at), r.workspaceID, storable(r.providerID), r.model.map(storable), r.credentialID, r.source?.rawValue,
            r.modality.rawValue, r.consumer.map(storable), r.status, r.latencyMilliseconds, r.counts.inputTokens, r.counts.outputTokens,
            r.counts.characters, r.milliCredits, r.attempts, r.holdID,
        ]
    }

    /// `text` without NUL characters.
    static func storable(_ text: String) -> String {
        text.utf8.contains(0) ? String(text.unicodeScalars.filter { $0 != "\0" }.map(Character.init)) : text
    }

    /// Rows one statement writes (a batch of at most this many is written, and settles, together).
    public static var batchSize: Int { rowsPerStatement }

    /// Totals grouped by one dimension, over a time range and optionally one workspace.
    public func report(_ query: UsageQuery, on db: any SQLDatabase) async throws -> UsageReport {
        func filtered(_ select: SQLSelectBuilder) -> SQLSelectBuilder {
            Self.scoped(select.from(Self.table), workspaceID: query.workspaceID, from: query.from, to: query.to)
        }
        func sums(_ select: SQLSelectBuilder) -> SQLSelectBuilder {
            select
                .column(SQLFunction("COUNT", args: SQLLiteral.all), as: "requests")
                .column(SQLRaw("CAST(COALESCE(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), 0) AS BIGINT)"), as: "errors")
                .column(SQLRaw("CAST(COALESCE(SUM(tokens_in), 0) AS BIGINT)"), as: "tokens_in")
                .column(SQLRaw("CAST(COALESCE(SUM(tokens_out), 0) AS BIGINT)"), as: "tokens_out")
                .column(SQLRaw("CAST(COALESCE(SUM(characters), 0) AS BIGINT)"), as: "characters")
                .column(SQLRaw("CAST(COALESCE(SUM(milli_credits), 0) AS BIGINT)"), as: "milli_credits")
        }
        func totals(_ row: any SQLRow) throws -> UsageTotals {
            UsageTotals(
                requests: try row.decode(column: "requests", as: Int.self), errors: try row.decode(column: "errors", as: Int.self),
                inputTokens: try row.decode(column: "tokens_in", as: Int.self), outputTokens: try row.decode(column: "tokens_out", as: Int.self),
                characters: try row.decode(column: "characters", as: Int.self), milliCredits: try row.decode(column: "milli_credits", as: Int.self)
            )
        }
        let key = query.groupBy.expression
        let groups = try await sums(filtered(db.select().column(SQLRaw("COALESCE(\(key), '')"), as: "group_key")))
            .groupBy(SQLRaw("COALESCE(\(key), '')")).orderBy(SQLRaw("COALESCE(\(key), '')"))
            .all()
            .map { row in UsageGroup(key: try row.decode(column: "group_key", as: String.self), totals: try totals(row)) }
        let total = try await sums(filtered(db.select())).first().map(totals) ?? UsageTotals()
        return UsageReport(groups: groups, totals: total)
    }
}

extension UsageRepository {
    /// How many calls each of the given workspaces made at or after `since` (a workspace with none is absent).
    public func countByWorkspace(_ workspaceIDs: [String], since: Date, on db: any SQLDatabase) async throws -> [String: Int] {
        try await GroupedCount.byWorkspace(in: Self.table, workspaceIDs, on: db) { select in
            select.where("at", .greaterThanOrEqual, Timestamp.string(since))
        }
    }

    /// Calls per day split by a second dimension (for the usage charts): (day, series value, calls, credits).
    public func daily(_ query: UsageQuery, seriesBy: UsageQuery.GroupBy, on db: any SQLDatabase) async throws -> [(day: String, series: String, requests: Int, milliCredits: Int)] {
        var select = db.select()
            .column(SQLRaw("SUBSTR(at, 1, 10)"), as: "day")
            .column(SQLRaw("COALESCE(\(seriesBy.expression), '')"), as: "series")
            .column(SQLFunction("COUNT", args: SQLLiteral.all), as: "requests")
            .column(SQLRaw("CAST(COALESCE(SUM(milli_credits), 0) AS BIGINT)"), as: "milli_credits")
            .from(Self.table)
        select = Self.scoped(select, workspaceID: query.workspaceID, from: query.from, to: query.to)
        return try await select.groupBy(SQLRaw("SUBSTR(at, 1, 10)")).groupBy(SQLRaw("COALESCE(\(seriesBy.expression), '')"))
            .orderBy(SQLRaw("SUBSTR(at, 1, 10)")).all().map { row in
                (try row.decode(column: "day", as: String.self), try row.decode(column: "series", as: String.self),
                 try row.decode(column: "requests", as: Int.self), try row.decode(column: "milli_credits", as: Int.self))
            }
    }
}

/// What to report: a time range, an optional workspace, one grouping.
public struct UsageQuery: Sendable, Equatable {
    /// The dimension rows are grouped by.
    public enum GroupBy: String, Sendable, CaseIterable {
        case provider, source, model, day, key, workspace, modality, consumer

        /// The column (or expression) grouped on; fixed text, never from the request.
        var expression: String {
            switch self {
            case .provider: return "provider_id"
            case .source: return "source"
            case .model: return "model"
            case .day: return "SUBSTR(at, 1, 10)"
            case .key: return "credential_id"
            case .workspace: return "workspace_id"
            case .modality: return "modality"
            case .consumer: return "consumer"
            }
        }
    }

    public var workspaceID: String?
    public var from: Date?
    /// Exclusive.
    public var to: Date?
    public var groupBy: GroupBy

    public init(workspaceID: String?, from: Date?, to: Date?, groupBy: GroupBy) {
        self.workspaceID = workspaceID
        self.from = from
        self.to = to
        self.groupBy = groupBy
    }

    /// Parses a bound of the range: a day (`2026-11-22`; as `to`, the end of that day) or an RFC 3339 time.
    public static func time(_ text: String?, field: String, endOfDay: Bool) throws(KeywardenError) -> Date? {
        guard let text, !text.isEmpty else { return nil }
        let isDay = text.utf8.count == 10
        guard let date = RFC3339.date(text) else { throw KeywardenError.invalid(field, "\(field) is a day (2026-11-22) or an RFC 3339 time.") }
        // Years 1970 to 9999: what the ledger's timestamps can hold, so a far year is a clear 400, not a surprise.
        guard (0...253_402_300_799).contains(date.timeIntervalSince1970) else {
            throw KeywardenError.invalid(field, "\(field) must fall between 1970 and 9999.")
        }
        let bound = isDay && endOfDay ? date.addingTimeInterval(86_400) : date
        // The end of 9999's last day is past every time the ledger holds (and past what its text timestamps can say):
        // no bound at all.
        return bound.timeIntervalSince1970 >= 253_402_300_800 ? nil : bound
    }
}

/// Sums over a set of calls.
public struct UsageTotals: Sendable, Equatable {
    public var requests = 0
    /// Calls the client saw fail (status 400 or more).
    public var errors = 0
    public var inputTokens = 0
    public var outputTokens = 0
    public var characters = 0
    public var milliCredits = 0

    public init(requests: Int = 0, errors: Int = 0, inputTokens: Int = 0, outputTokens: Int = 0, characters: Int = 0, milliCredits: Int = 0) {
        self.requests = requests
        self.errors = errors
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.characters = characters
        self.milliCredits = milliCredits
    }

    public var credits: Double { Double(milliCredits) / 1000 }
}

/// One group of a report (`key` is "" for calls without that dimension, e.g. no key could be tried).
public struct UsageGroup: Sendable, Equatable {
    public let key: String
    public let totals: UsageTotals
}

public struct UsageReport: Sendable, Equatable {
    public let groups: [UsageGroup]
    public let totals: UsageTotals
}
