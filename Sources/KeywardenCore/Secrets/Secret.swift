/// A secret value (an API key, a password) that cannot be printed, logged, dumped or encoded.
///
/// `description`, `debugDescription`, string interpolation, `dump` and `Encodable` all show
/// `Secret.redacted`. The plaintext is reachable only through ``withPlaintext(_:)`` and
/// ``unprotectedString``, whose names make every use easy to find in review.
/// Swift gives no guarantee that freed memory is wiped; keep a `Secret` alive only while it is used.
public struct Secret: Sendable {
    /// What every printing or encoding path shows instead of the value.
    public static let redacted = "<redacted>"

    private let bytes: [UInt8]

    /// Wraps the UTF-8 bytes of a string.
    public init(_ value: String) {
        self.bytes = Array(value.utf8)
    }

    /// Wraps raw bytes.
    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The number of bytes in the secret.
    public var byteCount: Int { bytes.count }

    /// The number of Unicode code points in the secret (its UTF-8 bytes that do not continue a sequence).
    public var characterCount: Int { bytes.reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) } }

    /// Whether the secret is empty (an absent value, for leave-blank-to-keep updates).
    public var isEmpty: Bool { bytes.isEmpty }

    /// Whether the secret is empty or only whitespace.
    public var isBlank: Bool { bytes.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D } }

    /// Calls `body` with the plaintext bytes. Do not let them escape.
    public func withPlaintext<R>(_ body: ([UInt8]) throws -> R) rethrows -> R {
        try body(bytes)
    }

    /// The plaintext as a string, for the few places that must hand it to a vendor.
    public var unprotectedString: String {
        String(decoding: bytes, as: UTF8.self)
    }

    /// A short hint that identifies the secret without revealing it, such as `sk-…a1b2`.
    public var maskedHint: String {
        SecretHint.make(for: bytes)
    }
}

extension Secret: Equatable {
    /// Compares in time that depends only on the lengths, never on where the bytes differ.
    public static func == (lhs: Secret, rhs: Secret) -> Bool {
        guard lhs.bytes.count == rhs.bytes.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.bytes.indices {
            difference |= lhs.bytes[index] ^ rhs.bytes[index]
        }
        return difference == 0
    }
}

extension Secret: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { Self.redacted }
    public var debugDescription: String { "Secret(\(Self.redacted))" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

extension Secret: Codable {
    /// Decodes a secret from a plain string (an API request carrying a new key).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self.init(try container.decode(String.self))
    }

    /// Encodes the redaction marker, never the value.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Self.redacted)
    }
}

/// Builds the masked hint shown in place of a secret.
public enum SecretHint {
    /// Shows at most a short vendor prefix (up to and including its first `-`, at most 4 characters)
    /// and the last 4 characters; short secrets show less, very short ones nothing.
    public static func make(for bytes: [UInt8]) -> String {
        let characters = Array(String(decoding: bytes, as: UTF8.self))
        switch characters.count {
        case 0:
            return ""
        case ..<8:
            return "…"
        case ..<16:
            return "…" + String(characters.suffix(2))
        default:
            let head = characters.prefix(4)
            let prefix: String
            if let dash = head.firstIndex(of: "-") {
                prefix = String(head[...dash])
            } else {
                prefix = String(characters.prefix(3))
            }
            return prefix + "…" + String(characters.suffix(4))
        }
    }
}
