import Foundation

/// A stored key's metadata: everything about it except the secret, which stays sealed in the vault.
public struct Credential: Sendable, Equatable, Identifiable {
    public let id: String
    public var scope: Scope
    public var providerID: String
    /// The nickname / description shown in the keys table.
    public var description: String
    public var defaultModel: String?
    public var role: CredentialRole
    /// The share of traffic among pool keys.
    public var weight: Int
    /// The order among fallbacks (lower first).
    public var position: Int
    public var active: Bool
    public var status: VerificationStatus
    public var lastVerifiedAt: Date?
    /// The vendor's last error message, scrubbed of secrets.
    public var lastError: String?
    /// A masked hint such as `sk-…a1b2`; empty when no key is stored.
    public var hint: String
    /// A keyed fingerprint of the secret, for duplicate detection; never the secret.
    public var fingerprint: String?
    /// Which extras are filled (their values stay sealed).
    public var extrasSet: [String]
    public var createdAt: Date
    public var createdBy: String
    public var updatedAt: Date
    public var updatedBy: String
    /// Expiry, rotate-by age and a rotation under way.
    public var lifecycle: KeyLifecycle

    public init(
        id: String, scope: Scope, providerID: String, description: String, defaultModel: String? = nil,
        role: CredentialRole = .fallback, weight: Int = 1, position: Int = 0, active: Bool = false,
        status: VerificationStatus = .unverified, lastVerifiedAt: Date? = nil, lastError: String? = nil,
        hint: String = "", fingerprint: String? = nil, extrasSet: [String] = [],
        createdAt: Date, createdBy: String, updatedAt: Date, updatedBy: String, lifecycle: KeyLifecycle = KeyLifecycle()
    ) {
        self.id = id
        self.scope = scope
        self.providerID = providerID
        self.description = description
        self.defaultModel = defaultModel
        self.role = role
        self.weight = weight
        self.position = position
        self.active = active
        self.status = status
        self.lastVerifiedAt = lastVerifiedAt
        self.lastError = lastError
        self.hint = hint
        self.fingerprint = fingerprint
        self.extrasSet = extrasSet
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.updatedAt = updatedAt
        self.updatedBy = updatedBy
        self.lifecycle = lifecycle
    }

    /// Whether a key is on file (it may still turn out unreadable).
    public var hasKey: Bool { !hint.isEmpty }
}
