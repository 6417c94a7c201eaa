/// The sealed key and extras a credential held when it was used (their ciphertexts: a master-key rotation
/// re-wraps the data keys but leaves these as they are; a new key or new extras change them).
public struct KeyVersion: Sendable, Equatable {
    public let key: [UInt8]?
    public let extras: [UInt8]?

    public init(key: [UInt8]?, extras: [UInt8]?) {
        self.key = key
        self.extras = extras
    }

    /// A short name of the sealed key (FNV-1a of its ciphertext, which is random per save): two instances tell by it
    /// whether they speak of the same secret (a rest announced for a secret since replaced does not apply). `nil`
    /// without a key.
    public var tag: String? {
        key.map { KeyVersion.tag(of: $0) }
    }

    public static func tag(of ciphertext: [UInt8]) -> String {
        let hash = ciphertext.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
        return String(hash, radix: 16)
    }
}
