/// What Keywarden knows about whether a stored key works.
public enum VerificationStatus: String, Codable, Sendable, CaseIterable {
    case unverified
    case valid
    /// The vendor refused the key (401).
    case invalid
    /// The key works but may not do this (403).
    case noPermission = "no_permission"
    case rateLimited = "rate_limited"
    /// The account behind the key has no credit or quota left.
    case quotaExceeded = "quota_exceeded"
    /// The key works but the chosen default model does not exist for it.
    case modelNotFound = "model_not_found"
    case unreachable
    /// The stored ciphertext cannot be opened (master key changed, row tampered); shown as "No key".
    case unreadable

    /// Whether resolution may pick a key in this state.
    public var isUsable: Bool {
        switch self {
        case .unverified, .valid, .noPermission, .rateLimited, .unreachable, .modelNotFound: return true
        case .invalid, .quotaExceeded, .unreadable: return false
        }
    }
}
