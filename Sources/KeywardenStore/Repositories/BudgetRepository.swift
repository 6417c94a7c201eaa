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

    /// Reserves `amount` when what is spent and reserved stays within `limit`; whether it did.
    public func reserve(workspaceID: String, period: String, scope: BudgetScope, amount: Int, limit: Int, on db: any SQLDatabase) async throws -> Bool {
        try await ensureRow(workspaceID: workspaceID, period: period, scope: scope, on: db)
        // One statement: on SQLite under the single writer, on PostgreSQL under the row's lock, the check and the
        // increment cannot interleave with another instance's.
        let rows = try await db.update(Self.table)
            .set("reserved_milli", to: SQLBinaryExpression(SQLColumn("reserved_milli"), .add, SQLBind(amount)))
            .where("workspace_id", .equal, workspaceID).where("period", .equal, period).where("scope", .equal, scope.rawValue)
            .where(SQLBinaryExpression(
                SQLBinaryExpression(SQLBinaryExpression(SQLColumn("spent_milli"), .add, SQLColumn("reserved_milli")), .add, SQLBind(amount)),
                .lessThanOrEqual, SQLBind(limit)))
            .returning("reserved_milli").all()
        return !rows.isEmpty
    }

    /// Releases a reservation of `reserved` and adds what the call cost; the spending after it.
    public func settle(workspaceID: String, period: String, scope: BudgetScope, reserved: Int, cost: Int, on db: any SQLDatabase) async throws -> BudgetSpend {
        try await ensureRow(workspaceID: workspaceID, period: period, scope: scope, on: db)
        let row = try await db.update(Self.table)
            // Never below zero (SQLite's max() is PostgreSQL's GREATEST(): a CASE reads the same on both).
            .set("reserved_milli", to: SQLQueryString("CASE WHEN reserved_milli > \(bind: reserved) THEN reserved_milli - \(bind: reserved) ELSE 0 END"))
            .set("spent_milli", to: SQLBinaryExpression(SQLColumn("spent_milli"), .add, SQLBind(cost)))
            .where("workspace_id", .equal, workspaceID).where("period", .equal, period).where("scope", .equal, scope.rawValue)
            .returning("spent_milli", "reserved_milli", "announced").first()
        return try row.map(Self.decode) ?? BudgetSpend()
    }

    /// Moves the announced threshold from `from` to `to`; whether this call did (of several instances, one does).
    public func announce(workspaceID: String, period: String, scope: BudgetScope, from: Int, to: Int, on db: any SQLDatabase) async throws -> Bool {
        let rows = try await db.update(Self.table).set("announced", to: SQLBind(to))
            .where("workspace_id", .equal, workspaceID).where("period", .equal, period).where("scope", .equal, scope.rawValue)
            .where("announced", .equal, SQLBind(from))
            .returning("announced").all()
        return !rows.isEmpty
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
