/// A strict JSON reader that finds an object's members without building the document.
///
/// The gateway reads a handful of fields per call (a request's `model` and `stream`, an answer's `usage`); decoding
/// the whole body with `JSONDecoder` cost ~6 % of a call's CPU. This validates the whole text as RFC 8259 JSON
/// (a malformed or truncated body tells nothing, as before) but keeps only where each member's value lies, and
/// decodes just the values asked for. Hostile input is bounded: nesting deeper than ``maximumDepth`` is refused,
/// not recursed into.
enum JSONScan {
    /// The deepest nesting accepted: far beyond any request or answer the gateway reads (a tool's JSON schema nests
    /// a few dozen levels at most), and shallow enough for a debug build's stack (~1 KB per level).
    static let maximumDepth = 128

    /// The members of the object that is all of `bytes[range]` (whitespace around it allowed), by name; `nil` when
    /// that text is not one valid JSON object, or names a member twice (which one a vendor reads is anybody's guess,
    /// and Keywarden must not route or meter by the other).
    static func members(_ bytes: [UInt8], _ range: Range<Int>) -> [String: Range<Int>]? {
        var index = skipSpace(bytes, range.lowerBound, range.upperBound)
        guard index < range.upperBound, bytes[index] == UInt8(ascii: "{") else { return nil }
        var members: [String: Range<Int>] = [:]
        var repeated = false
        guard let end = scanObject(bytes, index, range.upperBound, depth: 1, record: { name, value in
            // The name was checked as a string by the scan: it decodes.
            guard let (name, _) = decodeString(bytes, name.lowerBound, name.upperBound) else { repeated = true; return }
            if members.updateValue(value, forKey: name) != nil { repeated = true }
        }) else { return nil }
        index = skipSpace(bytes, end, range.upperBound)
        return index == range.upperBound && !repeated ? members : nil
    }

    /// ``members(_:_:)`` with only the members `names` names: the same answer, `nil` included (a name given twice,
    /// whichever it is, still refuses the object), without making a `String` of every name.
    ///
    /// Names are compared as bytes while every name is plain (printable ASCII, no escape), where bytes are equal exactly
    /// when the strings are; an object with any other name (`"mod\u0065l"`, or one a `String` equates with another
    /// spelling) is read by ``members(_:_:)``.
    static func members(_ bytes: [UInt8], _ range: Range<Int>, only names: JSONNames) -> [String: Range<Int>]? {
        var index = skipSpace(bytes, range.lowerBound, range.upperBound)
        guard index < range.upperBound, bytes[index] == UInt8(ascii: "{") else { return nil }
        // One piece of state the recorder changes (one capture, not four).
        var selection = Selection()
        guard let end = scanObject(bytes, index, range.upperBound, depth: 1, record: { name, value in
            selection.record(name: name, value: value, of: bytes, wanted: names)
        }) else { return nil }
        index = skipSpace(bytes, end, range.upperBound)
        guard index == range.upperBound else { return nil }
        guard selection.allPlain else { return members(bytes, range)?.filter { names.names.contains($0.key) } }
        return selection.repeated ? nil : selection.found
    }

    /// What ``members(_:_:only:)`` has seen of an object so far.
    private struct Selection {
        var found: [String: Range<Int>] = [:]
        var seen = PlainNames()
        var repeated = false
        /// Whether every name so far was plain; once one is not, the rest is left to ``JSONScan/members(_:_:)``.
        var allPlain = true

        mutating func record(name: Range<Int>, value: Range<Int>, of bytes: [UInt8], wanted names: JSONNames) {
            guard allPlain else { return }
            let inside = bytes[name.lowerBound + 1..<name.upperBound - 1]
            guard PlainNames.isPlain(inside) else { allPlain = false; return }
            if !seen.insert(name, of: bytes) { repeated = true }
            if let wanted = names.name(matching: inside) { found[wanted] = value }
        }
    }

