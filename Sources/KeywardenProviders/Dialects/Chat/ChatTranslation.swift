import Foundation
import KeywardenCore

/// A chat call translated between the caller's shape and the vendor's: the request is rewritten once, the answer (whole,
/// streamed event by event, or an error) on its way back. Pure: no I/O, no clock but the `created` stamp it is given.
public struct ChatTranslation: Sendable {
    public let caller: ChatShape
    public let vendor: ChatShape
    /// Whether the call streams.
    public let stream: Bool
    /// Whether an OpenAI caller asked its stream for usage.
    let includeUsage: Bool
    /// The forced tool that carries a structured output to Anthropic.
    let structuredTool: String?
    /// The model the vendor serves (named in the answer when the vendor does not say).
    public let model: String
    let created: Int

    /// The chat shape a dialect's vendor answers in; `nil` for a dialect without a chat API.
    public static func shape(of dialect: DialectID) -> ChatShape? {
        switch dialect {
        case .openai: return .openAIChat
        case .anthropic: return .anthropicMessages
        case .gemini: return .geminiGenerate
        case .elevenlabs, .google, .azure, .generic: return nil
        }
    }

    /// The request as the vendor takes it.
    public struct Request: Sendable {
        public let translation: ChatTranslation
        public let body: [UInt8]
        /// The vendor's path when the shape fixes it (Anthropic's, Gemini's); `nil`: the provider's chat completions path.
        public let path: String?
    }

    /// Translates a caller's request body for `vendor`, serving `model`.
    ///
    /// - Parameters:
    ///   - target: the vendor's name, for errors (`Anthropic`).
    ///   - outputLimitMember: where an OpenAI-shaped vendor takes the output limit (`max_completion_tokens`, `max_tokens`).
    ///   - defaultMaxTokens: Anthropic's required `max_tokens` when the caller set none.
    public static func request(_ body: [UInt8], from caller: ChatShape, to vendor: ChatShape, model: String, target: String,
                               outputLimitMember: String = "max_tokens", defaultMaxTokens: Int = 4096,
                               created: Int = Int(Date().timeIntervalSince1970)) throws(TranslationError) -> Request {
        let request: ChatRequest
        switch caller {
        case .openAIChat: request = try OpenAIChatWire.readRequest(body, target: target)
        case .anthropicMessages: request = try AnthropicMessagesWire.readRequest(body, target: target)
        case .openAIResponses: request = try OpenAIResponsesWire.readRequest(body, target: target)
        case .geminiGenerate: throw .unsupported("the Gemini shape", "a caller", "call the native face for Gemini")
        }
        guard !request.messages.isEmpty else { throw .invalid("messages", "give at least one message.") }
        // A limit no vendor takes (zero, negative) is the caller's mistake, said here rather than in arithmetic.
        if let limit = request.maxTokens, limit < 1 {
            let field = switch caller {
            case .anthropicMessages: "max_tokens"
            case .openAIResponses: "max_output_tokens"
            case .openAIChat, .geminiGenerate: "max_completion_tokens"
            }
            throw .invalid(field, "the output limit is a whole number of at least 1.")
        }
        if case .budget(let budget)? = request.reasoning, budget < 0 { throw .invalid("thinking.budget_tokens", "the thinking budget is a whole number of at least 0.") }
        let bytes: [UInt8]
        let path: String?
        var structuredTool: String?
        switch vendor {
        case .openAIChat, .openAIResponses:
            bytes = OpenAIChatWire.writeRequest(request, model: model, limitMember: outputLimitMember)
            path = nil
        case .anthropicMessages:
            bytes = try AnthropicMessagesWire.writeRequest(request, model: model, defaultMaxTokens: defaultMaxTokens)
            structuredTool = AnthropicMessagesWire.structuredTool(request)?.name
            path = "/v1/messages"
        case .geminiGenerate:
            guard let modelPath = GeminiGenerateWire.path(model: model, stream: request.stream) else {
                throw .invalid("model", "a Gemini model id is letters, digits, '.', '-' and '_' only.")
            }
            bytes = try GeminiGenerateWire.writeRequest(request)
            path = modelPath
        }
        let translation = ChatTranslation(caller: caller, vendor: vendor, stream: request.stream, includeUsage: request.streamIncludesUsage,
                                          structuredTool: structuredTool, model: model, created: created)
        return Request(translation: translation, body: bytes, path: path)
    }

    /// A whole answer in the caller's shape; `nil` when the vendor's is not one it can read.
    public func answer(_ body: [UInt8]) -> [UInt8]? {
        let read: ChatAnswer?
        switch vendor {
        case .openAIChat, .openAIResponses: read = OpenAIChatWire.readAnswer(body)
        case .anthropicMessages: read = AnthropicMessagesWire.readAnswer(body, structuredTool: structuredTool)
        case .geminiGenerate: read = GeminiGenerateWire.readAnswer(body)
        }
        guard var answer = read else { return nil }
        if answer.model.isEmpty { answer.model = model }
        switch caller {
        case .openAIChat: return OpenAIChatWire.writeAnswer(answer, created: created)
        case .anthropicMessages: return AnthropicMessagesWire.writeAnswer(answer)
        case .openAIResponses: return OpenAIResponsesWire.writeAnswer(answer, created: created)
        case .geminiGenerate: return nil
        }
    }

    /// A vendor's error (its status, its body) in the caller's shape, with the vendor's message.
    public func error(status: Int, body: [UInt8]) -> [UInt8] {
        let vendorError = VendorError.parse(Data(body))
        let message = vendorError.message ?? "The vendor answered \(status)."
        return Self.error(caller, status: status, message: message, code: vendorError.codes.first)
    }

