import Foundation
import KeywardenCore

/// Reads what a call consumed from the vendor's answer, chunk by chunk, as it streams to the client.
///
/// One reader serves every vendor: it knows the shapes of usage, not the vendors. OpenAI, Mistral,
/// DeepSeek and the other OpenAI-shaped APIs send `usage.prompt_tokens` / `completion_tokens`;
/// Anthropic `usage.input_tokens` / `output_tokens` (in a stream, in `message_start` and the
/// cumulative `message_delta`); Gemini `usageMetadata`; OpenAI's Responses API `response.usage`.
/// Each figure keeps the largest value seen, because streams repeat running totals.
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
        isEventStream = contentType?.lowercased().contains("text/event-stream") ?? false
    }

    /// Reads one chunk of the body.
    public mutating func feed<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        guard !overflowed else { return }
        if isEventStream {
            for byte in bytes {
                if byte == UInt8(ascii: "\n") {
                    readLine()
                    buffer.removeAll(keepingCapacity: true)
                } else if buffer.count < Self.maximumLineSize {
                    buffer.append(byte)
                }
            }
        } else if buffer.count + bytes.count <= Self.maximumBodySize {
            buffer.append(contentsOf: bytes)
        } else {
            overflowed = true
            buffer = []
        }
    }

    /// Ends the body: reads a non-streamed body, or a last event line without its newline.
    public mutating func finish() {
        guard !overflowed else { return }
        if isEventStream {
            readLine()
        } else if let object = try? JSONSerialization.jsonObject(with: Data(buffer)) as? [String: Any] {
            absorb(object)
        }
        buffer = []
    }

    private static let dataPrefix = Array("data:".utf8)
    private static let usageMarker = Array("usage".utf8)

    private mutating func readLine() {
        guard buffer.starts(with: Self.dataPrefix), Self.contains(buffer, Self.usageMarker) else { return }
        let payload = buffer[Self.dataPrefix.count...]
        if let object = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any] {
            absorb(object)
        }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count, let first = needle.first else { return false }
        var index = haystack.startIndex
        let last = haystack.endIndex - needle.count
        while index <= last {
            if haystack[index] == first, haystack[index..<index + needle.count].elementsEqual(needle) { return true }
            index += 1
        }
        return false
    }

    mutating func absorb(_ object: [String: Any]) {
        if let model = object["model"] as? String, !model.isEmpty { self.model = model }
        if let usage = object["usage"] as? [String: Any] { absorbUsage(usage) }
        if let message = object["message"] as? [String: Any] {
            if let usage = message["usage"] as? [String: Any] { absorbUsage(usage) }
            if let model = message["model"] as? String { self.model = model }
        }
        if let response = object["response"] as? [String: Any], let usage = response["usage"] as? [String: Any] { absorbUsage(usage) }
        if let metadata = object["usageMetadata"] as? [String: Any] {
            raise(\.inputTokens, metadata["promptTokenCount"])
            let candidates = Self.integer(metadata["candidatesTokenCount"]) ?? 0
            let thoughts = Self.integer(metadata["thoughtsTokenCount"]) ?? 0
            if metadata["candidatesTokenCount"] != nil || metadata["thoughtsTokenCount"] != nil { raise(\.outputTokens, candidates + thoughts) }
        }
        if let version = object["modelVersion"] as? String { model = version }
    }

    mutating func absorbUsage(_ usage: [String: Any]) {
        raise(\.inputTokens, usage["prompt_tokens"] ?? usage["input_tokens"])
        raise(\.outputTokens, usage["completion_tokens"] ?? usage["output_tokens"])
        // Cohere's v2 chat: usage.tokens.{input,output}_tokens.
        if let tokens = usage["tokens"] as? [String: Any] {
            raise(\.inputTokens, tokens["input_tokens"])
            raise(\.outputTokens, tokens["output_tokens"])
        }
    }

    mutating func raise(_ field: WritableKeyPath<UsageCounts, Int?>, _ value: Any?) {
        guard let value = Self.integer(value) else { return }
        counts[keyPath: field] = max(counts[keyPath: field] ?? 0, value)
    }

    static func integer(_ value: Any?) -> Int? {
        switch value {
        case let number as NSNumber: return number.intValue
        case let int as Int: return int
        default: return nil
        }
    }
}

/// What the gateway reads from a request body before forwarding it: the model, whether a stream
/// was asked for, and the text a text-to-speech call will speak (ElevenLabs and OpenAI bill by character).
public struct RequestFacts: Sendable, Equatable {
    public var model: String?
    public var stream = false
    public var characters: Int?

    public init(model: String? = nil, stream: Bool = false, characters: Int? = nil) {
        self.model = model
        self.stream = stream
        self.characters = characters
    }

    /// Reads a JSON body (anything else tells nothing) and the path (Gemini names the model there:
    /// `/v1beta/models/gemini-2.5-flash:streamGenerateContent`).
    public static func read(body: [UInt8]?, path: String) -> RequestFacts {
        var facts = RequestFacts()
        if let range = path.range(of: "/models/") {
            let rest = path[range.upperBound...]
            let end = rest.firstIndex { $0 == ":" || $0 == "?" || $0 == "/" } ?? rest.endIndex
            if end > rest.startIndex { facts.model = String(rest[..<end]) }
            if path.contains(":streamGenerateContent") { facts.stream = true }
        }
        guard let body, body.first == UInt8(ascii: "{"),
              let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return facts }
        if let model = (object["model"] ?? object["model_id"]) as? String { facts.model = model }
        if let stream = object["stream"] as? Bool { facts.stream = stream }
        if let text = (object["text"] ?? object["input"]) as? String { facts.characters = text.count }
        return facts
    }
}
