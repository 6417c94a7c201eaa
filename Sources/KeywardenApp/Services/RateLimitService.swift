import Foundation
import KeywardenCore
import KeywardenStore
import SQLKit
import Synchronization

/// A call counted in its workspace's minute, whose tokens are added when it ends.
public struct RateAdmission: Sendable, Equatable {
    public let workspaceID: String
    public let minute: String
}

/// Rate limits per workspace on the platform's keys: requests and tokens per minute, counted in a row every instance
/// shares, so one tenant cannot exhaust the platform's vendor account whatever the number of instances.
public struct RateLimitService: Sendable {
    let app: AppServices
    var store: Store { app.store }

    /// Sets a workspace's limits (platform admins).
    /// Checks limits against their range (a workspace's and a plan's alike).
    public static func check(_ limits: RateLimits) throws(KeywardenError) {
        for (field, value) in [("requests_per_minute", limits.requestsPerMinute), ("tokens_per_minute", limits.tokensPerMinute)] {
            if let value, !(1...RateLimits.maximum).contains(value) {
                throw KeywardenError.invalid(field, "\(field) must be a whole number from 1 to \(RateLimits.maximum), or null for no limit.")
            }
        }
    }

    public func setLimits(workspaceID: String, _ limits: RateLimits, actor: String) async throws -> Workspace {
        try Self.check(limits)
        return try await store.engine.transaction { db in
            guard var workspace = try await self.store.workspaces.get(workspaceID, on: db) else { throw KeywardenError.notFound("workspace") }
            guard workspace.rateLimits != limits else { return workspace }
            workspace.rateLimits = limits
            workspace.updatedAt = Timestamp.now
            try await self.store.workspaces.save(workspace, on: db)
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "rate_limits.updated", targetType: "workspace", targetID: workspaceID, workspaceID: workspaceID,
                details: ["requests_per_minute": limits.requestsPerMinute.map(String.init) ?? "none",
                          "tokens_per_minute": limits.tokensPerMinute.map(String.init) ?? "none"]
            ), on: db)
            return workspace
        }
    }

    /// Counts a call in the workspace's current minute; `nil` (with the seconds until the next minute) when the minute's
    /// requests are at the limit or its tokens have reached theirs. A single-process store (SQLite) counts in memory:
    /// a minute's counters need no durability, and a synced commit per call would cost more than the call.
    public func admit(workspaceID: String, limits: RateLimits, at now: Date = Date()) async throws -> (admission: RateAdmission?, retryAfter: Int) {
        let window = RateWindow(containing: now)
        let admitted: Bool
        if app.isSingleProcess {
            admitted = app.rateBook.admit(workspaceID: workspaceID, minute: window.key, requests: limits.requestsPerMinute, tokens: limits.tokensPerMinute)
        } else {
            // Windows two minutes old go: an instance whose clock is a little behind still finds its own minute.
            let stale = RateWindow(containing: now.addingTimeInterval(-120)).key
            admitted = try await store.engine.counterWrite { db in
                try await self.store.rateWindows.admit(workspaceID: workspaceID, minute: window.key, staleBefore: stale,
                                                       requests: limits.requestsPerMinute, tokens: limits.tokensPerMinute, on: db)
            }
        }
        return (admitted ? RateAdmission(workspaceID: workspaceID, minute: window.key) : nil, window.secondsLeft)
    }

    /// Adds a finished call's tokens at once when the windows live in this process's memory; whether it did (else
    /// ``record(_:tokens:at:)`` writes them to the shared rows).
    public func recordHeld(_ admission: RateAdmission, tokens: Int, at now: Date = Date()) -> Bool {
        guard app.isSingleProcess else { return false }
        if tokens > 0 { app.rateBook.addTokens(workspaceID: admission.workspaceID, minute: RateWindow(containing: now).key, tokens: tokens) }
        return true
    }

    /// Adds a finished call's tokens to the minute it ends in (a long stream that started in an earlier minute counts
    /// against the current one, not a window already gone).
    public func record(_ admission: RateAdmission, tokens: Int, at now: Date = Date()) async throws {
        guard tokens > 0 else { return }
        let minute = RateWindow(containing: now).key
        if app.isSingleProcess {
            app.rateBook.addTokens(workspaceID: admission.workspaceID, minute: minute, tokens: tokens)
            return
        }
        try await store.engine.counterWrite { db in
            try await self.store.rateWindows.addTokens(workspaceID: admission.workspaceID, minute: minute, tokens: tokens, on: db)
        }
    }
}

/// Each workspace's requests and tokens in its current minute, in a single process's memory: one entry per workspace,
/// replaced when its minute turns.
final class LocalRateBook: Sendable {
    private struct Window {
        var minute: String
        var requests = 0
        var tokens = 0
    }

    private let windows = Mutex<[String: Window]>([:])

    func admit(workspaceID: String, minute: String, requests: Int?, tokens: Int?) -> Bool {
        windows.withLock { windows in
            var window = windows[workspaceID].flatMap { $0.minute == minute ? $0 : nil } ?? Window(minute: minute)
            if let requests, window.requests >= requests { return false }
            if let tokens, window.tokens >= tokens { return false }
            window.requests += 1
            windows[workspaceID] = window
            return true
        }
    }

    func addTokens(workspaceID: String, minute: String, tokens: Int) {
        windows.withLock { windows in
            var window = windows[workspaceID].flatMap { $0.minute == minute ? $0 : nil } ?? Window(minute: minute)
            window.tokens = window.tokens.saturatingAdding(tokens)
            windows[workspaceID] = window
        }
    }
}

extension AppServices {
    public var rateLimits: RateLimitService { RateLimitService(app: self) }
}
