import Foundation

extension ChatRequest {
    /// Adds a turn; consecutive parts of one role make one turn (as Anthropic and Gemini require).
    mutating func append(_ role: ChatMessage.Role, _ parts: [ChatPart]) {
        guard !parts.isEmpty else { return }
        if let last = messages.indices.last, messages[last].role == role {
            messages[last].parts += parts
        } else {
            messages.append(ChatMessage(role: role, parts: parts))
        }
    }
}

/// Anthropic's Messages API, read and written.
enum AnthropicMessagesWire {
    // MARK: Requests

    static let requestMembers: Set<String> = [
        "model", "messages", "system", "max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "stream", "tools",
        "tool_choice", "thinking", "metadata",
    ]

    /// Reads a Messages request; a member that cannot travel to `target` is refused by name.
    static func readRequest(_ body: [UInt8], target: String) throws(TranslationError) -> ChatRequest {
        guard let object = JSONMembers.document(body) else { throw .invalid("body", "send one JSON object, as the Messages API expects.") }
        for name in object.names.sorted() where !requestMembers.contains(name) && object.has(name) {
            throw .unsupported(name, target)
        }
        var request = ChatRequest()
        request.model = object["model"]?.string
        request.stream = object["stream"]?.bool ?? false
        request.maxTokens = object["max_tokens"]?.int
        request.temperature = object["temperature"].flatMap { $0.isNumber ? $0.raw : nil }
        request.topP = object["top_p"].flatMap { $0.isNumber ? $0.raw : nil }
        request.topK = object["top_k"].flatMap { $0.isNumber ? $0.raw : nil }
        request.stop = (object["stop_sequences"]?.elements ?? []).compactMap(\.string)
        request.user = object["metadata"]?.object?["user_id"]?.string
        if let system = object["system"] {
            if let text = system.string {
                request.system = [text]
            } else {
                // Text blocks; their `cache_control` is a hint the other vendors do not need (they cache by themselves).
                request.system = (system.elements ?? []).compactMap { $0.object?["text"]?.string }
            }
        }
        if let thinking = object["thinking"]?.object {
            switch thinking["type"]?.string {
            case "enabled"?: request.reasoning = .budget(thinking["budget_tokens"]?.int ?? 1024)
            case "disabled"?: request.reasoning = .disabled
            default: throw .unsupported("thinking.type", target)
            }
        }
        for (index, tool) in (object["tools"]?.elements ?? []).enumerated() {
            guard let tool = tool.object, let name = tool["name"]?.string, let schema = tool["input_schema"] else {
                throw .unsupported("tools[\(index)]", target, "only custom tools with an input_schema translate")
            }
            if let type = tool["type"]?.string, type != "custom" { throw .unsupported("tools[\(index)].type (\(type))", target) }
            request.tools.append(ChatTool(name: name, description: tool["description"]?.string, parameters: schema.raw))
        }
        if let choice = object["tool_choice"]?.object {
            switch choice["type"]?.string {
            case "auto"?: request.toolChoice = .auto
            case "any"?: request.toolChoice = .required
            case "none"?: request.toolChoice = ChatRequest.ToolChoice.none
            case "tool"?: request.toolChoice = .tool(choice["name"]?.string ?? "")
            default: throw .invalid("tool_choice.type", "auto, any, none or tool.")
            }
            if choice["disable_parallel_tool_use"]?.bool == true { request.parallelToolCalls = false }
        }
        guard let messages = object["messages"]?.elements else { throw .invalid("messages", "give the conversation as an array.") }
        for (index, message) in messages.enumerated() {
            let path = "messages[\(index)]"
            guard let message = message.object, let role = message["role"]?.string.flatMap(ChatMessage.Role.init(rawValue:)) else {
                throw .invalid(path, "a message's role is user or assistant.")
            }
            request.append(role, try parts(of: message["content"], at: "\(path).content", target: target))
        }
        return request
    }

