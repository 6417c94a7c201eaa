/// Something that happened to a key that people should hear about.
public enum EventKind: String, Codable, Sendable, CaseIterable {
    /// A key turned invalid (the vendor refused it).
    case keyInvalid = "key.invalid"
    /// A key's account ran out of credit or quota.
    case keyQuotaExceeded = "key.quota_exceeded"
    /// A key that was unusable works again.
    case keyRecovered = "key.recovered"
    /// Resolution moved from a workspace's own key to the platform's or the managed default.
    case fallbackEngaged = "fallback.engaged"
    /// A workspace's spending reached 80 %, 95 % or 100 % of a budget (once per period each).
    case budgetThreshold = "budget.threshold"
    /// A key's expiry date is near (once per date), or passed.
    case keyExpiring = "key.expiring"
    /// A key's secret is older than its rotate-by age (once per secret).
    case keyRotationDue = "key.rotation_due"
    /// A test event, sent on request to check a webhook or the e-mail settings.
    case test = "notification.test"

    /// The event a status change raises, if it is a transition between usable and unusable (or between two unusable kinds).
    public static func transition(from previous: VerificationStatus, to current: VerificationStatus) -> EventKind? {
        guard previous != current else { return nil }
        switch current {
        case .invalid: return .keyInvalid
        case .quotaExceeded: return .keyQuotaExceeded
        case .valid where !previous.isUsable || previous == .unreadable: return .keyRecovered
        default: return nil
        }
    }
}
