/// What a use of a workspace's own secret was, as its custody log records it.
public enum CustodyUse: String, Sendable, Codable, CaseIterable {
    /// Gateway calls served by the key (aggregated: a count per key per minute, per instance).
    case gatewayCall = "gateway_call"
    /// A Test a person (or a Save & Verify) asked for.
    case test
    /// The periodic health check.
    case healthCheck = "health_check"
    /// The key's value shown to a caller allowed to see it.
    case reveal
    /// A step of the key's rotation that opened or sealed its secrets (staged, promoted).
    case rotation
}
