import Crypto
import Foundation
import KeywardenCore

/// A bearer token Keywarden issues: `kw_` and 43 URL-safe characters (32 random bytes).
///
/// Only its SHA-256 digest is stored; tokens carry 256 bits of entropy, so a fast hash is enough
/// and lookups stay one indexed query.
public struct AccessToken: Sendable, CustomStringConvertible {
    /// The prefix of every Keywarden token.
    public static let prefix = "kw_"
    /// How many characters of a token (after `kw_`) are kept for display, such as `kw_AbC1…`.
    public static let displayPrefixLength = 6

    /// The token itself; shown once to its owner, never stored.
    public let value: String

    /// A new random token.
    public static func generate() -> AccessToken {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return AccessToken(value: prefix + base64URL(bytes))
    }

    public init(value: String) {
        self.value = value
    }

    /// Whether `text` has the shape of a Keywarden token (not whether it is valid).
    public static func looksLikeToken(_ text: String) -> Bool {
        // Over UTF-8 bytes: every request is checked, and walking `Character`s costs grapheme breaking.
        let utf8 = text.utf8
        return text.hasPrefix(prefix) && utf8.count >= prefix.utf8.count + 32
            && utf8.dropFirst(prefix.utf8.count).allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D || byte == 0x5F
            }
    }

    /// The digest stored in place of the token (hex SHA-256).
    public var digest: String { Self.digest(of: value) }

    /// The digest of any presented token text.
    public static func digest(of text: String) -> String {
        Hex.encode(SHA256.hash(data: Array(text.utf8)))
    }

    /// The part shown in listings to tell tokens apart.
    public var displayPrefix: String { String(value.prefix(Self.prefix.count + Self.displayPrefixLength)) }

    /// Redacted: a token is a secret.
    public var description: String { displayPrefix + "…" }

    /// Compares two digests in constant time.
    public static func digestsMatch(_ lhs: String, _ rhs: String) -> Bool {
        let a = Array(lhs.utf8), b = Array(rhs.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }

    static func base64URL(_ bytes: [UInt8]) -> String { Base64URL.encode(bytes) }
}
