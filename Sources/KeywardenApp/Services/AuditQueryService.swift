import KeywardenCore
import KeywardenStore
import SQLKit

/// Reading the audit log, a page at a time.
public struct AuditQueryService: Sendable {
    let app: AppServices
    var store: Store { app.store }

    /// Entries newest first, of one workspace or of all (`nil`), optionally of one action.
    public func page(workspaceID: String?, action: String?, pagination: Pagination) async throws -> (entries: [AuditEntry], total: Int) {
        try await store.engine.read { db in
            func filtered(_ select: SQLSelectBuilder) -> SQLSelectBuilder {
                var select = select.from(AuditLog.table)
                if let workspaceID { select = select.where("workspace_id", .equal, workspaceID) }
                if let action, !action.isEmpty { select = select.where("action", .equal, action) }
                return select
            }
            let total = try await filtered(db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n")).first()?
                .decode(column: "n", as: Int.self) ?? 0
            let entries = try await filtered(db.select().column("*")).orderBy("seq", .descending)
                .limit(pagination.perPage).offset(pagination.offset).all(decoding: AuditEntry.self)
            return (entries, total)
        }
    }
}