    /// Keywarden's own error in a caller's shape.
    public static func error(_ caller: ChatShape, status: Int, message: String, code: String?) -> [UInt8] {
        switch caller {
        case .anthropicMessages: return AnthropicMessagesWire.writeError(status: status, message: message)
        case .openAIChat, .openAIResponses, .geminiGenerate: return OpenAIChatWire.writeError(status: status, message: message, code: code)
        }
    }

    /// The translator of this call's streamed answer.
    public func streamTranslator() -> ChatStreamTranslator {
        ChatStreamTranslator(self)
    }

    /// The content type of the answer the caller receives.
    public var contentType: String { stream ? "text/event-stream; charset=utf-8" : "application/json" }
}

/// Translates a vendor's event stream as it arrives: each complete event is read and written in the caller's shape
/// at once (nothing is held back but a partial line).
public struct ChatStreamTranslator: Sendable {
    private enum Reader: Sendable {
        case openAI(OpenAIChatStreamReader)
        case anthropic(AnthropicStreamReader)
        case gemini(GeminiStreamReader)
    }

    private enum Writer: Sendable {
        case openAI(OpenAIChatStreamWriter)
        case anthropic(AnthropicStreamWriter)
        case responses(OpenAIResponsesStreamWriter)
    }

    private var reader: Reader
    private var writer: Writer
    private var line: [UInt8] = []
    private var events: [ChatEvent] = []
    private var ended = false
    /// The longest event line kept (a longer one is dropped, as the usage reader drops it).
    static let maximumLine = 4 * 1024 * 1024

    init(_ translation: ChatTranslation) {
        switch translation.vendor {
        case .openAIChat, .openAIResponses: reader = .openAI(OpenAIChatStreamReader())
        case .anthropicMessages: reader = .anthropic(AnthropicStreamReader(structuredTool: translation.structuredTool))
        case .geminiGenerate: reader = .gemini(GeminiStreamReader())
        }
        switch translation.caller {
        case .anthropicMessages: writer = .anthropic(AnthropicStreamWriter())
        case .openAIResponses: writer = .responses(OpenAIResponsesStreamWriter(created: translation.created))
        case .openAIChat, .geminiGenerate: writer = .openAI(OpenAIChatStreamWriter(includeUsage: translation.includeUsage, created: translation.created))
        }
    }

    /// Reads a chunk of the vendor's stream; returns what the caller receives for it.
    public mutating func feed<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        // Read as one contiguous run (a ByteBuffer's view is one): a generic walk byte by byte across modules cost more
        // than the translation itself.
        if let out = bytes.withContiguousStorageIfAvailable({ feed(contiguous: $0) }) { return out }
        return Array(bytes).withUnsafeBufferPointer { feed(contiguous: $0) }
    }

    private mutating func feed(contiguous chunk: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        var start = 0
        while start < chunk.count {
            let rest = UnsafeBufferPointer(rebasing: chunk[start...])
            let newline = rest.firstIndex(of: 0x0A)
            let piece = UnsafeBufferPointer(rebasing: rest[..<(newline ?? rest.endIndex)])
            line.append(contentsOf: piece.prefix(max(0, Self.maximumLine - line.count)))
            guard let newline else { break }
            readLine(into: &out)
            line.removeAll(keepingCapacity: true)
            start += newline + 1
        }
        return out
    }

    /// Ends the stream: the last line, then the caller's closing events (finish, usage, `[DONE]` or `message_stop`).
    public mutating func finish() -> [UInt8] {
        var out: [UInt8] = []
        readLine(into: &out)
        line = []
        guard !ended else { return out }
        switch reader {
        case .openAI(var r): r.end(into: &events); reader = .openAI(r)
        case .anthropic(var r): r.end(into: &events); reader = .anthropic(r)
        case .gemini(var r): r.end(into: &events); reader = .gemini(r)
        }
        write(into: &out)
        end(into: &out)
        return out
    }

    private static let dataPrefix = Array("data:".utf8)

    private mutating func readLine(into out: inout [UInt8]) {
        var content = line[...]
        if content.last == 0x0D { content = content.dropLast() }
        guard !ended, content.starts(with: Self.dataPrefix) else { return }
        content = content.dropFirst(Self.dataPrefix.count)
        if content.first == 0x20 { content = content.dropFirst() }
        let data = Array(content)
        var streamEnded = false
        switch reader {
        case .openAI(var r): r.read(data: data, into: &events); streamEnded = r.ended; reader = .openAI(r)
        case .anthropic(var r): r.read(data: data, into: &events); streamEnded = r.ended; reader = .anthropic(r)
        case .gemini(var r): r.read(data: data, into: &events); streamEnded = r.ended; reader = .gemini(r)
        }
        write(into: &out)
        if streamEnded { end(into: &out) }
    }

    private mutating func write(into out: inout [UInt8]) {
        guard !events.isEmpty else { return }
        switch writer {
        case .openAI(var w):
            for event in events { w.write(event, into: &out) }
            writer = .openAI(w)
        case .anthropic(var w):
            for event in events { w.write(event, into: &out) }
            writer = .anthropic(w)
        case .responses(var w):
            for event in events { w.write(event, into: &out) }
            writer = .responses(w)
        }
        events.removeAll(keepingCapacity: true)
    }

    private mutating func end(into out: inout [UInt8]) {
        guard !ended else { return }
        ended = true
        switch writer {
        case .openAI(var w): w.end(into: &out); writer = .openAI(w)
        case .anthropic(var w): w.end(into: &out); writer = .anthropic(w)
        case .responses(var w): w.end(into: &out); writer = .responses(w)
        }
    }
}
