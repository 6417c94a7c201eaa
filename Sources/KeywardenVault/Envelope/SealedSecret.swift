/// A secret sealed under its own data key, with the data key wrapped by a master key.
///
/// - `wrappedKey`: `version ‖ id length ‖ master-key id ‖ nonce ‖ ciphertext ‖ tag`
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

    /// The id of the master key that wrapped the data key, read from the header; `nil` if the header is malformed.
    public var masterKeyID: String? {
        guard wrappedKey.count >= 2, wrappedKey[0] == EnvelopeFormat.version else { return nil }
        let length = Int(wrappedKey[1])
        guard length > 0, wrappedKey.count >= 2 + length else { return nil }
        return String(decoding: wrappedKey[2..<(2 + length)], as: UTF8.self)
    }

    public var description: String {
        "SealedSecret(master key \(masterKeyID ?? "?"), \(ciphertext.count) bytes)"
    }
}

/// Constants of the envelope format.
enum EnvelopeFormat {
    static let version: UInt8 = 1
    static let nonceLength = 12
    static let tagLength = 16
    static let dataKeyLength = 32
}
