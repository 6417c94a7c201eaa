import KeywardenCore
import Synchronization

/// Keys resting after a 429 (for the vendor's `Retry-After`) or a rejection: resolution skips them until then.
///
/// A rest is shared (every workspace skips the key: a 429 is the vendor's real limit, and a workspace's own key
/// is only its own) or held for one workspace only: a refusal of a shared key on a request a tenant shaped is no
/// proof the key is bad for anyone else, so only that tenant moves on while Keywarden's own probe judges the key.
///
/// In memory: each instance keeps its own, and a restart forgets them (the vendor will say 429 again).
public final class Cooldowns: Sendable {
    private struct Rest {
        let until: ContinuousClock.Instant
        /// A vendor's rate limit (the caller may retry later), rather than a refusal being checked.
        let rateLimited: Bool
        /// Which secret of the key was met (``KeyVersion/tag``): a key whose secret is now another one is not resting,
        /// whichever instance told of the rest and however late.
        var keyTag: String? = nil
    }
    private struct State {
        var shared: [String: Rest] = [:]
        /// Rests held for one workspace: workspace id → key id → rest.
        var scoped: [String: [String: Rest]] = [:]
        /// A shared key's 429 seen by one workspace, waiting for a second workspace to confirm it.
        var unconfirmed: [String: (workspaceID: String, until: ContinuousClock.Instant)] = [:]
    }
    private let state = Mutex(State())

    public init() {}

