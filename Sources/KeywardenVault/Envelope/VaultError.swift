/// Why a sealed secret could not be opened or sealed. Every opening failure is `unreadable`:
/// the reason is for operators' logs and never includes key material or ciphertext.
public enum VaultError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The ciphertext does not open (wrong master key, tampered bytes, moved row, unknown format).
    case unreadable(UnreadableReason)
    /// The secret could not be sealed (a failure of the crypto library).
    case sealFailed
    /// The master key's device (a PKCS#11 token, a KMS) could not be used: unreachable, refusing (a wrong PIN, a
    /// disabled key, denied access), or slow past its deadline. `deviceCode` is the device client's stable code; `detail`
    /// says what to check (never a PIN, a key or a plaintext). Operations that need it answer 503.
    case custodyUnavailable(deviceCode: String, detail: String)
    /// The workspace's own KMS key (a customer-managed key) refuses Keywarden: disabled, scheduled for deletion,
    /// deleted, or its policy no longer granting access. The customer's decision, lasting until they reverse it; the
    /// workspace's secrets do not open meanwhile (its calls fall to the platform's keys where its settings allow).
    case customerKeyRevoked(deviceCode: String, detail: String)

    /// Why a ciphertext is unreadable.
    public enum UnreadableReason: String, Sendable, Equatable {
        /// The header names a master key the keyring does not have.
        case unknownMasterKey = "unknown_master_key"
        /// The header names a workspace (scope) key that does not exist: never made, or shredded with its workspace.
        case unknownScopeKey = "unknown_workspace_key"
        /// The bytes are too short, or their version is not one this build reads.
        case malformed
        /// Authentication failed: wrong key, tampered bytes, or a ciphertext moved to another row.
        case authenticationFailed = "authentication_failed"
    }

    /// Whether the key above the secret could not be used: the master key's device (a passing outage) or the
    /// workspace's own KMS key (revoked by its customer). Not a verdict on the secret: it is not marked unreadable.
    public var isCustodyUnavailable: Bool {
        switch self {
        case .custodyUnavailable, .customerKeyRevoked: return true
        case .unreadable, .sealFailed: return false
        }
    }

    /// Whether the workspace's own KMS key refuses Keywarden (its customer revoked access).
    public var isCustomerKeyRevoked: Bool {
        if case .customerKeyRevoked = self { return true }
        return false
    }

    /// A stable code.
    public var code: String {
        switch self {
        case .unreadable: return "unreadable"
        case .sealFailed: return "seal_failed"
        case .custodyUnavailable: return "key_custody_unavailable"
        case .customerKeyRevoked: return "customer_key_revoked"
        }
    }

    public var description: String {
        switch self {
        case .unreadable(let reason): return "unreadable (\(reason.rawValue))"
        case .sealFailed: return "the secret could not be sealed"
        case .custodyUnavailable(let code, let detail): return "the master key's device cannot be used now (\(code)): \(detail)"
        case .customerKeyRevoked(let code, let detail): return "the workspace's own KMS key refuses Keywarden (\(code)): \(detail)"
        }
    }
}

extension VaultError {
    /// What `body` opens, or `nil` when it is unreadable (a state: shown as "No key"); every other error, a device that
    /// cannot be used now above all, is thrown, so a passing outage never reads as a missing secret.
    public static func unlessUnreadable<T>(_ body: () async throws -> T) async throws -> T? {
        do {
            return try await body()
        } catch VaultError.unreadable {
            return nil
        }
    }
}
