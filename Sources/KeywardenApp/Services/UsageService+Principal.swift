import KeywardenCore
import KeywardenStore

/// The doors' entry points to the usage ledger: each narrows the query to what the principal may read (`usage.read`:
/// its own workspace; a platform admin or platform reader, every workspace or the one it names).
extension UsageService {
    /// The query narrowed to the principal's reading scope; naming a workspace it cannot see is `not_found`.
    public func scoped(_ query: UsageQuery, principal: Principal) throws -> UsageQuery {
        var query = query
        query.workspaceID = try principal.readableScope(.usageRead, requested: query.workspaceID, platformWide: true)
        return query
    }

    /// Totals grouped by one dimension, over the principal's scope; the query as narrowed.
    public func report(_ query: UsageQuery, principal: Principal) async throws -> (query: UsageQuery, report: UsageReport) {
        let query = try scoped(query, principal: principal)
        return (query, try await report(query))
    }

    /// Calls per day split by `seriesBy`, over the principal's scope.
    public func daily(_ query: UsageQuery, seriesBy: UsageQuery.GroupBy, principal: Principal) async throws
        -> [(day: String, series: String, requests: Int, milliCredits: Int)] {
        try await daily(try scoped(query, principal: principal), seriesBy: seriesBy)
    }

    /// Writes every row of the principal's scope through `write`.
    public func export(_ query: UsageQuery, source: KeySource?, as export: UsageExport, principal: Principal,
                       write: (String) async throws -> Void) async throws {
        try await self.export(try scoped(query, principal: principal), source: source, as: export, write: write)
    }
}