    /// The members of the object `bytes` holds.
    static func members(_ bytes: [UInt8]) -> [String: Range<Int>]? {
        members(bytes, 0..<bytes.count)
    }

    /// The string a member's value is, or `nil` when it is another type.
    static func string(_ bytes: [UInt8], _ range: Range<Int>) -> String? {
        guard !range.isEmpty, bytes[range.lowerBound] == UInt8(ascii: "\"") else { return nil }
        guard let (text, end) = decodeString(bytes, range.lowerBound, range.upperBound), end == range.upperBound else { return nil }
        return text
    }

    /// The integer a member's value is: digits with an optional minus, within `Int`; or a number with an exact
    /// integer value (`12.0`, `1e3`) up to 2^53; else `nil`.
    static func int(_ bytes: [UInt8], _ range: Range<Int>) -> Int? {
        if let digits = digitsInt(bytes, range) { return digits }
        guard skipNumber(bytes, range.lowerBound, range.upperBound) == range.upperBound,
              let value = Double(String(decoding: bytes[range], as: UTF8.self)),
              value.rounded() == value, abs(value) <= 9_007_199_254_740_992 else { return nil }
        return Int(value)
    }

    private static func digitsInt(_ bytes: [UInt8], _ range: Range<Int>) -> Int? {
        var index = range.lowerBound
        var negative = false
        if index < range.upperBound, bytes[index] == UInt8(ascii: "-") { negative = true; index += 1 }
        guard index < range.upperBound else { return nil }
        var value = 0
        while index < range.upperBound {
            let byte = bytes[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let digit = Int(byte - UInt8(ascii: "0"))
            let (times, overflowTimes) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowSum) = negative ? times.subtractingReportingOverflow(digit) : times.addingReportingOverflow(digit)
            guard !overflowTimes, !overflowSum else { return nil }
            value = sum
            index += 1
        }
        return value
    }

    /// The boolean a member's value is, or `nil`.
    static func bool(_ bytes: [UInt8], _ range: Range<Int>) -> Bool? {
        if bytes[range].elementsEqual("true".utf8) { return true }
        if bytes[range].elementsEqual("false".utf8) { return false }
        return nil
    }

    // MARK: Scanning

