import SQLKit

/// Counts rows of a table per workspace, for a list of workspaces: one grouped query per 500 of them.
enum GroupedCount {
    /// `SELECT workspace_id, count(*) … WHERE workspace_id IN (…) GROUP BY workspace_id`, narrowed further by `filter`;
    /// a workspace without rows is absent from the answer.
    static func byWorkspace(
        in table: String, _ workspaceIDs: [String], on db: any SQLDatabase,
        filter: (SQLSelectBuilder) -> SQLSelectBuilder = { $0 }
    ) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        let ids = Array(Set(workspaceIDs)).sorted()
        for start in stride(from: 0, to: ids.count, by: 500) {
            let slice = Array(ids[start..<min(start + 500, ids.count)])
            let select = db.select().column("workspace_id").column(SQLFunction("count", args: SQLLiteral.all), as: "n")
                .from(table).where("workspace_id", .in, slice)
            for row in try await filter(select).groupBy("workspace_id").all() {
                counts[try row.decode(column: "workspace_id", as: String.self)] = try row.decode(column: "n", as: Int.self)
            }
        }
        return counts
    }
}
