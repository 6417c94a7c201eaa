import Foundation
import KeywardenCore
import SQLKit

/// What a workspace spent and holds reserved in one period and scope.
public struct BudgetSpend: Sendable, Equatable {
    public var spent: Int
    public var reserved: Int
    /// The highest threshold (80, 95, 100) already announced this period; 0 when none.
    public var announced: Int

    public init(spent: Int = 0, reserved: Int = 0, announced: Int = 0) {
        self.spent = spent
        self.reserved = reserved
        self.announced = announced
    }
}

/// The `budget_spend` table: one row per workspace, period and scope that every instance updates in place, each
/// change a single conditional statement, so a limit holds whatever the number of instances.
public struct BudgetRepository: Sendable {
    package static let table = "budget_spend"

    public init() {}

    // MARK: Holds (shared rows, PostgreSQL)

    /// Holds `amount` for one call when what is spent and held stays within `limit`, in one statement (one round trip):
    /// the period's row gains the hold under its row lock (created if it is the period's first), and the hold is
    /// recorded under `holdID` for `instanceID`. Whether it held.
    public func hold(_ holdID: String, workspaceID: String, period: String, scope: BudgetScope, amount: Int, limit: Int,
                     instanceID: String, on db: any SQLDatabase) async throws -> Bool {
        let rows = try await db.raw("""
            WITH spend AS (
                INSERT INTO budget_spend (workspace_id, period, scope, spent_milli, reserved_milli, announced)
                SELECT \(bind: workspaceID), \(bind: period), \(bind: scope.rawValue), 0, \(bind: amount), 0 WHERE \(bind: amount) <= \(bind: limit)
                ON CONFLICT (workspace_id, period, scope) DO UPDATE SET reserved_milli = budget_spend.reserved_milli + EXCLUDED.reserved_milli
                WHERE budget_spend.spent_milli + budget_spend.reserved_milli + EXCLUDED.reserved_milli <= \(bind: limit)
                RETURNING 1 AS held
            )
            INSERT INTO budget_holds (id, workspace_id, period, scope, amount_milli, instance_id, created_at, reclaimed)
            SELECT \(bind: holdID), \(bind: workspaceID), \(bind: period), \(bind: scope.rawValue), \(bind: amount), \(bind: instanceID),
                   \(unsafeRaw: Self.databaseNow), FALSE FROM spend
            RETURNING id
            """).all()
        return !rows.isEmpty
    }

    /// Settles a hold in one statement: gives it back (unless it was already reclaimed) and adds `cost`; the spending
    /// after it, or `nil` when the hold is not there (already settled: a retry after a lost answer changes nothing).
    public func settle(hold holdID: String, cost: Int, on db: any SQLDatabase) async throws -> BudgetSpend? {
        try await db.raw("""
            WITH hold AS (
                DELETE FROM budget_holds WHERE id = \(bind: holdID)
                RETURNING workspace_id, period, scope, CASE WHEN reclaimed THEN 0 ELSE amount_milli END AS held
            )
            UPDATE budget_spend b
            SET reserved_milli = CASE WHEN b.reserved_milli > hold.held THEN b.reserved_milli - hold.held ELSE 0 END,
                spent_milli = b.spent_milli + \(bind: cost)
            FROM hold WHERE b.workspace_id = hold.workspace_id AND b.period = hold.period AND b.scope = hold.scope
            RETURNING b.spent_milli, b.reserved_milli, b.announced
            """).first().map(Self.decode)
    }

