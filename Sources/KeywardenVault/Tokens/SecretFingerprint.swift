import Crypto
import KeywardenCore

/// Keyed fingerprints of secrets (HMAC-SHA256 under a key kept in the vault), for duplicate
/// detection and audit entries. Without the key, a fingerprint cannot be tested against guesses.
public struct SecretFingerprinter: Sendable {
    /// The length of the fingerprint key in bytes.
    public static let keyLength = 32

    private let key: SymmetricKey

    public init(key: Secret) {
        self.key = key.withPlaintext { SymmetricKey(data: $0) }
    }

    /// A new random fingerprint key, to be sealed in the vault.
    public static func generateKey() -> Secret {
        Secret(bytes: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    /// `fp_` and 24 hex digits.
    public func fingerprint(of secret: Secret) -> String {
        let mac = secret.withPlaintext { HMAC<SHA256>.authenticationCode(for: $0, using: key) }
        return "fp_" + Hex.encode(mac.prefix(12))
    }
}
