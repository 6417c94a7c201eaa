/// When the platform's keys serve a workspace whose own keys cannot: who pays, made explicit.
///
/// Set per workspace, else per plan, else the platform's default (`KEYWARDEN_PLATFORM_FALLBACK`, `on_failure`). It
/// matters only for a provider the workspace has its own usable keys for; a provider it brings none for is served by
/// the platform's keys as before.
public enum PlatformFallback: String, Sendable, Codable, CaseIterable {
    /// The platform's keys never serve a provider the workspace has its own keys for: its own keys, or an error.
    case never
    /// The platform's keys serve when the workspace's own keys fail (refused, rate limited, unreachable, unusable), not
    /// when its own-keys budget is spent.
    case onFailure = "on_failure"
    /// The platform's keys serve when the workspace's own keys fail or its own-keys budget is spent (the platform pays).
    case onFailureOrBudget = "on_failure_or_budget"

    /// The default when neither the workspace nor its plan says.
    public static let platformDefault = PlatformFallback.onFailure

    /// The setting in plain words, for the pages.
    public var explanation: String {
        switch self {
        case .never: "The platform's keys never stand in for this workspace's own keys: if they fail, the call fails."
        case .onFailure: "The platform's keys stand in when this workspace's own keys fail, not when its own-keys budget is spent."
        case .onFailureOrBudget: "The platform's keys stand in when this workspace's own keys fail or its own-keys budget is spent; the platform pays for those calls."
        }
    }

    /// Reads a submitted value; anything else is `invalid_field`.
    public static func parse(_ text: String, field: String = "platform_fallback") throws(KeywardenError) -> PlatformFallback {
        guard let value = PlatformFallback(rawValue: text) else {
            throw .invalid(field, "platform_fallback is never, on_failure or on_failure_or_budget.")
        }
        return value
    }
}
