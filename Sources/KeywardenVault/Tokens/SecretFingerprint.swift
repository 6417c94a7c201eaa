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

    /// A MAC of `text` (hex, 32 bytes) under a key derived from the fingerprint key for `purpose` alone.
    ///
    /// Never the fingerprint's own HMAC: fingerprints of stored keys (chosen by whoever stores a key) are shown in the
    /// audit log, so an HMAC under the fingerprint key is an oracle. The derived key is HKDF-SHA256 with the fingerprint
    /// key as input keying material, a fixed salt and `purpose` as info: no fingerprint reveals anything of it.
    public func signature(of text: String, purpose: String) -> String {
        let derived = HKDF<SHA256>.deriveKey(inputKeyMaterial: key, salt: Array("keywarden.derived-mac.v1".utf8),
                                             info: Array(purpose.utf8), outputByteCount: 32)
        return Hex.encode(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: derived))
    }

    /// `fp_` and 24 hex digits.
    public func fingerprint(of secret: Secret) -> String {
        let mac = secret.withPlaintext { HMAC<SHA256>.authenticationCode(for: $0, using: key) }
        return "fp_" + Hex.encode(mac.prefix(12))
    }
}
