import KeywardenCore

/// A JSON request body edited in place: members are set by splicing their values into the caller's bytes, so member
/// order, number spellings, escapes and white space outside an edit reach the vendor as the caller wrote them.
///
/// The gateway never re-encodes a body (a `JSONSerialization` round trip reorders members and turns `1.0` into `1`,
/// and OpenAI writes Structured Outputs in the order of the schema's `properties`).
public struct JSONBodyEdit: Sendable {
    /// The body as edited so far.
    public private(set) var bytes: [UInt8]
    /// Where each top-level member's value lies in ``bytes``.
    private var members: [String: Range<Int>]

    /// The body, when it is one valid JSON object (white space around it allowed, no member named twice); `nil`
    /// otherwise: nothing can be edited in it.
    public init?(_ body: [UInt8]) {
        guard let members = JSONScan.members(body, 0..<body.count) else { return nil }
        bytes = body
        self.members = members
    }

    /// Whether the caller left a member out: absent, `null`, or, for a model, `"default"`.
    public func leavesOut(_ name: String) -> Bool {
        guard let range = members[name] else { return true }
        if JSONScan.literal("null", bytes, range.lowerBound, range.upperBound) == range.upperBound { return true }
        return (name == "model" || name == "model_id") && JSONScan.string(bytes, range) == "default"
    }

    /// Sets member `name` to `json` (one JSON value, written as it should be sent): a member already there has its
    /// value replaced where it stands; a new one is added at the front of the object.
    public mutating func set(_ name: String, json: String) {
        if let range = members[name] {
            replace(range, with: Array(json.utf8))
            members[name] = range.lowerBound..<(range.lowerBound + json.utf8.count)
        } else {
            add(name, json: json)
        }
    }

    /// Sets member `name` of the object member `parent` to `json`, keeping the parent's other members; a parent that is
    /// absent or not an object (`null` included) becomes `{name: json}`.
    public mutating func set(_ name: String, in parent: String, json: String) {
        guard let range = members[parent], var inner = JSONBodyEdit(Array(bytes[range])) else {
            set(parent, json: "{" + CallDefaultsPlan.jsonString(name) + ":" + json + "}")
            return
        }
        inner.set(name, json: json)
        set(parent, json: String(decoding: inner.bytes, as: UTF8.self))
    }

    /// Every member of `set` in place, as ``set(_:json:)`` does; added members lead the object in `set`'s order.
    public mutating func set(_ set: [CallDefaultsPlan.Member]) {
        for member in set.reversed() { self.set(member.name, json: member.json) }
    }

    /// The body with each of `set` in place.
    public func filled(with set: [CallDefaultsPlan.Member]) -> [UInt8] {
        var edit = self
        edit.set(set)
        return edit.bytes
    }

    private mutating func replace(_ range: Range<Int>, with value: [UInt8]) {
        bytes.replaceSubrange(range, with: value)
        shift(from: range.upperBound, by: value.count - range.count)
    }

    /// Adds a member right after the object's `{` (a body's first byte that is not white space).
    private mutating func add(_ name: String, json: String) {
        guard let open = bytes.firstIndex(of: UInt8(ascii: "{")) else { return }
        var member = Array(CallDefaultsPlan.jsonString(name).utf8) + [UInt8(ascii: ":")] + Array(json.utf8)
        // `{}` takes no trailing comma.
        let next = JSONScan.skipSpace(bytes, open + 1, bytes.count)
        if next >= bytes.count || bytes[next] != UInt8(ascii: "}") { member.append(UInt8(ascii: ",")) }
        bytes.insert(contentsOf: member, at: open + 1)
        shift(from: open + 1, by: member.count)
        let valueStart = open + 1 + member.count - json.utf8.count - (member.last == UInt8(ascii: ",") ? 1 : 0)
        members[name] = valueStart..<(valueStart + json.utf8.count)
    }

    /// Moves every member whose value lies at or after `offset` by `delta` bytes.
    private mutating func shift(from offset: Int, by delta: Int) {
        guard delta != 0 else { return }
        for (name, range) in members where range.lowerBound >= offset {
            members[name] = (range.lowerBound + delta)..<(range.upperBound + delta)
        }
    }
}
