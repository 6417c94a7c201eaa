/// A secret sealed under its own data key, with the data key wrapped by a scope key (or, in format 1, by a master key).
///
/// - `wrappedKey`: `version ‖ id length ‖ wrapping key's id ‖ nonce ‖ ciphertext ‖ tag` — version 2: the id is the
///   scope key's (`wk-…`); version 1 (before scope keys): the master key's (`mk-…`)
/// - `ciphertext`: `version ‖ nonce ‖ ciphertext ‖ tag`
///
/// Both parts are safe to store and log-free by construction: they never print their bytes.
public struct SealedSecret: Sendable, Equatable, CustomStringConvertible {
    /// The wrapped data key.
    public let wrappedKey: [UInt8]
    /// The secret under the data key.
    public let ciphertext: [UInt8]

    public init(wrappedKey: [UInt8], ciphertext: [UInt8]) {
        self.wrappedKey = wrappedKey
        self.ciphertext = ciphertext
    }

    /// The format of the wrapped data key (1: under a master key; 2: under a scope key); `nil` if unknown.
    public var format: UInt8? {
        guard let first = wrappedKey.first, first == EnvelopeFormat.legacyVersion || first == EnvelopeFormat.scopedVersion else { return nil }
        return first
    }

    /// The id of the key that wrapped the data key (a scope key's, or in format 1 a master key's), read from the
    /// header; `nil` if the header is malformed.
    public var wrappingKeyID: String? {
        guard format != nil, wrappedKey.count >= 2 else { return nil }
        let length = Int(wrappedKey[1])
        guard length > 0, wrappedKey.count >= 2 + length else { return nil }
        return String(decoding: wrappedKey[2..<(2 + length)], as: UTF8.self)
    }

    /// The master key that wrapped the data key directly (format 1 only).
    public var masterKeyID: String? {
        format == EnvelopeFormat.legacyVersion ? wrappingKeyID : nil
    }

    /// The scope key that wrapped the data key (format 2).
    public var scopeKeyID: String? {
        format == EnvelopeFormat.scopedVersion ? wrappingKeyID : nil
    }

    public var description: String {
        "SealedSecret(key \(wrappingKeyID ?? "?"), \(ciphertext.count) bytes)"
    }
}

/// Constants of the envelope format.
enum EnvelopeFormat {
    /// The secret's own format, and a data key wrapped by a master key directly (before scope keys).
    static let version: UInt8 = 1
    static let legacyVersion: UInt8 = 1
    /// A data key wrapped by a scope key.
    static let scopedVersion: UInt8 = 2
    static let nonceLength = 12
    static let tagLength = 16
    static let dataKeyLength = 32
}
