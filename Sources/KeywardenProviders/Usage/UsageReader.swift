import Foundation
import KeywardenCore

/// Reads what a call consumed from the vendor's answer, chunk by chunk, as it streams to the client.
///
/// One reader serves every vendor: each dialect reads its own shape of usage (``VendorDialect/readUsage(_:into:)``),
/// and an answer is read in all of them. Each figure keeps the largest value seen, because streams repeat running totals.
///
/// An event stream is read line by line, parsing only the `data:` lines that mention usage, so a
/// chunk costs one byte scan; any other body is kept (up to ``maximumBodySize``) and parsed once at the end.
public struct UsageReader: Sendable {
    /// The largest non-streamed body kept for reading its usage.
    public static let maximumBodySize = 4 * 1024 * 1024
    /// The longest event line considered.
    static let maximumLineSize = 1024 * 1024

    let isEventStream: Bool
    private var buffer: [UInt8] = []
    private var overflowed = false
    public private(set) var counts = UsageCounts()
    /// The model the vendor says answered, when it says one.
    public private(set) var model: String?

    /// - Parameter contentType: the answer's `Content-Type`; `text/event-stream` is read as a stream.
    public init(contentType: String?) {
        isEventStream = contentType.map { ASCIIText.contains("text/event-stream", ignoringCaseIn: $0) } ?? false
    }

    /// Reads one chunk of the body.
    public mutating func feed<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        // A chunk is read as one contiguous run (a ByteBuffer's view is one): a generic walk byte by byte, across
        // modules, cost ~5 % of a streamed call.
        if bytes.withContiguousStorageIfAvailable({ feed(contiguous: $0) }) == nil {
            Array(bytes).withUnsafeBufferPointer { feed(contiguous: $0) }
        }
    }

    private mutating func feed(contiguous chunk: UnsafeBufferPointer<UInt8>) {
        guard !overflowed else { return }
        guard isEventStream else {
            if buffer.count + chunk.count <= Self.maximumBodySize {
                buffer.append(contentsOf: chunk)
            } else {
                overflowed = true
                buffer = []
            }
            return
        }
        var start = 0
        while start < chunk.count {
            let rest = UnsafeBufferPointer(rebasing: chunk[start...])
            let newline = rest.firstIndex(of: UInt8(ascii: "\n"))
            let line = UnsafeBufferPointer(rebasing: rest[..<(newline ?? rest.endIndex)])
            // A longer line is cut (and so not read): usage comes in short events.
            buffer.append(contentsOf: line.prefix(max(0, Self.maximumLineSize - buffer.count)))
            guard let newline else { return }
            readLine()
            buffer.removeAll(keepingCapacity: true)
            start += newline + 1
        }
    }

    /// Ends the body: reads a non-streamed body, or a last event line without its newline.
    public mutating func finish() {
        guard !overflowed else { return }
        if isEventStream {
            readLine()
        } else if let answer = JSONObject.body(buffer, only: Self.answerNames) {
            absorb(answer)
        } else if let elements = JSONScan.elements(buffer, 0..<buffer.count) {
            // Gemini's `streamGenerateContent` without `alt=sse` answers a JSON array of responses, the last with the totals.
            for element in elements {
                if let answer = JSONObject(buffer, element, only: Self.answerNames) { absorb(answer) }
            }
        }
        buffer = []
    }

    private static let dataPrefix = Array("data:".utf8)
    private static let usageMarker = Array("usage".utf8)

    private mutating func readLine() {
        guard buffer.starts(with: Self.dataPrefix) else { return }
        switch Self.usageMention(in: buffer) {
        case .none: return
        // Once the model is known, a line whose only usage is `null` has nothing left to give.
        case .nullOnly where model != nil: return
        case .nullOnly, .values: break
        }
        if let event = JSONObject(buffer, Self.dataPrefix.count..<buffer.count, only: Self.answerNames) {
            absorb(event)
        }
    }

    /// How an event line mentions usage.
    enum UsageMention: Equatable {
        case none
        /// Only as `"usage":null`: a stream that asks for usage (as the gateway does for OpenAI) carries it in
        /// every event but the last, and those need no parse once the model is known.
        case nullOnly
        case values
    }

    private static let null = Array("null".utf8)

    static func usageMention(in line: [UInt8]) -> UsageMention {
        let marker = usageMarker
        guard line.count >= marker.count, let first = marker.first else { return .none }
        var mention = UsageMention.none
        var index = line.startIndex
        let last = line.endIndex - marker.count
        while index <= last {
            if line[index] == first, line[index..<index + marker.count].elementsEqual(marker) {
                // `usage":` then optional spaces then `null`; anything else (`usageMetadata`, an object, the word in text) is read.
                var next = index + marker.count
                guard next + 1 < line.count, line[next] == 0x22, line[next + 1] == 0x3A else { return .values }
                next += 2
                while next < line.count, line[next] == 0x20 { next += 1 }
                guard line[next...].starts(with: null) else { return .values }
                mention = .nullOnly
                index = next
            }
            index += 1
        }
        return mention
    }

    /// The members the dialects' usage readings read of an answer or event: only these are recorded.
    static let answerNames = JSONNames(Dialects.answerMembers)

    /// Reads usage from one JSON object (a whole answer, or one event's data) in every dialect's shape: an answer is
    /// read whatever its shape (a vendor's OpenAI-compatible endpoint answers in OpenAI's).
    mutating func absorb(_ answer: JSONObject) {
        var tally = UsageTally(counts: counts, model: model)
        for dialect in Dialects.all { dialect.readUsage(answer, into: &tally) }
        counts = tally.counts
        model = tally.model
    }
}

