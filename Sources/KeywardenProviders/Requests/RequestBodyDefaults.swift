import KeywardenCore

/// A JSON request body as the gateway fills in what the caller left out: members are set without re-encoding the
/// rest, so every byte the caller wrote reaches the vendor as it was.
public struct RequestBodyDefaults: Sendable {
    private let bytes: [UInt8]
    private let members: [String: Range<Int>]

    /// The body, when it is one valid JSON object (naming no member twice); `nil` otherwise: nothing is added to it.
    public init?(_ body: [UInt8]) {
        guard let object = JSONObject(body) else { return nil }
        bytes = body
        members = object.members
    }

    /// Whether the caller left a member out: absent, `null`, or, for a model, `"default"`.
    public func leavesOut(_ name: String) -> Bool {
        guard let range = members[name] else { return true }
        if JSONScan.literal("null", bytes, range.lowerBound, range.upperBound) == range.upperBound { return true }
        return (name == "model" || name == "model_id") && JSONScan.string(bytes, range) == "default"
    }

    /// The body with each of `set` in place: a member the caller sent as `null` or `"default"` has its value replaced,
    /// the others are added at the front of the object.
    public func filled(with set: [CallDefaultsPlan.Member]) -> [UInt8] {
        guard !set.isEmpty else { return bytes }
        var replaced: [(range: Range<Int>, json: String)] = []
        var added: [UInt8] = []
        for member in set {
            if let range = members[member.name] {
                replaced.append((range, member.json))
            } else {
                added += Array(CallDefaultsPlan.jsonString(member.name).utf8) + [UInt8(ascii: ":")] + Array(member.json.utf8) + [UInt8(ascii: ",")]
            }
        }
        var out = bytes
        // From the end, so earlier ranges stay where they are.
        for (range, json) in replaced.sorted(by: { $0.range.lowerBound > $1.range.lowerBound }) {
            out.replaceSubrange(range, with: Array(json.utf8))
        }
        if !added.isEmpty, let open = out.firstIndex(of: UInt8(ascii: "{")) {
            // `{}` takes no trailing comma.
            let next = JSONScan.skipSpace(out, open + 1, out.count)
            if next < out.count, out[next] == UInt8(ascii: "}") { added.removeLast() }
            out.insert(contentsOf: added, at: open + 1)
        }
        return out
    }
}
