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

extension VerificationStatus {
    /// Short, actionable advice for an operator.
    public func hint(retryAfter: Int? = nil) -> String {
        switch self {
        case .unverified: return "Not tested yet: press Test."
        case .valid: return "The key works."
        case .invalid: return "The vendor rejected this key. Create a new key in the vendor's console and paste it here."
        case .noPermission: return "The key works but may not do this. Check the organization or project it belongs to, and its permissions."
        case .rateLimited:
            let wait = retryAfter.map { " (the vendor asked to wait \($0) s)" } ?? ""
            return "The vendor is rate-limiting this key\(wait). Try again later, or raise the limit with the vendor."
        case .quotaExceeded: return "The account behind this key has no credit or quota left. Add billing or raise the quota with the vendor."
        case .modelNotFound: return "The default model is not available to this key. Pick one of the listed models."
        case .unreachable: return "Keywarden could not reach the vendor. Check the base URL and the network, and the vendor's status page."
        case .unreadable: return "The stored key cannot be decrypted (the master key changed, or the row was altered). Enter the key again."
        }
    }
}
