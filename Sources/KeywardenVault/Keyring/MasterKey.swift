import Crypto
import Foundation
import KeywardenCore

/// One 256-bit master key of a keyring, named by an id derived from the key itself.
public struct MasterKey: Sendable {
    /// Whether the key seals new data keys or only opens old ones.
    public enum State: String, Codable, Sendable {
        /// The one key that wraps new data keys.
        case active
        /// Kept to open data keys wrapped before a rotation; retired once nothing refers to it.
        case decryptOnly = "decrypt_only"
    }

    /// The length of a master key in bytes.
    public static let byteCount = 32

    /// `mk-` and 12 hex digits of an HMAC of a fixed label under the key: stable wherever the key
    /// is configured (file or environment), and says nothing about the key.
    public let id: String
    /// The id's UTF-8 bytes, as they appear in ciphertext headers.
    let idBytes: [UInt8]
    public let key: SymmetricKey
    public var state: State
    public let createdAt: Date

    /// Wraps existing key material, checking its length.
    public init(material: [UInt8], state: State, createdAt: Date = Date()) throws(KeyringError) {
        guard material.count == Self.byteCount else {
            throw .wrongKeyLength(actual: material.count)
        }
        let key = SymmetricKey(data: material)
        self.key = key
        self.id = Self.deriveID(for: key)
        self.idBytes = Array(id.utf8)
        self.state = state
        self.createdAt = createdAt
    }

    /// A new random master key.
    public static func generate(state: State = .active, createdAt: Date = Date()) -> MasterKey {
        let key = SymmetricKey(size: .bits256)
        return MasterKey(key: key, state: state, createdAt: createdAt)
    }

    private init(key: SymmetricKey, state: State, createdAt: Date) {
        self.key = key
        self.id = Self.deriveID(for: key)
        self.idBytes = Array(id.utf8)
        self.state = state
        self.createdAt = createdAt
    }

    /// Decodes a base64 master key (as given in `KEYWARDEN_MASTER_KEY`).
    public init(base64: String, state: State, createdAt: Date = Date()) throws(KeyringError) {
        let trimmed = base64.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let data = Data(base64Encoded: trimmed) else { throw .invalidBase64 }
        try self.init(material: Array(data), state: state, createdAt: createdAt)
    }

    /// The key material as base64, for the keyring file.
    var base64Material: String {
        key.withUnsafeBytes { Data($0).base64EncodedString() }
    }

    static func deriveID(for key: SymmetricKey) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("keywarden.master-key-id.v1".utf8), using: key)
        return idPrefix + Hex.encode(mac.prefix(6))
    }

    /// What every keyring master key's id begins with.
    public static let idPrefix = "mk-"
}
