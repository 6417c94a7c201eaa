import Foundation
import KeywardenCore
import SQLKit

/// The `rate_windows` table: each workspace's requests and tokens in the current minute, one row that every instance
/// updates with single conditional statements, so a limit holds across instances.
public struct RateWindowRepository: Sendable {
    package static let table = "rate_windows"

    public init() {}

    /// Counts one request when the minute's requests stay within `requests` and its tokens are below `tokens`; whether
    /// it did. One statement (one round trip; PostgreSQL): the workspace's rows older than `staleBefore` go, the minute's
    /// row is created or counted under its row lock.
    public func admit(workspaceID: String, minute: String, staleBefore: String, requests: Int?, tokens: Int?, on db: any SQLDatabase) async throws -> Bool {
        var limits: [SQLQueryString] = []
        if let requests { limits.append("rate_windows.requests < \(bind: requests)") }
        if let tokens { limits.append("rate_windows.tokens < \(bind: tokens)") }
        let condition: SQLQueryString = limits.isEmpty ? "" : " WHERE " + limits.dropFirst().reduce(limits[0]) { $0 + " AND " + $1 }
        let rows = try await db.raw("""
            WITH stale AS (DELETE FROM rate_windows WHERE workspace_id = \(bind: workspaceID) AND minute < \(bind: staleBefore))
            INSERT INTO rate_windows (workspace_id, minute, requests, tokens) VALUES (\(bind: workspaceID), \(bind: minute), 1, 0)
            ON CONFLICT (workspace_id, minute) DO UPDATE SET requests = rate_windows.requests + 1\(condition)
            RETURNING requests
            """).all()
        return !rows.isEmpty
    }

    /// Adds a call's tokens to a minute, in one statement.
    public func addTokens(workspaceID: String, minute: String, tokens: Int, on db: any SQLDatabase) async throws {
        guard tokens > 0 else { return }
        try await db.raw("""
            INSERT INTO rate_windows (workspace_id, minute, requests, tokens) VALUES (\(bind: workspaceID), \(bind: minute), 0, \(bind: tokens))
            ON CONFLICT (workspace_id, minute) DO UPDATE SET tokens = rate_windows.tokens + EXCLUDED.tokens
            """).run()
    }
}