    private static func media(_ source: JSONMembers?, at path: String) throws(TranslationError) -> MediaSource {
        switch source?["type"]?.string {
        case "base64"?:
            guard let type = source?["media_type"]?.string, let data = source?["data"]?.string else { throw .invalid(path, "give media_type and data.") }
            return .base64(mediaType: type, data: data)
        case "url"?:
            guard let url = source?["url"]?.string else { throw .invalid(path, "give the url.") }
            return .url(url)
        default:
            throw .invalid(path, "a source is base64 or url.")
        }
    }

    private static func parts(of content: JSONValue?, at path: String, target: String) throws(TranslationError) -> [ChatPart] {
        guard let content else { return [] }
        if let text = content.string { return [.text(text)] }
        guard let blocks = content.elements else { throw .invalid(path, "content is a string or an array of blocks.") }
        var parts: [ChatPart] = []
        for (index, element) in blocks.enumerated() {
            let at = "\(path)[\(index)]"
            guard let block = element.object else { throw .invalid(at, "a block is an object.") }
            switch block["type"]?.string {
            case "text"?: parts.append(.text(block["text"]?.string ?? ""))
            case "image"?: parts.append(.image(try media(block["source"]?.object, at: "\(at).source")))
            case "document"?: parts.append(.document(try media(block["source"]?.object, at: "\(at).source")))
            case "tool_use"?:
                guard let id = block["id"]?.string, let name = block["name"]?.string else { throw .invalid(at, "a tool_use has an id and a name.") }
                parts.append(.toolCall(id: id, name: name, arguments: block["input"]?.raw ?? "{}"))
            case "tool_result"?:
                guard let id = block["tool_use_id"]?.string else { throw .invalid(at, "a tool_result names its tool_use_id.") }
                let result = block["content"]
                var text = result?.string ?? ""
                if result?.string == nil, let inner = result?.elements {
                    var pieces: [String] = []
                    for (innerIndex, piece) in inner.enumerated() {
                        guard let piece = piece.object, piece["type"]?.string == "text", let t = piece["text"]?.string else {
                            throw .unsupported("\(at).content[\(innerIndex)]", target, "a tool result translates as text only")
                        }
                        pieces.append(t)
                    }
                    text = pieces.joined(separator: "\n")
                }
                parts.append(.toolResult(id: id, content: text, isError: block["is_error"]?.bool ?? false))
            case "thinking"?: parts.append(.thinking(text: block["thinking"]?.string ?? "", signature: block["signature"]?.string))
            case "redacted_thinking"?: parts.append(.redactedThinking(block["data"]?.string ?? ""))
            default: throw .unsupported("\(at).type (\(block["type"]?.string ?? "?"))", target)
            }
        }
        return parts
    }