    static func skipSpace(_ bytes: [UInt8], _ start: Int, _ end: Int) -> Int {
        var index = start
        while index < end {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return index
            }
        }
        return index
    }

    /// The index after the value starting at `start`, or `nil` when it is not valid JSON.
    static func skipValue(_ bytes: [UInt8], _ start: Int, _ end: Int, depth: Int) -> Int? {
        guard start < end else { return nil }
        switch bytes[start] {
        case UInt8(ascii: "{"):
            return scanObject(bytes, start, end, depth: depth + 1, record: nil)
        case UInt8(ascii: "["):
            return scanArray(bytes, start, end, depth: depth + 1)
        case UInt8(ascii: "\""):
            return skipString(bytes, start, end)
        case UInt8(ascii: "t"):
            return literal("true", bytes, start, end)
        case UInt8(ascii: "f"):
            return literal("false", bytes, start, end)
        case UInt8(ascii: "n"):
            return literal("null", bytes, start, end)
        default:
            return skipNumber(bytes, start, end)
        }
    }

    /// The index after the object starting at `start`, or `nil` when it is not valid JSON; `record` is given each
    /// member's name (its bytes, quotes included, checked as a string) and value.
    static func scanObject(_ bytes: [UInt8], _ start: Int, _ end: Int, depth: Int,
                           record: ((_ name: Range<Int>, _ value: Range<Int>) -> Void)?) -> Int? {
        guard depth <= maximumDepth else { return nil }
        var index = skipSpace(bytes, start + 1, end)
        guard index < end else { return nil }
        if bytes[index] == UInt8(ascii: "}") { return index + 1 }
        while true {
            guard index < end, bytes[index] == UInt8(ascii: "\"") else { return nil }
            // A name is only checked here; a recorder decodes what it needs.
            let nameStart = index
            guard let nameEnd = skipString(bytes, index, end) else { return nil }
            index = skipSpace(bytes, nameEnd, end)
            guard index < end, bytes[index] == UInt8(ascii: ":") else { return nil }
            let valueStart = skipSpace(bytes, index + 1, end)
            guard let valueEnd = skipValue(bytes, valueStart, end, depth: depth) else { return nil }
            record?(nameStart..<nameEnd, valueStart..<valueEnd)
            index = skipSpace(bytes, valueEnd, end)
            guard index < end else { return nil }
            if bytes[index] == UInt8(ascii: "}") { return index + 1 }
            guard bytes[index] == UInt8(ascii: ",") else { return nil }
            index = skipSpace(bytes, index + 1, end)
        }
    }

    /// Where each element of the array that is all of `bytes[range]` (JSON whitespace around it allowed) lies; `nil`
    /// when that is not one valid JSON array.
    static func elements(_ bytes: [UInt8], _ range: Range<Int>) -> [Range<Int>]? {
        var index = skipSpace(bytes, range.lowerBound, range.upperBound)
        guard index < range.upperBound, bytes[index] == UInt8(ascii: "[") else { return nil }
        var found: [Range<Int>] = []
        index = skipSpace(bytes, index + 1, range.upperBound)
        if index < range.upperBound, bytes[index] == UInt8(ascii: "]") {
            return skipSpace(bytes, index + 1, range.upperBound) == range.upperBound ? [] : nil
        }
        while true {
            guard let valueEnd = skipValue(bytes, index, range.upperBound, depth: 1) else { return nil }
            found.append(index..<valueEnd)
            index = skipSpace(bytes, valueEnd, range.upperBound)
            guard index < range.upperBound else { return nil }
            if bytes[index] == UInt8(ascii: "]") {
                return skipSpace(bytes, index + 1, range.upperBound) == range.upperBound ? found : nil
            }
            guard bytes[index] == UInt8(ascii: ",") else { return nil }
            index = skipSpace(bytes, index + 1, range.upperBound)
        }
    }

    static func scanArray(_ bytes: [UInt8], _ start: Int, _ end: Int, depth: Int) -> Int? {
        guard depth <= maximumDepth else { return nil }
        var index = skipSpace(bytes, start + 1, end)
        guard index < end else { return nil }
        if bytes[index] == UInt8(ascii: "]") { return index + 1 }
        while true {
            guard let valueEnd = skipValue(bytes, index, end, depth: depth) else { return nil }
            index = skipSpace(bytes, valueEnd, end)
            guard index < end else { return nil }
            if bytes[index] == UInt8(ascii: "]") { return index + 1 }
            guard bytes[index] == UInt8(ascii: ",") else { return nil }
            index = skipSpace(bytes, index + 1, end)
        }
    }

    static func literal(_ word: StaticString, _ bytes: [UInt8], _ start: Int, _ end: Int) -> Int? {
        let count = word.utf8CodeUnitCount
        guard end - start >= count else { return nil }
        let matches = word.withUTF8Buffer { word in bytes[start..<start + count].elementsEqual(word) }
        return matches ? start + count : nil
    }

    /// RFC 8259's number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    static func skipNumber(_ bytes: [UInt8], _ start: Int, _ end: Int) -> Int? {
        func isDigit(_ index: Int) -> Bool { index < end && bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9") }
        var index = start
        if index < end, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard isDigit(index) else { return nil }
        if bytes[index] == UInt8(ascii: "0") { index += 1 } else { while isDigit(index) { index += 1 } }
        if index < end, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard isDigit(index) else { return nil }
            while isDigit(index) { index += 1 }
        }
        if index < end, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < end, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard isDigit(index) else { return nil }
            while isDigit(index) { index += 1 }
        }
        return index
    }

    /// The index after the string starting at `start` (its opening quote), checked as `decodeString` would.
    static func skipString(_ bytes: [UInt8], _ start: Int, _ end: Int) -> Int? {
        // The hottest loop of every read: walked on the buffer (`end` never passes the array's count).
        let found: (end: Int, plain: Bool)? = bytes.withUnsafeBufferPointer { buffer in
            var index = start + 1
            var plain = true
            let end = min(end, buffer.count)
            while index < end {
                let byte = buffer[index]
                if byte == UInt8(ascii: "\"") { return (index + 1, plain) }
                if byte < 0x20 { return nil }
                if byte == UInt8(ascii: "\\") || byte >= 0x80 { plain = false }
                index += byte == UInt8(ascii: "\\") ? 2 : 1
            }
            return nil
        }
        guard let found else { return nil }
        // Only a string with escapes or non-ASCII bytes needs the full check.
        return found.plain ? found.end : decodeString(bytes, start, end)?.end
    }

    /// The value of the four hexadecimal digits of a `\u` escape at `at` (before `end`), or `nil`.
    static func fourHexDigits<Bytes: RandomAccessCollection<UInt8>>(_ bytes: Bytes, at: Int, end: Int) -> UInt32? where Bytes.Index == Int {
        guard at + 4 <= end else { return nil }
        var value: UInt32 = 0
        for index in at..<at + 4 {
            guard let digit = hexValue(bytes[index]) else { return nil }
            value = value << 4 | digit
        }
        return value
    }

    /// The value of one hex digit (either case).
    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    /// The string starting at `start` (its opening quote), unescaped, and the index after it; `nil` when it is not a
    /// valid JSON string (a control character, a bad escape, a lone surrogate, bytes that are not UTF-8).
    static func decodeString(_ bytes: [UInt8], _ start: Int, _ end: Int) -> (text: String, end: Int)? {
        var index = start + 1
        var runStart = index
        var decoded: [UInt8] = []
        var escaped = false
        func hex(_ at: Int) -> UInt32? { fourHexDigits(bytes, at: at, end: end) }
        while index < end {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let text: String?
                if escaped {
                    decoded.append(contentsOf: bytes[runStart..<index])
                    text = String(validating: decoded, as: UTF8.self)
                } else {
                    text = String(validating: bytes[runStart..<index], as: UTF8.self)
                }
                return text.map { ($0, index + 1) }
            }
            if byte < 0x20 { return nil }
            guard byte == UInt8(ascii: "\\") else { index += 1; continue }
            escaped = true
            decoded.append(contentsOf: bytes[runStart..<index])
            guard index + 1 < end else { return nil }
            let code = bytes[index + 1]
            index += 2
            switch code {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(code)
            case UInt8(ascii: "b"): decoded.append(0x08)
            case UInt8(ascii: "f"): decoded.append(0x0C)
            case UInt8(ascii: "n"): decoded.append(0x0A)
            case UInt8(ascii: "r"): decoded.append(0x0D)
            case UInt8(ascii: "t"): decoded.append(0x09)
            case UInt8(ascii: "u"):
                guard var scalar = hex(index) else { return nil }
                index += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    // A high surrogate needs its low half: `\uD83D\uDE00`.
                    guard index + 6 <= end, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u"),
                          let low = hex(index + 2), (0xDC00...0xDFFF).contains(low) else { return nil }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    index += 6
                }
                guard let unicode = Unicode.Scalar(scalar) else { return nil }
                decoded.append(contentsOf: String(Character(unicode)).utf8)
            default:
                return nil
            }
            runStart = index
        }
        return nil
    }
}

