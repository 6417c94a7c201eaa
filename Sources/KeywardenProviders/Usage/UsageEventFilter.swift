/// The stream usage OpenAI-shaped vendors send when asked, kept from a caller who did not ask.

/// Passes an event stream on event by event, leaving out the usage-only events (`"choices":[]` with a
/// `usage` object) that a caller who did not ask for usage does not expect: OpenAI sends one at the end of
/// a stream when `stream_options.include_usage` is set, and a client reading `choices[0]` of every event
/// would fail on it. An event is passed on as soon as its blank line arrives.
public struct UsageEventFilter: Sendable {
    /// A longer run without an event boundary is passed on as it is, and filtering stops.
    static let maximumEventSize = 1024 * 1024
    public init() {}

    private var pending: [UInt8] = []
    /// How far `pending` is known to hold no event boundary (so a long event is not scanned again per chunk).
    private var scanned = 0
    private var gaveUp = false

    /// The bytes of every complete event in `bytes` (with what came before), minus usage-only events.
    public mutating func pass<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        if gaveUp { return Array(bytes) }
        pending.append(contentsOf: bytes)
        var passed: [UInt8] = []
        var start = 0
        var searchFrom = scanned
        while let end = Self.eventEnd(in: pending, from: searchFrom) {
            let event = pending[start..<end]
            if !Self.isUsageOnly(event) { passed.append(contentsOf: event) }
            start = end
            searchFrom = end
        }
        pending.removeFirst(start)
        // A boundary's first line feed (and a carriage return after it) may be the last bytes so far.
        scanned = max(0, pending.count - 2)
        if pending.count > Self.maximumEventSize {
            gaveUp = true
            passed.append(contentsOf: pending)
            pending = []
        }
        return passed
    }

    /// What is left at the end of the stream (an event without its blank line).
    public mutating func finish() -> [UInt8] {
        defer { pending = [] }
        return Self.isUsageOnly(pending[...]) ? [] : pending
    }

    /// The index after the first blank line at or after `start` (`\n\n`, or `\r\n\r\n`): the end of an event.
    static func eventEnd(in bytes: [UInt8], from start: Int) -> Int? {
        var index = start
        while index < bytes.count {
            if bytes[index] == 0x0A {
                var next = index + 1
                if next < bytes.count, bytes[next] == 0x0D { next += 1 }
                if next < bytes.count, bytes[next] == 0x0A { return next + 1 }
            }
            index += 1
        }
        return nil
    }

    private static let emptyChoices = [Array(#""choices":[]"#.utf8), Array(#""choices": []"#.utf8)]

    /// Whether an event's data is a JSON object whose `choices` is an empty array and whose `usage` is an object.
    static func isUsageOnly(_ event: ArraySlice<UInt8>) -> Bool {
        guard emptyChoices.contains(where: { event.firstRange(of: $0) != nil }) else { return false }
        // The event's data: its `data:` lines' values, joined by line feeds (the SSE rule).
        let payload = Array(event.split(separator: 0x0A).compactMap { line -> ArraySlice<UInt8>? in
            guard line.starts(with: Array("data:".utf8)) else { return nil }
            return line.dropFirst(5)
        }.joined(separator: [0x0A]))
        guard let object = JSONObject(payload, only: usageOnlyNames), let choices = object.members["choices"],
              JSONScan.elements(payload, choices)?.isEmpty == true, let usage = object.members["usage"] else { return false }
        // The whole object was read as valid JSON: a value that opens with `{` is an object.
        return payload[usage.lowerBound] == UInt8(ascii: "{")
    }

    private static let usageOnlyNames = JSONNames("choices", "usage")
}