    /// The tool that carries a structured output to Anthropic (a forced tool whose input is the answer).
    static func structuredTool(_ request: ChatRequest) -> ChatTool? {
        switch request.output {
        case .jsonSchema(let name, let schema, let description)?:
            return ChatTool(name: name, description: description ?? "Give the answer as this tool's input.", parameters: schema)
        case .jsonObject?:
            return ChatTool(name: "json_answer", description: "Give the answer as this tool's input, a JSON object.", parameters: #"{"type":"object"}"#)
        case nil:
            return nil
        }
    }

    /// Writes a Messages request; `defaultMaxTokens` fills the required `max_tokens` when the caller set none.
    static func writeRequest(_ request: ChatRequest, model: String, defaultMaxTokens: Int) throws(TranslationError) -> [UInt8] {
        let structured = structuredTool(request)
        if structured != nil, !request.tools.isEmpty {
            throw .unsupported("response_format", "Anthropic", "a structured output is carried by a forced tool, which cannot be combined with tools")
        }
        var json = JSONWriter(capacity: 1024)
        json.beginObject()
        json.member("model", model)
        let maxTokens = request.maxTokens ?? defaultMaxTokens
        json.member("max_tokens", maxTokens)
        if !request.system.isEmpty { json.member("system", request.system.joined(separator: "\n")) }
        json.key("messages")
        json.beginArray()
        for message in request.messages {
            json.beginObject()
            json.member("role", message.role.rawValue)
            json.key("content")
            json.beginArray()
            // Tool results open a user turn (Anthropic wants them first).
            let ordered = message.parts.filter(\.isToolResult) + message.parts.filter { !$0.isToolResult }
            for part in ordered {
                json.beginObject()
                switch part {
                case .text(let text): json.member("type", "text"); json.member("text", text)
                case .image(let source): json.member("type", "image"); writeSource(source, into: &json)
                case .document(let source): json.member("type", "document"); writeSource(source, into: &json)
                case .toolCall(let id, let name, let arguments):
                    json.member("type", "tool_use"); json.member("id", id); json.member("name", name)
                    json.key("input")
                    let bytes = Array(arguments.utf8)
                    if JSONObject.body(bytes) != nil { json.raw(bytes) } else { json.raw("{}") }
                case .toolResult(let id, let content, let isError):
                    json.member("type", "tool_result"); json.member("tool_use_id", id); json.member("content", content)
                    if isError { json.member("is_error", true) }
                case .thinking(let text, let signature):
                    json.member("type", "thinking"); json.member("thinking", text); json.member("signature", signature ?? "")
                case .redactedThinking(let data):
                    json.member("type", "redacted_thinking"); json.member("data", data)
                }
                json.endObject()
            }
            json.endArray()
            json.endObject()
        }
        json.endArray()
        json.memberIfPresent("temperature", raw: request.temperature)
        json.memberIfPresent("top_p", raw: request.topP)
        json.memberIfPresent("top_k", raw: request.topK)
        if !request.stop.isEmpty {
            json.key("stop_sequences"); json.beginArray(); request.stop.forEach { json.string($0) }; json.endArray()
        }
        let tools = request.tools + (structured.map { [$0] } ?? [])
        if !tools.isEmpty {
            json.key("tools")
            json.beginArray()
            for tool in tools {
                json.beginObject()
                json.member("name", tool.name); json.memberIfPresent("description", tool.description); json.member("input_schema", raw: tool.parameters)
                json.endObject()
            }
            json.endArray()
        }
        let choice = structured.map { ChatRequest.ToolChoice.tool($0.name) } ?? request.toolChoice
        if choice != nil || request.parallelToolCalls == false {
            json.key("tool_choice"); json.beginObject()
            switch choice ?? .auto {
            case .auto: json.member("type", "auto")
            case .none: json.member("type", "none")
            case .required: json.member("type", "any")
            case .tool(let name): json.member("type", "tool"); json.member("name", name)
            }
            if request.parallelToolCalls == false { json.member("disable_parallel_tool_use", true) }
            json.endObject()
        }
        if let reasoning = request.reasoning {
            json.key("thinking"); json.beginObject()
            if let budget = reasoning.budget {
                // The budget must be at least 1,024 tokens and below max_tokens.
                json.member("type", "enabled"); json.member("budget_tokens", max(1024, min(budget, maxTokens - 1)))
            } else {
                json.member("type", "disabled")
            }
            json.endObject()
        }
        if let user = request.user {
            json.key("metadata"); json.beginObject(); json.member("user_id", user); json.endObject()
        }
        if request.stream { json.member("stream", true) }
        json.endObject()
        return json.bytes
    }

    private static func writeSource(_ source: MediaSource, into json: inout JSONWriter) {
        json.key("source"); json.beginObject()
        switch source {
        case .url(let url): json.member("type", "url"); json.member("url", url)
        case .base64(let type, let data): json.member("type", "base64"); json.member("media_type", type); json.member("data", data)
        }
        json.endObject()
    }

    // MARK: Answers

    static func finish(_ reason: String?, sequence: String?) -> ChatFinish {
        switch reason {
        case "max_tokens"?, "model_context_window_exceeded"?: return .length
        case "tool_use"?: return .toolCalls
        case "stop_sequence"?: return .stopSequence(sequence)
        case "refusal"?: return .contentFilter
        default: return .stop
        }
    }

    static func reason(_ finish: ChatFinish) -> String {
        switch finish {
        case .stop: return "end_turn"
        case .length: return "max_tokens"
        case .toolCalls: return "tool_use"
        case .contentFilter: return "refusal"
        case .stopSequence: return "stop_sequence"
        }
    }

    static func usage(_ object: JSONMembers?, into usage: inout ChatUsage) {
        guard let object else { return }
        let cacheRead = max(0, object["cache_read_input_tokens"]?.int ?? 0)
        let cacheWrite = max(0, object["cache_creation_input_tokens"]?.int ?? 0)
        if let input = object["input_tokens"]?.int {
            usage.input = max(0, input).saturatingAdding(cacheRead).saturatingAdding(cacheWrite)
            usage.cacheRead = cacheRead
            usage.cacheWrite = cacheWrite
        }
        if let output = object["output_tokens"]?.int { usage.output = max(0, output) }
    }

    /// Reads a whole Messages answer; `structuredTool` names the forced tool whose input is the answer's text.
    static func readAnswer(_ body: [UInt8], structuredTool: String?) -> ChatAnswer? {
        guard let object = JSONMembers.document(body) else { return nil }
        var answer = ChatAnswer(id: object["id"]?.string ?? "msg", model: object["model"]?.string ?? "")
        var structured = false
        for block in object["content"]?.elements ?? [] {
            guard let block = block.object else { continue }
            switch block["type"]?.string {
            case "text"?: answer.parts.append(.text(block["text"]?.string ?? ""))
            case "tool_use"? where block["name"]?.string == structuredTool && structuredTool != nil:
                structured = true
                answer.parts.append(.text(block["input"]?.raw ?? "{}"))
            case "tool_use"?:
                answer.parts.append(.toolCall(id: block["id"]?.string ?? "toolu", name: block["name"]?.string ?? "", arguments: block["input"]?.raw ?? "{}"))
            case "thinking"?: answer.parts.append(.thinking(text: block["thinking"]?.string ?? "", signature: block["signature"]?.string))
            case "redacted_thinking"?: answer.parts.append(.redactedThinking(block["data"]?.string ?? ""))
            default: continue
            }
        }
        answer.finish = structured ? .stop : finish(object["stop_reason"]?.string, sequence: object["stop_sequence"]?.string)
        usage(object["usage"]?.object, into: &answer.usage)
        return answer
    }

    static func writeUsage(_ usage: ChatUsage, into json: inout JSONWriter) {
        json.beginObject()
        // Anthropic counts cached tokens apart from input_tokens (each figure is at least 0: no overflow).
        json.member("input_tokens", usage.input - min(usage.input, usage.cacheRead.saturatingAdding(usage.cacheWrite)))
        json.member("output_tokens", usage.output)
        json.member("cache_read_input_tokens", usage.cacheRead)
        json.member("cache_creation_input_tokens", usage.cacheWrite)
        json.endObject()
    }

    /// Writes a whole Messages answer.
    static func writeAnswer(_ answer: ChatAnswer) -> [UInt8] {
        var json = JSONWriter()
        json.beginObject()
        json.member("id", answer.id)
        json.member("type", "message")
        json.member("role", "assistant")
        json.member("model", answer.model)
        json.key("content"); json.beginArray()
        for part in answer.parts {
            json.beginObject()
            switch part {
            case .text(let text): json.member("type", "text"); json.member("text", text)
            case .toolCall(let id, let name, let arguments):
                json.member("type", "tool_use"); json.member("id", id); json.member("name", name)
                json.key("input")
                let bytes = Array(arguments.utf8)
                if JSONObject.body(bytes) != nil { json.raw(bytes) } else { json.raw("{}") }
            case .thinking(let text, let signature):
                json.member("type", "thinking"); json.member("thinking", text); json.member("signature", signature ?? "")
            case .redactedThinking(let data): json.member("type", "redacted_thinking"); json.member("data", data)
            default: break
            }
            json.endObject()
        }
        json.endArray()
        json.member("stop_reason", reason(answer.finish))
        json.key("stop_sequence")
        if case .stopSequence(let sequence?) = answer.finish { json.string(sequence) } else { json.null() }
        json.key("usage"); writeUsage(answer.usage, into: &json)
        json.endObject()
        return json.bytes
    }

    /// An error in Anthropic's shape.
    static func writeError(status: Int, message: String) -> [UInt8] {
        let type: String = switch status {
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 529: "overloaded_error"
        case 500...: "api_error"
        default: "invalid_request_error"
        }
        var json = JSONWriter()
        json.beginObject(); json.member("type", "error")
        json.key("error"); json.beginObject(); json.member("type", type); json.member("message", message); json.endObject()
        json.endObject()
        return json.bytes
    }
}

/// Reads an Anthropic Messages stream's events.
struct AnthropicStreamReader: Sendable {
    let structuredTool: String?
    /// Whether the block now open is the structured output's tool (its input deltas are the answer's text).
    private var inStructured = false
    private var sawStructured = false
    private var finish: ChatFinish?
    private var usage = ChatUsage()
    private(set) var ended = false