/// One object's members, with typed readers of their values (a value of another type reads as `nil`).
struct JSONObject {
    let bytes: [UInt8]
    /// Where each member's value lies: every member, or only those of ``names``.
    let members: [String: Range<Int>]
    /// The only names read, when the object was read for some (``JSONScan/members(_:_:only:)``); `nil` for all.
    let names: JSONNames?

    /// The object that is all of `bytes[range]`, or `nil` when that is not one valid JSON object; with `names`, only
    /// those members are kept (whether the object is read at all does not change).
    init?(_ bytes: [UInt8], _ range: Range<Int>? = nil, only names: JSONNames? = nil) {
        let range = range ?? 0..<bytes.count
        guard let members = names.map({ JSONScan.members(bytes, range, only: $0) }) ?? JSONScan.members(bytes, range) else { return nil }
        self.bytes = bytes
        self.members = members
        self.names = names
    }

    /// A request body that is one JSON object, surrounded by JSON whitespace or not (a vendor reads `  {…}\n` as it
    /// reads `{…}`, so Keywarden must too: a body it could not read would not be metered by what it asks for).
    static func body(_ bytes: [UInt8], only names: JSONNames? = nil) -> JSONObject? {
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
        guard let start = bytes.firstIndex(where: { !isSpace($0) }), bytes[start] == UInt8(ascii: "{"),
              let last = bytes.lastIndex(where: { !isSpace($0) }) else { return nil }
        return JSONObject(bytes, start..<(last + 1), only: names)
    }

