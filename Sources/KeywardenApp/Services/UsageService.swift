import Foundation
import KeywardenCore
import KeywardenStore
import SQLKit

/// The usage ledger: gateway calls written in batches, and reports over them.
public struct UsageService: Sendable {
    let app: AppServices
    var store: Store { app.store }
    let repository = UsageRepository()

    /// Writes a batch of records so that the budgets' spending and the ledger agree whatever fails:
    /// - a single-process store (SQLite): the rows and the budget counters held in memory that changed, in one
    ///   transaction (a failure puts the counters back for the next batch);
    /// - PostgreSQL: statements that each insert rows and settle the budget holds those rows name (``BudgetReservation``),
    ///   committing together; a row already written (a batch sent again after a lost answer) settles nothing twice.
    /// Returns the spending after the settles (PostgreSQL), for the thresholds they reached.
    @discardableResult
    public func record(_ records: [UsageRecord]) async throws -> [UsageRepository.Settled] {
        guard !app.isSingleProcess else {
            let changed = app.budgetBook.takeDirty(now: Date())
            guard !records.isEmpty || !changed.isEmpty else { return [] }
            do {
                try await store.engine.transaction(changesState: false) { db in
                    try await self.repository.insert(records, on: db)
                    for (key, spend) in changed {
                        try await self.store.budgets.store(workspaceID: key.workspaceID, period: key.period, scope: key.scope,
                                                           spent: spend.spent, announced: spend.announced, on: db)
                    }
                }
            } catch {
                app.budgetBook.markDirty(changed.map(\.0))
                throw error
            }
            return []
        }
        guard !records.isEmpty else { return [] }
        return try await store.engine.counterWrite { db in try await self.repository.insertSettlingHolds(records, on: db) }
    }

    /// Totals grouped by one dimension.
    public func report(_ query: UsageQuery) async throws -> UsageReport {
        try await store.engine.read { db in
            if let workspace = query.workspaceID, try await self.store.workspaces.get(workspace, on: db) == nil {
                throw KeywardenError.notFound("workspace")
            }
            return try await self.repository.report(query, on: db)
        }
    }

    /// Calls per day split by `seriesBy` (source, provider…), for charts.
    public func daily(_ query: UsageQuery, seriesBy: UsageQuery.GroupBy) async throws -> [(day: String, series: String, requests: Int, milliCredits: Int)] {
        try await store.engine.read { db in try await self.repository.daily(query, seriesBy: seriesBy, on: db) }
    }
}
