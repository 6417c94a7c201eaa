/// What a text field of a card may hold, written `[class]{min,max}` (`[a-z0-9-]{1,40}` for a region): the
/// characters of a bracket class (ASCII letters, digits, punctuation, and `a-z` style ranges) repeated between
/// `min` and `max` times. Small on purpose: a value rendered into a host name, a header or a path must not be
/// able to carry a `/`, `@`, `#`, `:` or a line break, and checking it costs one pass over the bytes on every call.
public struct FieldPattern: Sendable, Equatable, CustomStringConvertible {
    public let description: String
    private let allowed: [Bool]
    private let minimum: Int
    private let maximum: Int

    /// Parses the written form; `nil` when it is not `[class]{min,max}` (or `{n}`).
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard bytes.first == UInt8(ascii: "["), let close = bytes.lastIndex(of: UInt8(ascii: "]")), close > 1,
              bytes.count > close + 2, bytes[close + 1] == UInt8(ascii: "{"), bytes.last == UInt8(ascii: "}") else { return nil }
        var allowed = [Bool](repeating: false, count: 128)
        var index = 1
        while index < close {
            let start = bytes[index]
            guard start < 128, start > 0x20 else { return nil }
            if index + 2 < close, bytes[index + 1] == UInt8(ascii: "-") {
                let end = bytes[index + 2]
                guard end < 128, end >= start else { return nil }
                for byte in start...end { allowed[Int(byte)] = true }
                index += 3
            } else {
                allowed[Int(start)] = true
                index += 1
            }
        }
        let counts = String(decoding: bytes[(close + 2)..<(bytes.count - 1)], as: UTF8.self).split(separator: ",", omittingEmptySubsequences: false)
        guard (1...2).contains(counts.count), let low = UntrustedNumber.integer(counts[0]), let high = UntrustedNumber.integer(counts[counts.count - 1]),
              low >= 0, high >= max(low, 1), high <= 4096 else { return nil }
        self.description = text
        self.allowed = allowed
        self.minimum = low
        self.maximum = high
    }

    /// Whether the whole value matches.
    public func matches(_ value: String) -> Bool {
        var count = 0
        for byte in value.utf8 {
            guard byte < 128, allowed[Int(byte)] else { return false }
            count += 1
            if count > maximum { return false }
        }
        return count >= minimum
    }

    public static func == (a: FieldPattern, b: FieldPattern) -> Bool { a.description == b.description }
}
