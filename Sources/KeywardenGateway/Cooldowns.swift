import Synchronization

/// Keys resting after a 429 (for the vendor's `Retry-After`) or a rejection: resolution skips them until then.
///
/// In memory: each instance keeps its own, and a restart forgets them (the vendor will say 429 again).
public final class Cooldowns: Sendable {
    private struct Rest {
        let until: ContinuousClock.Instant
        /// A vendor's rate limit (the caller may retry later), rather than a refusal being checked.
        let rateLimited: Bool
    }
    private let rests = Mutex<[String: Rest]>([:])

    public init() {}

    /// Rests a key for `duration` (a longer rest already running is kept).
    public func rest(_ credentialID: String, for duration: Duration, rateLimited: Bool, now: ContinuousClock.Instant = .now) {
        rests.withLock { rests in
            let end = now + duration
            if let current = rests[credentialID], current.until > end { return }
            rests[credentialID] = Rest(until: end, rateLimited: rateLimited)
        }
    }

    /// The keys resting now (only those resting for a refusal, with `refusedOnly`); expired rests are forgotten.
    public func resting(refusedOnly: Bool = false, now: ContinuousClock.Instant = .now) -> Set<String> {
        rests.withLock { rests in
            guard !rests.isEmpty else { return [] }
            rests = rests.filter { $0.value.until > now }
            return Set(rests.filter { !refusedOnly || !$0.value.rateLimited }.keys)
        }
    }

    /// How long until the first of these keys comes back from a rate-limit rest.
    public func shortestRateLimit(among ids: [String], now: ContinuousClock.Instant = .now) -> Duration? {
        rests.withLock { rests in
            ids.compactMap { id in rests[id].flatMap { $0.rateLimited ? $0.until - now : nil } }.filter { $0 > .zero }.min()
        }
    }
}

/// Which (workspace, provider) pairs are being served by someone else's key, so `fallback.engaged`
/// is raised once per move away from the workspace's own keys, not once per call.
final class FallbackTracker: Sendable {
    private let engaged = Mutex<Set<String>>([])

    /// Whether this call starts a fallback (it was not engaged before).
    func engage(workspaceID: String, providerID: String) -> Bool {
        engaged.withLock { $0.insert(workspaceID + "/" + providerID).inserted }
    }

    /// The workspace's own key served again.
    func release(workspaceID: String, providerID: String) {
        engaged.withLock { set in
            guard !set.isEmpty else { return }
            set.remove(workspaceID + "/" + providerID)
        }
    }
}