    init(structuredTool: String?) { self.structuredTool = structuredTool }

    mutating func read(data: [UInt8], into events: inout [ChatEvent]) {
        guard let object = JSONMembers.document(data) else { return }
        switch object["type"]?.string {
        case "message_start"?:
            let message = object["message"]?.object
            AnthropicMessagesWire.usage(message?["usage"]?.object, into: &usage)
            events.append(.start(id: message?["id"]?.string ?? "msg", model: message?["model"]?.string ?? ""))
        case "content_block_start"?:
            guard let block = object["content_block"]?.object else { return }
            inStructured = false
            switch block["type"]?.string {
            case "tool_use"? where structuredTool != nil && block["name"]?.string == structuredTool:
                inStructured = true
                sawStructured = true
            case "tool_use"?:
                events.append(.toolStart(id: block["id"]?.string ?? "toolu", name: block["name"]?.string ?? ""))
            case "text"?:
                if let text = block["text"]?.string, !text.isEmpty { events.append(.text(text)) }
            case "redacted_thinking"?:
                events.append(.redactedThinking(block["data"]?.string ?? ""))
            default: break
            }
        case "content_block_delta"?:
            guard let delta = object["delta"]?.object else { return }
            switch delta["type"]?.string {
            case "text_delta"?: if let text = delta["text"]?.string { events.append(.text(text)) }
            case "input_json_delta"?:
                if let json = delta["partial_json"]?.string, !json.isEmpty { events.append(inStructured ? .text(json) : .toolArguments(json)) }
            case "thinking_delta"?: if let text = delta["thinking"]?.string { events.append(.thinking(text)) }
            case "signature_delta"?: if let signature = delta["signature"]?.string { events.append(.signature(signature)) }
            default: break
            }
        case "message_delta"?:
            if let delta = object["delta"]?.object, let reason = delta["stop_reason"]?.string {
                finish = sawStructured ? .stop : AnthropicMessagesWire.finish(reason, sequence: delta["stop_sequence"]?.string)
            }
            AnthropicMessagesWire.usage(object["usage"]?.object, into: &usage)
        case "message_stop"?:
            end(into: &events)
        default: break
        }
    }

