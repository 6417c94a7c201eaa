/// Why a sealed secret could not be opened or sealed. Every opening failure is `unreadable`:
/// the reason is for operators' logs and never includes key material or ciphertext.
public enum VaultError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The ciphertext does not open (wrong master key, tampered bytes, moved row, unknown format).
    case unreadable(UnreadableReason)
    /// The secret could not be sealed (a failure of the crypto library).
    case sealFailed

    /// Why a ciphertext is unreadable.
    public enum UnreadableReason: String, Sendable, Equatable {
        /// The header names a master key the keyring does not have.
        case unknownMasterKey = "unknown_master_key"
        /// The bytes are too short, or their version is not one this build reads.
        case malformed
        /// Authentication failed: wrong key, tampered bytes, or a ciphertext moved to another row.
        case authenticationFailed = "authentication_failed"
    }

    /// A stable code.
    public var code: String {
        switch self {
        case .unreadable: return "unreadable"
        case .sealFailed: return "seal_failed"
        }
    }

    public var description: String {
        switch self {
        case .unreadable(let reason): return "unreadable (\(reason.rawValue))"
        case .sealFailed: return "the secret could not be sealed"
        }
    }
}
