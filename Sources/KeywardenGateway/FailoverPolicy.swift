import KeywardenCore

/// What the gateway does after one attempt, decided from what the vendor (or the network) answered.
///
/// Pure: the gateway reads an attempt's response head (and a failed attempt's body), asks the policy, and
/// carries the decision out (rests, recorded statuses, health checks). Every rule is tested with plain values.
public struct FailoverPolicy: Sendable, Equatable {
    /// The most candidates one call goes through (the first included).
    public var maxAttempts: Int
    /// How long a key rests after a 429 without `Retry-After`.
    public var defaultCooldown: Duration
    /// How long a refused key rests while the health check looks at it.
    public var rejectedCooldown: Duration
    /// The longest rest a vendor's `Retry-After` can impose, in seconds.
    public var maximumRetryAfterSeconds: Int

    public init(maxAttempts: Int, defaultCooldown: Duration, rejectedCooldown: Duration, maximumCooldown: Duration) {
        self.maxAttempts = max(1, maxAttempts)
        self.defaultCooldown = defaultCooldown
        self.rejectedCooldown = rejectedCooldown
        self.maximumRetryAfterSeconds = UntrustedNumber.integer(Double(maximumCooldown.components.seconds), clampedTo: 0...Int(Int32.max)) ?? 3600
    }

    public init(_ settings: GatewaySettings) {
        self.init(maxAttempts: settings.maxAttempts, defaultCooldown: settings.defaultCooldown,
                  rejectedCooldown: settings.rejectedCooldown, maximumCooldown: settings.maximumCooldown)
    }

    /// What one attempt came to.
    public enum Outcome: Sendable, Equatable {
        /// A response head arrived. For a status that fails over, `verdict` is the vendor's word on the key (classified
        /// from its error body) and `retryAfter` the wait it asked for (its `Retry-After`, or its body's delay), already clamped.
        case answered(status: Int, verdict: VerificationStatus?, retryAfter: Duration?)
        /// No response head: the vendor could not be reached.
        case unreachable(Unreachable)
    }

    /// Why no response head arrived.
    public enum Unreachable: String, Sendable, Equatable {
        case timedOut = "timeout"
        case connectionFailed = "connect"
        /// The egress policy refused the target a workspace shaped.
        case targetRefused = "target_not_allowed"
    }

    /// How the key that failed rests.
    public struct Rest: Sendable, Equatable {
        public var duration: Duration
        /// A rate limit (the vendor's 429), rather than a refusal of the key.
        public var rateLimited: Bool
        /// Whether the calling workspace owns the key: a shared key's refusal rests it only for that workspace.
        public var owned: Bool
    }

    /// Giving up on a key for this call.
    public struct Failover: Sendable, Equatable {
        /// The metric's reason (`rate_limited`, `invalid`, `forbidden`, `quota_exceeded`, `server_error`, `timeout`, …).
        public var reason: String
        public var rest: Rest?
        /// The status recorded on the key (only for the caller's own key: a shared key's refusal proves nothing).
        public var record: VerificationStatus?
        /// Whether Keywarden's own probe should look at the key (after `record` is written, when there is one).
        public var checkHealth: Bool
    }

    /// The next step after one attempt.
    public enum Action: Sendable, Equatable {
        /// Pass this answer on to the caller: a success, or an error that is the caller's (a 400, a 404).
        case deliver
        /// Give up on this key and go on to the next candidate, if one may be tried.
        case failover(Failover)
    }

    /// Statuses that send the call to the next key: the key was refused, rate limited, or the vendor failed.
    public static func triggersFailover(_ status: Int) -> Bool {
        status == 401 || status == 403 || status == 429 || (500...599).contains(status)
    }

    /// Whether another candidate may be tried after `attemptsMade` attempts: a streamed body is sent only once.
    public func mayTry(afterAttempts attemptsMade: Int, bodyReplayable: Bool) -> Bool {
        attemptsMade == 0 || bodyReplayable
    }

    /// The next step after an attempt whose key the caller owns (`owned`) or shares (the platform's, the managed default).
    ///
    /// - A 429 rests the key for its `Retry-After` (or the default rest).
    /// - A refusal (401, 403, no quota) of the caller's own key rests it for everyone and records the verdict.
    /// - A refusal of a shared key is no proof the key is bad (the caller's path and headers shaped the answer): the key
    ///   rests for the calling workspace only, and the health probe decides whether it is bad for everyone.
    /// - A 5xx, a timeout or a failed connection moves on without a rest.
    public func decide(_ outcome: Outcome, owned: Bool) -> Action {
        switch outcome {
        case .unreachable(let why):
            return .failover(Failover(reason: why.rawValue, rest: nil, record: nil, checkHealth: false))
        case .answered(let status, let verdict, let retryAfter):
            guard Self.triggersFailover(status) else { return .deliver }
            let reason: String
            var record: VerificationStatus?
            switch verdict {
            case .rateLimited?:
                let duration = retryAfter ?? defaultCooldown
                return .failover(Failover(reason: "rate_limited", rest: Rest(duration: duration, rateLimited: true, owned: owned),
                                          record: nil, checkHealth: false))
            case .modelNotFound?:
                // The request named a model this key's account may not use: another key may; this one is not rested.
                return .failover(Failover(reason: "model_not_allowed", rest: nil, record: nil, checkHealth: false))
            case .quotaExceeded?:
                record = .quotaExceeded
                reason = "quota_exceeded"
            case .invalid? where status == 401:
                record = .invalid
                reason = "invalid"
            case .noPermission?:
                reason = "forbidden"
            default:
                return .failover(Failover(reason: "server_error", rest: nil, record: nil, checkHealth: false))
            }
            let rest = Rest(duration: rejectedCooldown, rateLimited: false, owned: owned)
            // A shared key's refusal records nothing; without a record the probe judges the key, after one only an invalid key.
            let recorded = owned ? record : nil
            return .failover(Failover(reason: reason, rest: rest, record: recorded, checkHealth: recorded.map { $0 == .invalid } ?? true))
        }
    }

    /// During a rotation's grace period a key has two secrets. A refusal of the new one does not rest the key (its old
    /// secret is tried next and may serve); a refusal of the old one, tried only after the new one was refused, is the
    /// key's, and rests it as usual (a 429, the account's, always does). No verdict on the old secret is recorded on the
    /// key, and it asks for no health check (the check tests the key's own secret).
    public static func duringRotation(_ failover: Failover, slot: KeySlot) -> Failover {
        var failover = failover
        switch slot {
        case .current:
            if failover.rest?.rateLimited != true { failover.rest = nil }
        case .previous:
            failover.record = nil
            failover.checkHealth = false
        }
        return failover
    }

    /// The candidates a call may go through: the first `maxAttempts` keys. A rotated key's old secret is part of its
    /// key's turn, not a key of its own.
    public func keysToTry(_ candidates: [Candidate]) -> ArraySlice<Candidate> {
        var keys = 0
        var end = 0
        for (index, candidate) in candidates.enumerated() {
            let sameKeyAsBefore = index > 0 && candidates[index - 1].credentialID == candidate.credentialID && candidate.slot == .previous
            if !sameKeyAsBefore {
                guard keys < maxAttempts else { break }
                keys += 1
            }
            end = index + 1
        }
        return candidates[..<end]
    }
}