    /// Rests a key for `duration` (a longer rest already running is kept): for everyone, or only for `workspaceID`.
    public func rest(_ credentialID: String, for duration: Duration, rateLimited: Bool, onlyFor workspaceID: String? = nil,
                     keyTag: String? = nil, now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            let end = now + duration
            let rest = Rest(until: end, rateLimited: rateLimited, keyTag: keyTag)
            if let workspaceID {
                if let current = state.scoped[workspaceID]?[credentialID], current.until > end, current.keyTag == keyTag { return }
                state.scoped[workspaceID, default: [:]][credentialID] = rest
            } else {
                if let current = state.shared[credentialID], current.until > end, current.keyTag == keyTag { return }
                state.shared[credentialID] = rest
            }
        }
    }

    /// Rests a key after the vendor's 429. A key the caller owns rests for everyone. A shared key (the platform's,
    /// the managed default) rests for the calling workspace, and for everyone once a second workspace meets a 429 on it
    /// within the rest: one tenant's request (a huge prompt, a model with a tiny daily limit) cannot take the platform's
    /// key from every other tenant, while a limit that is really the account's is shared as soon as it shows twice.
    public func rateLimited(_ credentialID: String, for duration: Duration, owned: Bool, workspaceID: String?,
                            keyTag: String? = nil, now: ContinuousClock.Instant = .now) {
        guard !owned, let workspaceID else {
            rest(credentialID, for: duration, rateLimited: true, keyTag: keyTag, now: now)
            return
        }
        rest(credentialID, for: duration, rateLimited: true, onlyFor: workspaceID, keyTag: keyTag, now: now)
        let confirmed = state.withLock { state -> Bool in
            if let first = state.unconfirmed[credentialID], first.until > now, first.workspaceID != workspaceID {
                state.unconfirmed[credentialID] = nil
                return true
            }
            if state.unconfirmed.count > 10_000 { state.unconfirmed = state.unconfirmed.filter { $0.value.until > now } }
            state.unconfirmed[credentialID] = (workspaceID, now + duration)
            return false
        }
        if confirmed { rest(credentialID, for: duration, rateLimited: true, keyTag: keyTag, now: now) }
    }

    // MARK: Across instances

    /// One rest as instances tell it to each other: `v1|key|workspace or -|owned 0/1|rate limited 0/1|milliseconds|key tag`
    /// (the tag, ``KeyVersion/tag`` of the secret that was refused, may be missing: an older instance's).
    public struct Announcement: Sendable, Equatable {
        public let credentialID: String
        public let workspaceID: String?
        public let owned: Bool
        public let rateLimited: Bool
        public let duration: Duration
        /// Which secret of the key was refused: a rest of a secret since replaced is not applied.
        public let keyTag: String?

        public init(credentialID: String, workspaceID: String?, owned: Bool, rateLimited: Bool, duration: Duration, keyTag: String? = nil) {
            self.credentialID = credentialID
            self.workspaceID = workspaceID
            self.owned = owned
            self.rateLimited = rateLimited
            self.duration = duration
            self.keyTag = keyTag
        }

        public var payload: String {
            let (seconds, attoseconds) = duration.components
            let milliseconds = Int(clamping: seconds).saturatingMultiplied(by: 1000).saturatingAdding(Int(attoseconds / 1_000_000_000_000_000))
            return ["v1", credentialID, workspaceID ?? "-", owned ? "1" : "0", rateLimited ? "1" : "0", "\(milliseconds)", keyTag ?? "-"].joined(separator: "|")
        }

        /// Reads an announcement; `nil` for anything else (a rest is never longer than a day, whatever it says).
        public init?(payload: String) {
            let parts = payload.split(separator: "|", omittingEmptySubsequences: false)
            guard parts.count == 6 || parts.count == 7, parts[0] == "v1", !parts[1].isEmpty, parts[1].count <= 100, parts[2].count <= 100,
                  let milliseconds = UntrustedNumber.integer(parts[5], clampedTo: 0...86_400_000) else { return nil }
            let tag = parts.count == 7 && parts[6] != "-" && parts[6].count <= 32 ? String(parts[6]) : nil
            self.init(credentialID: String(parts[1]), workspaceID: parts[2] == "-" ? nil : String(parts[2]), owned: parts[3] == "1",
                      rateLimited: parts[4] == "1", duration: .milliseconds(milliseconds), keyTag: tag)
        }
    }

    /// Applies a rest another instance announced, as if this instance had met it.
    public func apply(_ announcement: Announcement, now: ContinuousClock.Instant = .now) {
        if announcement.rateLimited {
            rateLimited(announcement.credentialID, for: announcement.duration, owned: announcement.owned, workspaceID: announcement.workspaceID,
                        keyTag: announcement.keyTag, now: now)
        } else {
            rest(announcement.credentialID, for: announcement.duration, rateLimited: false,
                 onlyFor: announcement.owned ? nil : announcement.workspaceID, keyTag: announcement.keyTag, now: now)
        }
    }

    /// The keys resting now for a call of `workspaceID` (shared rests and its own; only those resting for a refusal,
    /// with `refusedOnly`); expired rests are forgotten.
    /// Ends every rest of these keys (their secret was replaced: the refusal was the old secret's).
    public func lift(_ credentialIDs: [String]) {
        guard !credentialIDs.isEmpty else { return }
        state.withLock { state in
            for id in credentialIDs {
                state.shared[id] = nil
                state.unconfirmed[id] = nil
                for workspaceID in state.scoped.keys { state.scoped[workspaceID]?[id] = nil }
            }
        }
    }

    ///
    /// `currentTag` names the secret a key holds now (`nil`: not known here): a rest met with another secret is over,
    /// so a key given a new secret serves at once on every instance, even when a rest of its old secret is told late.
    public func resting(for workspaceID: String? = nil, refusedOnly: Bool = false, now: ContinuousClock.Instant = .now,
                        currentTag: ((String) -> String?)? = nil) -> Set<String> {
        state.withLock { state in
            guard !state.shared.isEmpty || !state.scoped.isEmpty else { return [] }
            func live(_ id: String, _ rest: Rest) -> Bool {
                guard rest.until > now else { return false }
                guard let met = rest.keyTag, let currentTag, let held = currentTag(id) else { return true }
                return held == met
            }
            state.shared = state.shared.filter { live($0.key, $0.value) }
            var ids = Set(state.shared.filter { !refusedOnly || !$0.value.rateLimited }.keys)
            if let workspaceID, let own = state.scoped[workspaceID] {
                let current = own.filter { live($0.key, $0.value) }
                state.scoped[workspaceID] = current.isEmpty ? nil : current
                ids.formUnion(current.filter { !refusedOnly || !$0.value.rateLimited }.keys)
            }
            return ids
        }
    }

    /// A key's rest in force for `workspaceID` (shared, or held for it), the longest one: how long it lasts still and
    /// whether it is a vendor's rate limit (else a refusal being checked); `nil` when it serves.
    public func rest(of credentialID: String, for workspaceID: String?, now: ContinuousClock.Instant = .now) -> (remaining: Duration, rateLimited: Bool)? {
        state.withLock { state in
            let rests = [state.shared[credentialID], workspaceID.flatMap { state.scoped[$0]?[credentialID] }].compactMap { $0 }.filter { $0.until > now }
            guard let longest = rests.max(by: { $0.until < $1.until }) else { return nil }
            return (longest.until - now, longest.rateLimited)
        }
    }

    /// How long until the first of these keys comes back from a rate-limit rest (shared, or held for `workspaceID`).
    public func shortestRateLimit(among ids: [String], for workspaceID: String? = nil, now: ContinuousClock.Instant = .now) -> Duration? {
        state.withLock { state in
            let own = workspaceID.flatMap { state.scoped[$0] } ?? [:]
            return ids.compactMap { id -> Duration? in
                let rests = [state.shared[id], own[id]].compactMap { $0 }.filter(\.rateLimited)
                return rests.map { $0.until - now }.max()
            }.filter { $0 > .zero }.min()
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

    /// The workspace's own key served again; returns whether a move was engaged (so it is released everywhere).
    @discardableResult
    func release(workspaceID: String, providerID: String) -> Bool {
        engaged.withLock { set in
            guard !set.isEmpty else { return false }
            return set.remove(workspaceID + "/" + providerID) != nil
        }
    }

    /// What another instance says: a move engaged or released there (so this one neither raises it again nor keeps it).
    func apply(_ payload: String) {
        let parts = payload.split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "fallback" else { return }
        let key = parts[2] + "/" + parts[3]
        engaged.withLock { set in
            if parts[1] == "1" { set.insert(String(key)) } else { set.remove(String(key)) }
        }
    }

    /// The announcement of a move (ids hold no `|`: they are generated, and provider ids are catalog ids).
    static func payload(engaged: Bool, workspaceID: String, providerID: String) -> String {
        "fallback|\(engaged ? "1" : "0")|\(workspaceID)|\(providerID)"
    }
}
