import Foundation
import KeywardenCore
import KeywardenStore
import SQLKit
import Synchronization

/// A call counted in its workspace's minute, with the tokens it was estimated at reserved there; settled with the
/// tokens it used when it ends.
public struct RateAdmission: Sendable, Equatable {
    public let workspaceID: String
    public let minute: String
    /// The tokens reserved at admission (the call's estimate; 0 without a tokens-per-minute limit).
    public let reservedTokens: Int
}

/// What the rate limit says of a call.
public enum RateVerdict: Sendable, Equatable {
    case admitted(RateAdmission)
    /// The minute's requests or tokens are used up: the seconds until the next minute.
    case limited(retryAfter: Int)
    /// The call alone is estimated at more tokens than a minute allows: it never fits.
    case tooLarge(estimate: Int)
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

    /// Counts a call in the workspace's current minute and reserves its estimated tokens there, so calls in flight
    /// count against the tokens-per-minute limit before they end. Refused while the minute's requests are at their
    /// limit or its tokens, this estimate included, would pass theirs; a call estimated above the limit by itself never
    /// fits. A single-process store (SQLite) counts in memory: a minute's counters need no durability, and a synced
    /// commit per call would cost more than the call.
    public func admit(workspaceID: String, limits: RateLimits, estimatedTokens: Int = 0, at now: Date = Date()) async throws -> RateVerdict {
        let window = RateWindow(containing: now)
        let reserve = limits.tokensPerMinute == nil ? 0 : max(0, estimatedTokens)
        if let tokens = limits.tokensPerMinute, reserve > tokens { return .tooLarge(estimate: reserve) }
        let admitted: Bool
        if app.isSingleProcess {
            admitted = app.rateBook.admit(workspaceID: workspaceID, minute: window.key, requests: limits.requestsPerMinute,
                                          tokens: limits.tokensPerMinute, reserving: reserve)
        } else {
            // Windows two minutes old go: an instance whose clock is a little behind still finds its own minute.
            let stale = RateWindow(containing: now.addingTimeInterval(-120)).key
            admitted = try await store.engine.counterWrite { db in
                try await self.store.rateWindows.admit(workspaceID: workspaceID, minute: window.key, staleBefore: stale,
                                                       requests: limits.requestsPerMinute, tokens: limits.tokensPerMinute, estimate: reserve, on: db)
            }
        }
        return admitted ? .admitted(RateAdmission(workspaceID: workspaceID, minute: window.key, reservedTokens: reserve))
            : .limited(retryAfter: window.secondsLeft)
    }

    /// The change a finished call makes to the windows: in the minute it was admitted, the tokens it used replace the
    /// estimate reserved; in a later minute (a long stream), they are added to that minute (the reservation went with
    /// its window).
    public static func settlement(_ admission: RateAdmission, used: Int, at now: Date) -> (minute: String, tokens: Int) {
        let minute = RateWindow(containing: now).key
        let used = max(0, used)
        return minute == admission.minute ? (minute, used - admission.reservedTokens) : (minute, used)
    }

    /// Settles a finished call at once when the windows live in this process's memory; whether it did (else
    /// ``settle(_:used:at:)`` writes to the shared rows).
    public func settleHeld(_ admission: RateAdmission, used: Int, at now: Date = Date()) -> Bool {
        guard app.isSingleProcess else { return false }
        let (minute, tokens) = Self.settlement(admission, used: used, at: now)
        app.rateBook.addTokens(workspaceID: admission.workspaceID, minute: minute, tokens: tokens)
        return true
    }

    /// Settles a finished call (``settlement(_:used:at:)``): `used` 0 gives an attempt's reservation back.
    public func settle(_ admission: RateAdmission, used: Int, at now: Date = Date()) async throws {
        let (minute, tokens) = Self.settlement(admission, used: used, at: now)
        guard tokens != 0 else { return }
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

    func admit(workspaceID: String, minute: String, requests: Int?, tokens: Int?, reserving reserve: Int = 0) -> Bool {
        windows.withLock { windows in
            var window = windows[workspaceID].flatMap { $0.minute == minute ? $0 : nil } ?? Window(minute: minute)
            if let requests, window.requests >= requests { return false }
            if let tokens, window.tokens >= tokens || window.tokens.saturatingAdding(reserve) > tokens { return false }
            window.requests += 1
            window.tokens = window.tokens.saturatingAdding(reserve)
            windows[workspaceID] = window
            return true
        }
    }

    /// Adds tokens to a minute (fewer when negative, never below 0).
    func addTokens(workspaceID: String, minute: String, tokens: Int) {
        guard tokens != 0 else { return }
        windows.withLock { windows in
            var window = windows[workspaceID].flatMap { $0.minute == minute ? $0 : nil } ?? Window(minute: minute)
            window.tokens = max(0, window.tokens.saturatingAdding(tokens))
            windows[workspaceID] = window
        }
    }
}

extension AppServices {
    public var rateLimits: RateLimitService { RateLimitService(app: self) }
}