    mutating func end(into events: inout [ChatEvent]) {
        guard !ended else { return }
        ended = true
        events.append(.finish(finish ?? .stop))
        events.append(.usage(usage))
    }
}

/// Writes an answer as an Anthropic Messages stream.
struct AnthropicStreamWriter: Sendable {
    private enum Block: Equatable { case text, thinking, tool }
    private var open: Block?
    private var index = -1
    private var finish: ChatFinish = .stop
    private var usage: ChatUsage?
    private var pendingSignature: String?

    private mutating func close(_ out: inout [UInt8]) {
        guard open != nil else { return }
        if open == .thinking, let signature = pendingSignature {
            event("content_block_delta", &out) { json in
                json.member("index", index)
                json.key("delta"); json.beginObject(); json.member("type", "signature_delta"); json.member("signature", signature); json.endObject()
            }
            pendingSignature = nil
        }
        event("content_block_stop", &out) { $0.member("index", index) }
        open = nil
    }

    private mutating func begin(_ block: Block, _ out: inout [UInt8], content: (inout JSONWriter) -> Void) {
        close(&out)
        index += 1
        open = block
        event("content_block_start", &out) { json in
            json.member("index", index)
            json.key("content_block"); json.beginObject(); content(&json); json.endObject()
        }
    }

