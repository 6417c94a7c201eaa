import Foundation
import KeywardenCore
import KeywardenStore
import SQLKit

/// The usage ledger: gateway calls written in batches, and reports over them.
public struct UsageService: Sendable {
    let app: AppServices
    var store: Store { app.store }
    let repository = UsageRepository()

    /// Writes a batch of records in one transaction (not one that reloads the resolution snapshot).
    public func record(_ records: [UsageRecord]) async throws {
        guard !records.isEmpty else { return }
        try await store.engine.transaction(changesState: false) { db in
            try await self.repository.insert(records, on: db)
        }
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
