import Foundation
import KeywardenCore
import SQLKit

/// The `rate_windows` table: each workspace's requests and tokens in the current minute, one row that every instance
/// updates with single conditional statements, so a limit holds across instances.
public struct RateWindowRepository: Sendable {
    package static let table = "rate_windows"

    public init() {}

    /// Counts one request when the minute's requests stay within `requests` and its tokens are below `tokens`; whether
    /// it did. Creating a minute's row removes the workspace's rows older than `staleBefore`.
    public func admit(workspaceID: String, minute: String, staleBefore: String, requests: Int?, tokens: Int?, on db: any SQLDatabase) async throws -> Bool {
        if try await ensureRow(workspaceID: workspaceID, minute: minute, on: db) {
            try await db.delete(from: Self.table).where("workspace_id", .equal, workspaceID).where("minute", .lessThan, staleBefore).run()
        }
        var update = db.update(Self.table)
            .set("requests", to: SQLBinaryExpression(SQLColumn("requests"), .add, SQLBind(1)))
            .where("workspace_id", .equal, workspaceID).where("minute", .equal, minute)
        if let requests { update = update.where("requests", .lessThan, SQLBind(requests)) }
        if let tokens { update = update.where("tokens", .lessThan, SQLBind(tokens)) }
        return !(try await update.returning("requests").all()).isEmpty
    }

    /// Adds a call's tokens to a minute.
    public func addTokens(workspaceID: String, minute: String, tokens: Int, on db: any SQLDatabase) async throws {
        guard tokens > 0 else { return }
        _ = try await ensureRow(workspaceID: workspaceID, minute: minute, on: db)
        try await db.update(Self.table).set("tokens", to: SQLBinaryExpression(SQLColumn("tokens"), .add, SQLBind(tokens)))
            .where("workspace_id", .equal, workspaceID).where("minute", .equal, minute).run()
    }

    /// Creates the minute's row unless it exists; whether this call created it.
    private func ensureRow(workspaceID: String, minute: String, on db: any SQLDatabase) async throws -> Bool {
        let created = try await db.insert(into: Self.table).columns("workspace_id", "minute", "requests", "tokens")
            .values(SQLBind(workspaceID), SQLBind(minute), SQLBind(0), SQLBind(0))
            .ignoringConflicts().returning("minute").all()
        return !created.isEmpty
    }
}