    /// Notes that `instanceID` is alive, in the database's clock.
    public func heartbeat(instanceID: String, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO instances (id, seen_at) VALUES (\(bind: instanceID), \(unsafeRaw: Self.databaseNow))
            ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at
            """).run()
    }

    /// Gives back the holds of instances not seen for `deadAfter` seconds (and older than that: an instance's first
    /// holds may precede its first heartbeat), in one statement; they stay as reclaimed rows, so a late usage row still
    /// adds its cost. Forgets reclaimed holds and silent instances after a week. The number of holds given back.
    public func reclaimHolds(deadAfter: Int, on db: any SQLDatabase) async throws -> Int {
        let rows = try await db.raw("""
            WITH dead AS (
                UPDATE budget_holds SET reclaimed = TRUE
                WHERE NOT reclaimed AND created_at < \(unsafeRaw: Self.databaseNow) - \(bind: deadAfter)
                  AND instance_id NOT IN (SELECT id FROM instances WHERE seen_at >= \(unsafeRaw: Self.databaseNow) - \(bind: deadAfter))
                RETURNING workspace_id, period, scope, amount_milli
            ), total AS (
                SELECT workspace_id, period, scope, sum(amount_milli) AS amount, count(*) AS holds FROM dead GROUP BY workspace_id, period, scope
            )
            UPDATE budget_spend b SET reserved_milli = CASE WHEN b.reserved_milli > t.amount THEN b.reserved_milli - t.amount ELSE 0 END
            FROM total t WHERE b.workspace_id = t.workspace_id AND b.period = t.period AND b.scope = t.scope
            RETURNING t.holds
            """).all()
        try await db.raw("DELETE FROM budget_holds WHERE reclaimed AND created_at < \(unsafeRaw: Self.databaseNow) - 604800").run()
        try await db.raw("DELETE FROM instances WHERE seen_at < \(unsafeRaw: Self.databaseNow) - 604800").run()
        return try rows.reduce(0) { $0 + (try $1.decode(column: "holds", as: Int.self)) }
    }

    /// The database's clock in whole seconds since 1970 (PostgreSQL).
    static let databaseNow = "CAST(extract(epoch FROM now()) AS BIGINT)"

    /// Moves the announced threshold from `from` to `to`; whether this call did (of several instances, one does).
    public func announce(workspaceID: String, period: String, scope: BudgetScope, from: Int, to: Int, on db: any SQLDatabase) async throws -> Bool {
        let rows = try await db.update(Self.table).set("announced", to: SQLBind(to))
            .where("workspace_id", .equal, workspaceID).where("period", .equal, period).where("scope", .equal, scope.rawValue)
            .where("announced", .equal, SQLBind(from))
            .returning("announced").all()
        return !rows.isEmpty
    }

    /// Raises a period's spending to at least what the ledger's rows of that period and scope cost (creating the row):
    /// spending made while no limit counted it (before a limit was set, or set on the plan) counts from then on, so the
    /// budget's meter and the usage report say the same. Run in a transaction: the row is locked first (PostgreSQL),
    /// then the ledger summed by a statement of its own, which (read committed) sees every settle that committed before
    /// the lock; a settle after it waits for the lock and adds its cost on top. Returns the spending after it.
    public func catchUp(workspaceID: String, period: BudgetPeriod, scope: BudgetScope, on db: any SQLDatabase) async throws -> Int {
        try await ensureRow(workspaceID: workspaceID, period: period.key, scope: scope, on: db)
        let current = try await db.select().column("spent_milli").from(Self.table)
            .where("workspace_id", .equal, workspaceID).where("period", .equal, period.key).where("scope", .equal, scope.rawValue)
            .for(.update).first()?.decode(column: "spent_milli", as: Int.self) ?? 0
        let sources: [KeySource] = scope == .byok ? [.byok] : [.platform, .managed]
        let ledger = try await db.select()
            .column(SQLRaw("CAST(COALESCE(SUM(milli_credits), 0) AS BIGINT)"), as: "spent")
            .from(UsageRepository.table)
            .where("workspace_id", .equal, workspaceID)
            .where("at", .greaterThanOrEqual, Timestamp.string(period.start)).where("at", .lessThan, Timestamp.string(period.end))
            .where("source", .in, sources.map(\.rawValue))
            .first()?.decode(column: "spent", as: Int.self) ?? 0
        guard ledger > current else { return current }
        try await db.update(Self.table).set("spent_milli", to: SQLBind(ledger))
            .where("workspace_id", .equal, workspaceID).where("period", .equal, period.key).where("scope", .equal, scope.rawValue).run()
        return ledger
    }

    /// The spending of a period and scope (zero when nothing was spent).
    public func spend(workspaceID: String, period: String, scope: BudgetScope, on db: any SQLDatabase) async throws -> BudgetSpend {
        try await db.select().columns("spent_milli", "reserved_milli", "announced").from(Self.table)
            .where("workspace_id", .equal, workspaceID).where("period", .equal, period).where("scope", .equal, scope.rawValue)
            .first().map(Self.decode) ?? BudgetSpend()
    }

    private func ensureRow(workspaceID: String, period: String, scope: BudgetScope, on db: any SQLDatabase) async throws {
        try await db.insert(into: Self.table)
            .columns("workspace_id", "period", "scope", "spent_milli", "reserved_milli", "announced")
            .values(SQLBind(workspaceID), SQLBind(period), SQLBind(scope.rawValue), SQLBind(0), SQLBind(0), SQLBind(0))
            .ignoringConflicts()
            .run()
    }

    static func decode(_ row: any SQLRow) throws -> BudgetSpend {
        BudgetSpend(spent: try row.decode(column: "spent_milli", as: Int.self), reserved: try row.decode(column: "reserved_milli", as: Int.self),
                    announced: try row.decode(column: "announced", as: Int.self))
    }

    /// Writes counters held elsewhere (a single process's memory) as they are: spent and the announced threshold.
    public func store(workspaceID: String, period: String, scope: BudgetScope, spent: Int, announced: Int, on db: any SQLDatabase) async throws {
        try await ensureRow(workspaceID: workspaceID, period: period, scope: scope, on: db)
        try await db.update(Self.table).set("spent_milli", to: SQLBind(spent)).set("announced", to: SQLBind(announced))
            .where("workspace_id", .equal, workspaceID).where("period", .equal, period).where("scope", .equal, scope.rawValue).run()
    }
}
