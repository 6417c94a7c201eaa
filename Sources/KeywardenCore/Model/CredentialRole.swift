/// How a workspace key takes part in resolution.
public enum CredentialRole: String, Codable, Sendable, CaseIterable {
    /// Tried first; at most one per provider per workspace.
    case primary
    /// Tried after the primary, in order.
    case fallback
    /// Shared by weight after primary and fallbacks.
    case pool
}