/// What the gateway reads from a request body before forwarding it: the model, whether a stream
/// was asked for, and the text a text-to-speech call will speak (ElevenLabs and OpenAI bill by character).
public struct RequestFacts: Sendable, Equatable {
    public var model: String?
    public var stream = false
    /// Whether the request asks for usage in its stream (`stream_options.include_usage`).
    public var streamIncludesUsage = false
    public var characters: Int?
    /// Whether the body is one valid JSON object.
    public var isJSONObject = false

    public init(model: String? = nil, stream: Bool = false, streamIncludesUsage: Bool = false, characters: Int? = nil, isJSONObject: Bool = false) {
        self.isJSONObject = isJSONObject
        self.model = model
        self.stream = stream
        self.streamIncludesUsage = streamIncludesUsage
        self.characters = characters
    }

    /// Reads a JSON body (anything else tells nothing) and the path (Gemini names the model there:
    /// `/v1beta/models/gemini-2.5-flash:streamGenerateContent`).
    public static func read(body: [UInt8]?, path: String) -> RequestFacts {
        var facts = RequestFacts()
        (facts.model, facts.stream) = ASCIIText.withBytes(of: path, pathFacts) ?? characterPathFacts(path)
        // Only these fields are read; the rest of the body (the messages) is checked as JSON and skipped.
        guard let body, let request = JSONObject.body(body, only: requestNames) else { return facts }
        facts.isJSONObject = true
        // A model the path names (Gemini's) is the one the vendor serves and bills: a body's `model` does not change it.
        if facts.model == nil, let model = request.string("model") ?? request.string("model_id") { facts.model = model }
        if let stream = request.bool("stream") { facts.stream = stream }
        facts.streamIncludesUsage = request.object("stream_options", only: streamOptionsNames)?.bool("include_usage") == true
        // Characters as the vendors bill them (code points): combining marks count, as they are spoken and billed.
        if let text = request.string("text") ?? request.string("input") { facts.characters = text.unicodeScalars.count }
        return facts
    }

    /// The members ``read(body:path:)`` reads: only these are recorded.
    static let requestNames = JSONNames("model", "model_id", "stream", "stream_options", "text", "input")
    static let streamOptionsNames = JSONNames("include_usage")

    private static let modelsSegment = Array("/models/".utf8)
    private static let streamGenerate = Array(":streamGenerateContent".utf8)

    /// The model a Gemini path names and whether it streams, read from an ASCII path's bytes (where each byte is one
    /// character, as ``characterPathFacts(_:)`` reads them).
    static func pathFacts(_ path: UnsafeBufferPointer<UInt8>) -> (model: String?, stream: Bool) {
        guard let found = ASCIIText.firstIndex(of: modelsSegment, in: path) else { return (nil, false) }
        let start = found + modelsSegment.count
        var end = start
        while end < path.count, path[end] != UInt8(ascii: ":"), path[end] != UInt8(ascii: "?"), path[end] != UInt8(ascii: "/") { end += 1 }
        let model = end > start ? String(decoding: UnsafeBufferPointer(rebasing: path[start..<end]), as: UTF8.self) : nil
        return (model, ASCIIText.firstIndex(of: streamGenerate, in: path) != nil)
    }

    /// ``pathFacts(_:)`` read character by character, for a path that is not all ASCII.
    static func characterPathFacts(_ path: String) -> (model: String?, stream: Bool) {
        guard let range = path.range(of: "/models/") else { return (nil, false) }
        let rest = path[range.upperBound...]
        let end = rest.firstIndex { $0 == ":" || $0 == "?" || $0 == "/" } ?? rest.endIndex
        return (end > rest.startIndex ? String(rest[..<end]) : nil, path.contains(":streamGenerateContent"))
    }
}