    func string(_ name: String) -> String? { value(name).flatMap { JSONScan.string(bytes, $0) } }
    func int(_ name: String) -> Int? { value(name).flatMap { JSONScan.int(bytes, $0) } }
    func bool(_ name: String) -> Bool? { value(name).flatMap { JSONScan.bool(bytes, $0) } }
    /// The member `name` as an object, reading only `names` of it (every member when `nil`).
    func object(_ name: String, only names: JSONNames? = nil) -> JSONObject? { value(name).flatMap { JSONObject(bytes, $0, only: names) } }

    private func value(_ name: String) -> Range<Int>? {
        assert(names?.names.contains(name) ?? true, "'\(name)' was not among the names read")
        return members[name]
    }
}

/// The member names a reader wants from an object, kept with their bytes to compare raw names against.
struct JSONNames: Sendable {
    let names: [String]
    private let bytes: [[UInt8]]

    /// `names` must be plain (printable ASCII without `\` or `"`), as every name the gateway reads is.
    init(_ names: String...) {
        self.init(names)
    }

    init(_ names: [String]) {
        assert(names.allSatisfy { PlainNames.isPlain(Array($0.utf8)[...]) && !$0.contains("\"") })
        self.names = names
        bytes = names.map { Array($0.utf8) }
    }

    /// The wanted name whose bytes are `raw` (a plain name, between its quotes).
    func name(matching raw: ArraySlice<UInt8>) -> String? {
        for (index, wanted) in bytes.enumerated() where wanted.count == raw.count && wanted.elementsEqual(raw) { return names[index] }
        return nil
    }
}

/// The plain names an object has given so far, to find one given twice: for printable ASCII without escapes, two names
/// are the same `String` exactly when they are the same bytes.
struct PlainNames {
    /// Names compared one by one up to this many; past it, hashed.
    static let listLimit = 16
    private var list: [Range<Int>] = []
    private var hashed: Set<ArraySlice<UInt8>>?

    /// Whether a name's bytes (between its quotes) are printable ASCII without an escape.
    static func isPlain(_ name: ArraySlice<UInt8>) -> Bool {
        name.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }
    }

    /// Adds the name at `range` of `bytes`; `false` when it was given before.
    mutating func insert(_ range: Range<Int>, of bytes: [UInt8]) -> Bool {
        let name = bytes[range]
        if hashed == nil, list.count < Self.listLimit {
            for seen in list where seen.count == range.count && bytes[seen].elementsEqual(name) { return false }
            list.append(range)
            return true
        }
        if hashed == nil { hashed = Set(list.map { bytes[$0] }) }
        return hashed?.insert(name).inserted ?? true
    }
}
