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

/// One JSON value of a document read with ``JSONScan``: its bytes stay where they are; members and elements are ranges.
struct JSONValue {
    let bytes: [UInt8]
    let range: Range<Int>

    init(_ bytes: [UInt8], _ range: Range<Int>) {
        self.bytes = bytes
        self.range = range
    }

    private var first: UInt8? { range.isEmpty ? nil : bytes[range.lowerBound] }
    var isNull: Bool { first == UInt8(ascii: "n") }
    var isString: Bool { first == UInt8(ascii: "\"") }
    var isObject: Bool { first == UInt8(ascii: "{") }
    var isArray: Bool { first == UInt8(ascii: "[") }
    var isNumber: Bool { first.map { $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) } ?? false }
    var string: String? { JSONScan.string(bytes, range) }
    var int: Int? { JSONScan.int(bytes, range) }
    var bool: Bool? { JSONScan.bool(bytes, range) }
    /// The value's own bytes, as text.
    var raw: String { String(decoding: bytes[range], as: UTF8.self) }
    var object: JSONMembers? { isObject ? JSONMembers(bytes, range) : nil }
    var elements: [JSONValue]? { isArray ? JSONScan.elements(bytes, range)?.map { JSONValue(bytes, $0) } : nil }
}

/// An object's members by name (every member), each a ``JSONValue``.
struct JSONMembers {
    let bytes: [UInt8]
    let members: [String: Range<Int>]

    init?(_ bytes: [UInt8], _ range: Range<Int>) {
        guard let members = JSONScan.members(bytes, range) else { return nil }
        self.bytes = bytes
        self.members = members
    }

    /// A whole document that is one object.
    static func document(_ bytes: [UInt8]) -> JSONMembers? {
        guard let object = JSONObject.body(bytes) else { return nil }
        return JSONMembers(bytes: object.bytes, members: object.members)
    }

    private init(bytes: [UInt8], members: [String: Range<Int>]) {
        self.bytes = bytes
        self.members = members
    }

    /// The member's value; a `null` reads as absent.
    subscript(_ name: String) -> JSONValue? {
        guard let range = members[name] else { return nil }
        let value = JSONValue(bytes, range)
        return value.isNull ? nil : value
    }

    var names: Dictionary<String, Range<Int>>.Keys { members.keys }
}
