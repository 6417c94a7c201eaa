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
        } else if let shape = try? JSONDecoder().decode(UsageShape.self, from: Data(buffer)) {
            absorb(shape)
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
        let payload = buffer[Self.dataPrefix.count...]
        if let shape = try? JSONDecoder().decode(UsageShape.self, from: Data(payload)) {
            absorb(shape)
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

    mutating func absorb(_ shape: UsageShape) {
        if let model = shape.model?.value, !model.isEmpty { self.model = model }
        absorb(shape.usage?.value)
        absorb(shape.message?.value?.usage?.value)
        if let model = shape.message?.value?.model?.value { self.model = model }
        absorb(shape.response?.value?.usage?.value)
        if let metadata = shape.usageMetadata?.value {
            raise(\.inputTokens, metadata.promptTokenCount?.value)
            let candidates = metadata.candidatesTokenCount?.value
            let thoughts = metadata.thoughtsTokenCount?.value
            if candidates != nil || thoughts != nil { raise(\.outputTokens, (candidates ?? 0).saturatingAdding(thoughts ?? 0)) }
        }
        if let version = shape.modelVersion?.value { model = version }
    }

    mutating func absorb(_ usage: UsageShape.Numbers?) {
        guard let usage else { return }
        raise(\.inputTokens, usage.prompt_tokens?.value ?? usage.input_tokens?.value)
        raise(\.outputTokens, usage.completion_tokens?.value ?? usage.output_tokens?.value)
        // Cohere's v2 chat: usage.tokens.{input,output}_tokens.
        raise(\.inputTokens, usage.tokens?.value?.input_tokens?.value)
        raise(\.outputTokens, usage.tokens?.value?.output_tokens?.value)
    }

    /// The largest count a vendor's answer is believed for (a trillion tokens); a larger or negative one is a lie and ignored.
    static let maximumCount = 1_000_000_000_000

    mutating func raise(_ field: WritableKeyPath<UsageCounts, Int?>, _ value: Int?) {
        guard let value, (0...Self.maximumCount).contains(value) else { return }
        counts[keyPath: field] = max(counts[keyPath: field] ?? 0, value)
    }
}

/// The parts of a vendor's answer that carry usage; everything else is skipped by the decoder.
struct UsageShape: Decodable {
    struct Numbers: Decodable {
        struct Tokens: Decodable {
            let input_tokens: Lenient<Int>?
            let output_tokens: Lenient<Int>?
        }
        let prompt_tokens: Lenient<Int>?
        let completion_tokens: Lenient<Int>?
        let input_tokens: Lenient<Int>?
        let output_tokens: Lenient<Int>?
        let tokens: Lenient<Tokens>?
    }
    struct Nested: Decodable {
        let model: Lenient<String>?
        let usage: Lenient<Numbers>?
    }
    struct Metadata: Decodable {
        let promptTokenCount: Lenient<Int>?
        let candidatesTokenCount: Lenient<Int>?
        let thoughtsTokenCount: Lenient<Int>?
    }
    let model: Lenient<String>?
    let usage: Lenient<Numbers>?
    let message: Lenient<Nested>?
    let response: Lenient<Nested>?
    let usageMetadata: Lenient<Metadata>?
    let modelVersion: Lenient<String>?
}

/// A value of the expected type, or `nil` when the vendor sent something else there (never a decoding failure).
struct Lenient<Value: Decodable>: Decodable {
    let value: Value?

    init(from decoder: any Decoder) throws {
        value = try? decoder.singleValueContainer().decode(Value.self)
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

    public init(model: String? = nil, stream: Bool = false, streamIncludesUsage: Bool = false, characters: Int? = nil) {
        self.model = model
        self.stream = stream
        self.streamIncludesUsage = streamIncludesUsage
        self.characters = characters
    }

    /// The fields read; the decoder skips the rest of the body (the messages).
    struct Shape: Decodable {
        struct StreamOptions: Decodable {
            let include_usage: Lenient<Bool>?
        }
        let model: Lenient<String>?
        let model_id: Lenient<String>?
        let stream: Lenient<Bool>?
        let stream_options: Lenient<StreamOptions>?
        let text: Lenient<String>?
        let input: Lenient<String>?
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
        guard let body, body.first == UInt8(ascii: "{"), let shape = try? JSONDecoder().decode(Shape.self, from: Data(body)) else { return facts }
        if let model = shape.model?.value ?? shape.model_id?.value { facts.model = model }
        if let stream = shape.stream?.value { facts.stream = stream }
        facts.streamIncludesUsage = shape.stream_options?.value?.include_usage?.value == true
        if let text = shape.text?.value ?? shape.input?.value { facts.characters = text.count }
        return facts
    }
}
