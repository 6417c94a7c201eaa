import Foundation
import KeywardenCore
import KeywardenStore
import SQLKit

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
    public func setLimits(workspaceID: String, _ limits: RateLimits, actor: String) async throws -> Workspace {
        for (field, value) in [("requests_per_minute", limits.requestsPerMinute), ("tokens_per_minute", limits.tokensPerMinute)] {
            if let value, !(1...RateLimits.maximum).contains(value) {
                throw KeywardenError.invalid(field, "\(field) must be a whole number from 1 to \(RateLimits.maximum), or null for no limit.")
            }
        }
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
    /// requests are at the limit or its tokens have reached theirs.
    public func admit(workspaceID: String, limits: RateLimits, at now: Date = Date()) async throws -> (admission: RateAdmission?, retryAfter: Int) {
        let window = RateWindow(containing: now)
        let admitted = try await store.engine.transaction(changesState: false) { db in
            try await self.store.rateWindows.admit(workspaceID: workspaceID, minute: window.key, requests: limits.requestsPerMinute,
                                                   tokens: limits.tokensPerMinute, on: db)
        }
        return (admitted ? RateAdmission(workspaceID: workspaceID, minute: window.key) : nil, window.secondsLeft)
    }

    /// Adds a finished call's tokens to the minute it was admitted in.
    public func record(_ admission: RateAdmission, tokens: Int) async throws {
        guard tokens > 0 else { return }
        try await store.engine.transaction(changesState: false) { db in
            try await self.store.rateWindows.addTokens(workspaceID: admission.workspaceID, minute: admission.minute, tokens: tokens, on: db)
        }
    }
}

extension AppServices {
    public var rateLimits: RateLimitService { RateLimitService(app: self) }
}
