import Foundation

/// Base64 with the URL- and filename-safe alphabet and no padding (RFC 4648 §5): tokens, cursors, cookies.
public enum Base64URL {
    /// The bytes as unpadded base64url.
    public static func encode(_ bytes: [UInt8]) -> String {
        fromStandard(Data(bytes).base64EncodedString())
    }

    /// The bytes of unpadded base64url text; `nil` when it is not that.
    public static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.allSatisfy(isAlphabet) else { return nil }
        return Data(base64Encoded: toStandard(text)).map { [UInt8]($0) }
    }

    /// Standard base64 text rewritten in the URL-safe alphabet, unpadded.
    public static func fromStandard(_ text: String) -> String {
        text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Base64url text rewritten in the standard alphabet, padded.
    public static func toStandard(_ text: String) -> String {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
        return standard
    }

    /// A letter, a digit, `-` or `_`.
    public static func isAlphabet(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2D || byte == 0x5F
    }
}
