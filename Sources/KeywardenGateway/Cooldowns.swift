import Synchronization

/// Keys resting after a 429 (for the vendor's `Retry-After`) or a rejection: resolution skips them until then.
///
/// In memory: each instance keeps its own, and a restart forgets them (the vendor will say 429 again).
public final class Cooldowns: Sendable {
    private let until = Mutex<[String: ContinuousClock.Instant]>([:])

    public init() {}

    /// Rests a key for `duration` (a longer rest already running is kept).
    public func rest(_ credentialID: String, for duration: Duration, now: ContinuousClock.Instant = .now) {
        until.withLock { until in
            let end = now + duration
            if let current = until[credentialID], current > end { return }
            until[credentialID] = end
        }
    }

    /// The keys resting now; expired rests are forgotten.
    public func resting(now: ContinuousClock.Instant = .now) -> Set<String> {
        until.withLock { until in
            guard !until.isEmpty else { return [] }
            until = until.filter { $0.value > now }
            return Set(until.keys)
        }
    }

    /// How long until the first of these keys is usable again.
    public func shortestRest(among ids: Set<String>, now: ContinuousClock.Instant = .now) -> Duration? {
        until.withLock { until in ids.compactMap { until[$0].map { $0 - now } }.filter { $0 > .zero }.min() }
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