    private func event(_ type: String, _ out: inout [UInt8], body: (inout JSONWriter) -> Void) {
        var json = JSONWriter(capacity: 256)
        json.beginObject()
        json.member("type", type)
        body(&json)
        json.endObject()
        SSE.write(event: type, data: json.bytes, into: &out)
    }

    private func delta(_ type: String, _ member: String, _ value: String, _ out: inout [UInt8]) {
        event("content_block_delta", &out) { json in
            json.member("index", index)
            json.key("delta"); json.beginObject(); json.member("type", type); json.member(member, value); json.endObject()
        }
    }

    mutating func write(_ event: ChatEvent, into out: inout [UInt8]) {
        switch event {
        case .start(let id, let model):
            self.event("message_start", &out) { json in
                json.key("message"); json.beginObject()
                json.member("id", id); json.member("type", "message"); json.member("role", "assistant"); json.member("model", model)
                json.key("content"); json.beginArray(); json.endArray()
                json.key("stop_reason"); json.null(); json.key("stop_sequence"); json.null()
                json.key("usage"); json.beginObject(); json.member("input_tokens", 0); json.member("output_tokens", 0); json.endObject()
                json.endObject()
            }
        case .text(let text):
            if open != .text { begin(.text, &out) { $0.member("type", "text"); $0.member("text", "") } }
            delta("text_delta", "text", text, &out)
        case .thinking(let text):
            if open != .thinking { begin(.thinking, &out) { $0.member("type", "thinking"); $0.member("thinking", "") } }
            delta("thinking_delta", "thinking", text, &out)
        case .signature(let signature):
            if open == .thinking { pendingSignature = (pendingSignature ?? "") + signature }
        case .redactedThinking(let data):
            begin(.thinking, &out) { $0.member("type", "redacted_thinking"); $0.member("data", data) }
            close(&out)
        case .toolStart(let id, let name):
            begin(.tool, &out) { json in
                json.member("type", "tool_use"); json.member("id", id); json.member("name", name)
                json.key("input"); json.beginObject(); json.endObject()
            }
        case .toolArguments(let arguments):
            if open == .tool { delta("input_json_delta", "partial_json", arguments, &out) }
        case .finish(let finish): self.finish = finish
        case .usage(let usage): self.usage = usage
        }
    }

    mutating func end(into out: inout [UInt8]) {
        close(&out)
        let finish = self.finish
        let usage = self.usage ?? ChatUsage()
        event("message_delta", &out) { json in
            json.key("delta"); json.beginObject()
            json.member("stop_reason", AnthropicMessagesWire.reason(finish))
            json.key("stop_sequence")
            if case .stopSequence(let sequence?) = finish { json.string(sequence) } else { json.null() }
            json.endObject()
            json.key("usage"); AnthropicMessagesWire.writeUsage(usage, into: &json)
        }
        event("message_stop", &out) { _ in }
    }
}
