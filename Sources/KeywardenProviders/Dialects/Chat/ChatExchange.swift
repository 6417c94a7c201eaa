import Foundation

/// A chat API's wire shape, as a caller speaks it or a vendor answers in it.
public enum ChatShape: String, Sendable, CaseIterable {
    /// OpenAI's Chat Completions (`POST /v1/chat/completions`), and every OpenAI-compatible vendor's.
    case openAIChat = "openai-chat"
    /// OpenAI's Responses (`POST /v1/responses`; caller side, and OpenAI's own API).
    case openAIResponses = "openai-responses"
    /// Anthropic's Messages (`POST /v1/messages`).
    case anthropicMessages = "anthropic-messages"
    /// Gemini's `generateContent` / `streamGenerateContent` (vendor side only).
    case geminiGenerate = "gemini-generate"
}

/// A chat request between dialects: what every shape can say, with opaque JSON (schemas, tool arguments) kept as the
/// caller's bytes so member order and number spelling pass unchanged.
struct ChatRequest: Sendable, Equatable {
    var model: String?
    var system: [String] = []
    var messages: [ChatMessage] = []
    var tools: [ChatTool] = []
    var toolChoice: ToolChoice?
    var parallelToolCalls: Bool?
    var maxTokens: Int?
    /// Numbers as the caller wrote them (`0.7`, `1e-1`).
    var temperature: String?
    var topP: String?
    var topK: String?
    var stop: [String] = []
    var stream = false
    /// Whether an OpenAI caller asked its stream for usage (`stream_options.include_usage`).
    var streamIncludesUsage = false
    var output: OutputFormat?
    var reasoning: Reasoning?
    var user: String?

    enum ToolChoice: Sendable, Equatable {
        case auto, none, required
        case tool(String)
    }

    enum OutputFormat: Sendable, Equatable {
        case jsonObject
        /// A JSON schema, as the caller's bytes.
        case jsonSchema(name: String, schema: String, description: String?)
    }

    enum Reasoning: Sendable, Equatable {
        /// OpenAI's `reasoning_effort`: `minimal`, `low`, `medium`, `high`.
        case effort(String)
        /// Anthropic's thinking budget, Gemini's `thinkingBudget`.
        case budget(Int)
        case disabled

        /// The budget an effort stands for.
        var budget: Int? {
            switch self {
            case .budget(let tokens): return tokens
            case .disabled: return nil
            case .effort(let effort):
                switch effort {
                case "minimal", "low": return 1024
                case "medium": return 4096
                default: return 16384
                }
            }
        }

        /// The effort a budget stands for.
        var effort: String? {
            switch self {
            case .effort(let effort): return effort
            case .disabled: return nil
            case .budget(let tokens): return tokens <= 2048 ? "low" : tokens <= 8192 ? "medium" : "high"
            }
        }
    }
}

struct ChatMessage: Sendable, Equatable {
    enum Role: String, Sendable { case user, assistant }
    var role: Role
    var parts: [ChatPart]
}

/// One piece of a message or an answer.
enum ChatPart: Sendable, Equatable {
    case text(String)
    case image(MediaSource)
    /// A PDF (or another document a vendor reads).
    case document(MediaSource)
    /// A call of a tool: its id (kept stable across the round trip), name and arguments (JSON text).
    case toolCall(id: String, name: String, arguments: String)
    case toolResult(id: String, content: String, isError: Bool)
    /// Reasoning text with the vendor's signature, handed back on the next turn.
    case thinking(text: String, signature: String?)
    case redactedThinking(String)

    var isToolResult: Bool { if case .toolResult = self { return true } else { return false } }
}

enum MediaSource: Sendable, Equatable {
    case url(String)
    case base64(mediaType: String, data: String)

    /// A `data:` URL read as base64 media; any other URL stays a URL.
    static func fromURL(_ url: String) -> MediaSource {
        if url.hasPrefix("data:"), let comma = url.firstIndex(of: ",") {
            let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
            if header.hasSuffix(";base64") {
                return .base64(mediaType: String(header.dropLast(7)), data: String(url[url.index(after: comma)...]))
            }
        }
        return .url(url)
    }

    var dataURL: String {
        switch self {
        case .url(let url): return url
        case .base64(let type, let data): return "data:\(type);base64,\(data)"
        }
    }
}

struct ChatTool: Sendable, Equatable {
    var name: String
    var description: String?
    /// The parameters' JSON schema, as the caller's bytes.
    var parameters: String
}

/// Why an answer ended.
enum ChatFinish: Sendable, Equatable {
    case stop, length, toolCalls, contentFilter
    case stopSequence(String?)
}

/// What an answer consumed, in one meaning for every dialect: `input` counts every prompt token, cached ones included.
struct ChatUsage: Sendable, Equatable {
    var input = 0
    var output = 0
    var cacheRead = 0
    var cacheWrite = 0
    var reasoning: Int?
}

/// A whole answer between dialects.
struct ChatAnswer: Sendable, Equatable {
    var id: String
    var model: String
    var parts: [ChatPart] = []
    var finish: ChatFinish = .stop
    var usage = ChatUsage()
}

/// One step of a streamed answer between dialects.
enum ChatEvent: Sendable, Equatable {
    case start(id: String, model: String)
    case text(String)
    case thinking(String)
    case signature(String)
    case redactedThinking(String)
    /// A tool call begins (its arguments follow as ``toolArguments(_:)``).
    case toolStart(id: String, name: String)
    case toolArguments(String)
    case finish(ChatFinish)
    case usage(ChatUsage)
}

/// Why a request cannot be translated: a field the target cannot express (`400 unsupported_for_provider`), or a request
/// that is not what its shape says (`400 invalid_request`).
public struct TranslationError: Error, Sendable, Equatable {
    public var code: String
    public var field: String
    public var message: String

    static func unsupported(_ field: String, _ target: String, _ why: String? = nil) -> TranslationError {
        TranslationError(code: "unsupported_for_provider", field: field,
                         message: "\(field) cannot be expressed for \(target)\(why.map { ": \($0)" } ?? ""); send the call without it, or use a key of a provider that has it.")
    }

    static func invalid(_ field: String, _ why: String) -> TranslationError {
        TranslationError(code: "invalid_request", field: field, message: "\(field): \(why)")
    }
}
