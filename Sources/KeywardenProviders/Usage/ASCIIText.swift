import Foundation
import KeywardenCore

/// Byte searches over text that is all ASCII, where each byte is one character (only CR LF pairs two, and no needle
/// here holds either): the same answers as `String`'s character searches, without building characters. Text that is
/// not all ASCII is left to `String`.
public enum ASCIIText {
    /// `body` over the bytes of `text`, or `nil` when `text` is not all ASCII (or its bytes are not contiguous).
    static func withBytes<Result>(of text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result? {
        text.utf8.withContiguousStorageIfAvailable { bytes in
            bytes.allSatisfy { $0 < 0x80 } ? body(bytes) : nil
        } ?? nil
    }

    /// Where `needle` first occurs in `text`; with `ignoringCase`, `needle` is lowercase and `text`'s ASCII letters
    /// are compared lowercased.
    static func firstIndex<Needle: RandomAccessCollection<UInt8>>(of needle: Needle, in text: UnsafeBufferPointer<UInt8>, ignoringCase: Bool = false) -> Int?
    where Needle.Index == Int {
        guard let first = needle.first, needle.count <= text.count else { return needle.isEmpty ? 0 : nil }
        func folded(_ byte: UInt8) -> UInt8 { ignoringCase && byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte }
        for start in 0...(text.count - needle.count) where folded(text[start]) == first {
            var offset = 1
            while offset < needle.count, folded(text[start + offset]) == needle[offset] { offset += 1 }
            if offset == needle.count { return start }
        }
        return nil
    }

    /// Whether `text` holds `needle` (lowercase ASCII) in any case: a header value such as a content type, read without
    /// Foundation's search (which showed on the gateway's profile) or a lower-cased copy.
    public static func contains(_ needle: StaticString, ignoringCaseIn text: String) -> Bool {
        needle.withUTF8Buffer { needleBytes in
            withBytes(of: text) { firstIndex(of: needleBytes, in: $0, ignoringCase: true) != nil }
                ?? text.lowercased().contains(String(decoding: needleBytes, as: UTF8.self))
        }
    }

    /// Whether `text`, after its leading spaces and tabs, starts with `prefix` (lowercase ASCII) in any case. Text that
    /// is not all ASCII is compared as characters: a combining mark after the prefix's last byte (`audio/\u{301}x`)
    /// makes another character, so it does not start with the prefix (as `String.hasPrefix` says).
    public static func hasPrefix(_ prefix: StaticString, ignoringCaseAfterBlanks text: String) -> Bool {
        prefix.withUTF8Buffer { prefixBytes in
            guard text.utf8.allSatisfy({ $0 < 0x80 }) else {
                return text.trimmingSpacesAndTabs.lowercased().hasPrefix(String(decoding: prefixBytes, as: UTF8.self))
            }
            var bytes = text.utf8.drop { $0 == 0x20 || $0 == 0x09 }[...]
            for expected in prefixBytes {
                guard let byte = bytes.popFirst() else { return false }
                let folded = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
                guard folded == expected else { return false }
            }
            return true
        }
    }
}
