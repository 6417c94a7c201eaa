import Foundation
import KeywardenCore
import SQLKit

/// The `rate_windows` table: each workspace's requests and tokens in the current minute, one row that every instance
/// updates with single conditional statements, so a limit holds across instances.
public struct RateWindowRepository: Sendable {
    package static let table = "rate_windows"

    public init() {}

    /// Counts one request and reserves `estimate` tokens when the minute's requests stay within `requests` and its tokens,
    /// the estimate included, within `tokens`; whether it did. One statement (one round trip; PostgreSQL): the
    /// workspace's rows older than `staleBefore` go, the minute's row is created or counted under its row lock. (A
    /// caller refuses an estimate over the limit itself: a minute's first call is not checked here.)
    public func admit(workspaceID: String, minute: String, staleBefore: String, requests: Int?, tokens: Int?, estimate: Int = 0,
                      on db: any SQLDatabase) async throws -> Bool {
        let estimate = max(0, estimate)
        var limits: [SQLQueryString] = []
        if let requests { limits.append("rate_windows.requests < \(bind: requests)") }
        if let tokens { limits.append("rate_windows.tokens < \(bind: tokens) AND rate_windows.tokens + EXCLUDED.tokens <= \(bind: tokens)") }
        let condition: SQLQueryString = limits.isEmpty ? "" : " WHERE " + limits.dropFirst().reduce(limits[0]) { $0 + " AND " + $1 }
        let rows = try await db.raw("""
            WITH stale AS (DELETE FROM rate_windows WHERE workspace_id = \(bind: workspaceID) AND minute < \(bind: staleBefore))
            INSERT INTO rate_windows (workspace_id, minute, requests, tokens) VALUES (\(bind: workspaceID), \(bind: minute), 1, \(bind: estimate))
            ON CONFLICT (workspace_id, minute) DO UPDATE SET requests = rate_windows.requests + 1, tokens = rate_windows.tokens + EXCLUDED.tokens\(condition)
            RETURNING requests
            """).all()
        return !rows.isEmpty
    }

    /// Adds `tokens` to a minute (fewer, when negative: an estimate given back; never below 0), in one statement.
    public func addTokens(workspaceID: String, minute: String, tokens: Int, on db: any SQLDatabase) async throws {
        guard tokens != 0 else { return }
        try await db.raw("""
            INSERT INTO rate_windows (workspace_id, minute, requests, tokens) VALUES (\(bind: workspaceID), \(bind: minute), 0, \(bind: max(0, tokens)))
            ON CONFLICT (workspace_id, minute) DO UPDATE SET tokens =
                CASE WHEN rate_windows.tokens + \(bind: tokens) < 0 THEN 0 ELSE rate_windows.tokens + \(bind: tokens) END
            """).run()
    }
}
