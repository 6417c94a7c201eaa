import Foundation

/// Trimming of spaces and tabs without Foundation (`trimmingCharacters(in:)` bridges through `NSString`,
/// which shows on the gateway's profile: every call trims a header or two).
extension StringProtocol {
    /// The text without leading and trailing spaces and horizontal tabs (HTTP's optional whitespace).
    public var trimmingSpacesAndTabs: String {
        let bytes = Array(utf8)
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }
}

/// Foundation's trimming of whitespace and line breaks, skipped when there is nothing to trim: a text that starts and
/// ends with visible ASCII (`!`…`~`, bytes 0x21–0x7E) is already trimmed, as none of those is whitespace or a newline.
/// The usual key or field value is such a text, and `trimmingCharacters(in:)` costs microseconds per call.
extension String {
    /// `trimmingCharacters(in: .whitespacesAndNewlines)`.
    public var trimmingWhitespacesAndNewlines: String { trimming(.whitespacesAndNewlines) }

    /// `trimmingCharacters(in: .newlines)`.
    public var trimmingNewlines: String { trimming(.newlines) }

    /// `set` holds no visible ASCII character.
    private func trimming(_ set: CharacterSet) -> String {
        if let first = utf8.first, let last = utf8.last, (0x21...0x7E).contains(first), (0x21...0x7E).contains(last) { return self }
        return trimmingCharacters(in: set)
    }
}
