/// Writes JSON bytes member by member (commas placed for the caller); strings are escaped, raw values copied as given.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    private var needsComma: [Bool] = []
    private var afterKey = false

    init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    private mutating func separate() {
        if afterKey {
            afterKey = false
            return
        }
        guard let last = needsComma.indices.last else { return }
        if needsComma[last] { bytes.append(UInt8(ascii: ",")) }
        needsComma[last] = true
    }

    mutating func beginObject() { separate(); bytes.append(UInt8(ascii: "{")); needsComma.append(false) }
    mutating func endObject() { needsComma.removeLast(); bytes.append(UInt8(ascii: "}")) }
    mutating func beginArray() { separate(); bytes.append(UInt8(ascii: "[")); needsComma.append(false) }
    mutating func endArray() { needsComma.removeLast(); bytes.append(UInt8(ascii: "]")) }

    mutating func key(_ name: String) {
        separate()
        append(escaping: name)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    mutating func string(_ value: String) { separate(); append(escaping: value) }
    mutating func int(_ value: Int) { separate(); bytes.append(contentsOf: String(value).utf8) }
    mutating func bool(_ value: Bool) { separate(); bytes.append(contentsOf: (value ? "true" : "false").utf8) }
    mutating func null() { separate(); bytes.append(contentsOf: "null".utf8) }
    /// A value that is already JSON (a schema, arguments, a number as the caller wrote it).
    mutating func raw<Bytes: Sequence>(_ json: Bytes) where Bytes.Element == UInt8 { separate(); bytes.append(contentsOf: json) }
    mutating func raw(_ json: String) { raw(json.utf8) }

    mutating func member(_ name: String, _ value: String) { key(name); string(value) }
    mutating func member(_ name: String, _ value: Int) { key(name); int(value) }
    mutating func member(_ name: String, _ value: Bool) { key(name); bool(value) }
    mutating func member(_ name: String, raw value: String) { key(name); raw(value) }
    mutating func memberIfPresent(_ name: String, _ value: String?) { if let value { member(name, value) } }
    mutating func memberIfPresent(_ name: String, _ value: Int?) { if let value { member(name, value) } }
    mutating func memberIfPresent(_ name: String, raw value: String?) { if let value { member(name, raw: value) } }

    private static let hex = Array("0123456789abcdef".utf8)

    private mutating func append(escaping text: String) {
        bytes.append(UInt8(ascii: "\""))
        // Most text needs no escape: copied whole.
        let plain = text.utf8.withContiguousStorageIfAvailable { utf8 in
            for byte in utf8 where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { return false }
            return true
        } ?? false
        if plain {
            bytes.append(contentsOf: text.utf8)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\\")); bytes.append(byte)
            case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\")); bytes.append(byte)
            case 0x0A: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "t"))
            case 0..<0x20:
                bytes.append(contentsOf: "\\u00".utf8)
                bytes.append(Self.hex[Int(byte >> 4)])
                bytes.append(Self.hex[Int(byte & 0x0F)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// A JSON document read once into a tape: every value's range, its member name (inside an object), its first child and
/// its next sibling. The text is validated as strictly as ``JSONScan`` validates it (the same string, number and literal
/// rules, the same depth limit) in a single pass; lookups then walk the tape and never scan the text again.
struct JSONTape: Sendable {
    struct Node: Sendable {
        var value: Range<Int>
        /// The member's name inside its quotes (empty for an array element or the root).
        var name: Range<Int>
        var firstChild = -1
        var next = -1
    }

    let bytes: [UInt8]
    let nodes: [Node]

    /// The document that is all of `bytes[range]` (JSON whitespace around it allowed); `nil` when it is not valid JSON.
    static func read(_ bytes: [UInt8], _ range: Range<Int>? = nil) -> JSONTape? {
        let range = range ?? 0..<bytes.count
        var builder = Builder(bytes: bytes)
        let start = JSONScan.skipSpace(bytes, range.lowerBound, range.upperBound)
        guard let end = builder.value(at: start, end: range.upperBound, name: 0..<0, depth: 0),
              JSONScan.skipSpace(bytes, end, range.upperBound) == range.upperBound else { return nil }
        return JSONTape(bytes: bytes, nodes: builder.nodes)
    }

    /// Reads the text into nodes, once.
    private struct Builder {
        let bytes: [UInt8]
        var nodes: [Node] = []

        init(bytes: [UInt8]) {
            self.bytes = bytes
            nodes.reserveCapacity(max(16, bytes.count / 24))
        }

    /// Records the value at `start` and its children; the index after it, or `nil` when it is not valid JSON.
    mutating func value(at start: Int, end: Int, name: Range<Int>, depth: Int) -> Int? {
        guard start < end, depth <= JSONScan.maximumDepth else { return nil }
        let node = nodes.count
        nodes.append(Node(value: start..<start, name: name))
        let valueEnd: Int?
        switch bytes[start] {
        case UInt8(ascii: "{"): valueEnd = object(at: start, end: end, node: node, depth: depth + 1)
        case UInt8(ascii: "["): valueEnd = array(at: start, end: end, node: node, depth: depth + 1)
        case UInt8(ascii: "\""): valueEnd = JSONScan.skipString(bytes, start, end)
        case UInt8(ascii: "t"): valueEnd = JSONScan.literal("true", bytes, start, end)
        case UInt8(ascii: "f"): valueEnd = JSONScan.literal("false", bytes, start, end)
        case UInt8(ascii: "n"): valueEnd = JSONScan.literal("null", bytes, start, end)
        default: valueEnd = JSONScan.skipNumber(bytes, start, end)
        }
        guard let valueEnd else { return nil }
        nodes[node].value = start..<valueEnd
        return valueEnd
    }

    mutating func object(at start: Int, end: Int, node: Int, depth: Int) -> Int? {
        var index = JSONScan.skipSpace(bytes, start + 1, end)
        guard index < end else { return nil }
        if bytes[index] == UInt8(ascii: "}") { return index + 1 }
        var previous = -1
        while true {
            guard index < end, bytes[index] == UInt8(ascii: "\""), let nameEnd = JSONScan.skipString(bytes, index, end) else { return nil }
            let name = index + 1..<nameEnd - 1
            index = JSONScan.skipSpace(bytes, nameEnd, end)
            guard index < end, bytes[index] == UInt8(ascii: ":") else { return nil }
            let child = nodes.count
            guard let valueEnd = value(at: JSONScan.skipSpace(bytes, index + 1, end), end: end, name: name, depth: depth) else { return nil }
            if previous < 0 { nodes[node].firstChild = child } else { nodes[previous].next = child }
            previous = child
            index = JSONScan.skipSpace(bytes, valueEnd, end)
            guard index < end else { return nil }
            if bytes[index] == UInt8(ascii: "}") { return index + 1 }
            guard bytes[index] == UInt8(ascii: ",") else { return nil }
            index = JSONScan.skipSpace(bytes, index + 1, end)
        }
    }

    mutating func array(at start: Int, end: Int, node: Int, depth: Int) -> Int? {
        var index = JSONScan.skipSpace(bytes, start + 1, end)
        guard index < end else { return nil }
        if bytes[index] == UInt8(ascii: "]") { return index + 1 }
        var previous = -1
        while true {
            let child = nodes.count
            guard let valueEnd = value(at: index, end: end, name: 0..<0, depth: depth) else { return nil }
            if previous < 0 { nodes[node].firstChild = child } else { nodes[previous].next = child }
            previous = child
            index = JSONScan.skipSpace(bytes, valueEnd, end)
            guard index < end else { return nil }
            if bytes[index] == UInt8(ascii: "]") { return index + 1 }
            guard bytes[index] == UInt8(ascii: ",") else { return nil }
            index = JSONScan.skipSpace(bytes, index + 1, end)
        }
    }
    }
}

/// One value of a ``JSONTape``.
struct JSONValue {
    let tape: JSONTape
    let node: Int

    var bytes: [UInt8] { tape.bytes }
    var range: Range<Int> { tape.nodes[node].value }
    private var first: UInt8 { tape.bytes[range.lowerBound] }
    var isNull: Bool { first == UInt8(ascii: "n") }
    var isString: Bool { first == UInt8(ascii: "\"") }
    var isObject: Bool { first == UInt8(ascii: "{") }
    var isArray: Bool { first == UInt8(ascii: "[") }
    var isNumber: Bool { first == UInt8(ascii: "-") || (0x30...0x39).contains(first) }
    var string: String? { isString ? JSONScan.string(tape.bytes, range) : nil }
    var int: Int? { isNumber ? JSONScan.int(tape.bytes, range) : nil }
    var bool: Bool? { JSONScan.bool(tape.bytes, range) }
    /// The value's own bytes, as text.
    var raw: String { String(decoding: tape.bytes[range], as: UTF8.self) }
    var object: JSONMembers? { isObject ? JSONMembers(tape: tape, node: node) : nil }
    var elements: [JSONValue]? {
        guard isArray else { return nil }
        var found: [JSONValue] = []
        var child = tape.nodes[node].firstChild
        while child >= 0 {
            found.append(JSONValue(tape: tape, node: child))
            child = tape.nodes[child].next
        }
        return found
    }
}

/// An object's members (every member) on a ``JSONTape``, looked up by comparing a name's bytes (no `String` or dictionary
/// is made per member). A name written with escapes is decoded to compare; when an object names a member twice, the
/// first is read (a translation writes a new body from what it read, so the vendor never sees the other).
struct JSONMembers {
    let tape: JSONTape
    let node: Int

    /// A whole document that is one object (JSON whitespace around it allowed).
    static func document(_ bytes: [UInt8]) -> JSONMembers? {
        guard let tape = JSONTape.read(bytes), tape.bytes[tape.nodes[0].value.lowerBound] == UInt8(ascii: "{") else { return nil }
        return JSONMembers(tape: tape, node: 0)
    }

    private func forEachMember(_ body: (Int) -> Bool) {
        var child = tape.nodes[node].firstChild
        while child >= 0 {
            if !body(child) { return }
            child = tape.nodes[child].next
        }
    }

    /// The member's value; a `null` reads as absent.
    subscript(_ name: StaticString) -> JSONValue? {
        name.withUTF8Buffer { wanted in
            var found: JSONValue?
            forEachMember { child in
                guard matches(tape.nodes[child].name, wanted) else { return true }
                let value = JSONValue(tape: tape, node: child)
                found = value.isNull ? nil : value
                return false
            }
            return found
        }
    }

    private func matches(_ name: Range<Int>, _ wanted: UnsafeBufferPointer<UInt8>) -> Bool {
        let bytes = tape.bytes
        if name.count == wanted.count {
            var equal = true
            for offset in 0..<name.count where bytes[name.lowerBound + offset] != wanted[offset] {
                equal = false
                break
            }
            if equal { return true }
        }
        // A name with an escape (`"mod\u0065l"`) is compared decoded.
        guard bytes[name].contains(UInt8(ascii: "\\")),
              let (decoded, _) = JSONScan.decodeString(bytes, name.lowerBound - 1, name.upperBound + 1) else { return false }
        return decoded.utf8.elementsEqual(wanted)
    }

    private func decodedName(_ child: Int) -> String? {
        let name = tape.nodes[child].name
        return JSONScan.decodeString(tape.bytes, name.lowerBound - 1, name.upperBound + 1)?.text
    }

    /// Every member's name, decoded.
    var names: [String] {
        var found: [String] = []
        forEachMember { child in
            if let name = decodedName(child) { found.append(name) }
            return true
        }
        return found
    }

    /// Whether a member of this name is present and not `null`.
    func has(_ name: String) -> Bool {
        var present = false
        forEachMember { child in
            guard decodedName(child) == name else { return true }
            present = !JSONValue(tape: tape, node: child).isNull
            return false
        }
        return present
    }
}
