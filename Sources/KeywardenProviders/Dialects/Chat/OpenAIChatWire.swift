import Foundation

/// OpenAI's Chat Completions, read and written.
enum OpenAIChatWire {
    // MARK: Requests

    /// The members a Chat Completions request may carry into a translation.
    static let requestMembers: Set<String> = [
        "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop",
        "tools", "tool_choice", "parallel_tool_calls", "response_format", "reasoning_effort", "user", "n",
    ]

    /// Reads a Chat Completions request; a member that cannot travel to `target` is refused by name.
    static func readRequest(_ body: [UInt8], target: String) throws(TranslationError) -> ChatRequest {
        guard let object = JSONMembers.document(body) else { throw .invalid("body", "send one JSON object, as the chat completions API expects.") }
        for name in object.names.sorted() where !requestMembers.contains(name) && object.has(name) {
            throw .unsupported(name, target)
        }
        var request = ChatRequest()
        request.model = object["model"]?.string
        request.stream = object["stream"]?.bool ?? false
        request.streamIncludesUsage = object["stream_options"]?.object?["include_usage"]?.bool ?? false
        request.maxTokens = object["max_completion_tokens"]?.int ?? object["max_tokens"]?.int
        request.temperature = object["temperature"].flatMap { $0.isNumber ? $0.raw : nil }
        request.topP = object["top_p"].flatMap { $0.isNumber ? $0.raw : nil }
        if let n = object["n"], n.int != 1 { throw .unsupported("n", target, "one choice only") }
        if let stop = object["stop"] {
            request.stop = stop.string.map { [$0] } ?? (stop.elements ?? []).compactMap(\.string)
        }
        request.user = object["user"]?.string
        request.parallelToolCalls = object["parallel_tool_calls"]?.bool
        if let effort = object["reasoning_effort"]?.string { request.reasoning = effort == "none" ? .disabled : .effort(effort) }
        request.tools = try OpenAIChatWire.functionTools(object["tools"], target: target) { $0["function"]?.object }
        if let choice = object["tool_choice"] {
            request.toolChoice = try OpenAIChatWire.toolChoice(choice, target: target) { $0["function"]?.object?["name"]?.string }
        }
        if let format = object["response_format"]?.object {
            switch format["type"]?.string {
            case "text"?: break
            case "json_object"?: request.output = .jsonObject
            case "json_schema"?:
                guard let spec = format["json_schema"]?.object, let schema = spec["schema"] else {
                    throw .invalid("response_format.json_schema", "give the schema")
                }
                request.output = .jsonSchema(name: spec["name"]?.string ?? "response", schema: schema.raw, description: spec["description"]?.string)
            default: throw .unsupported("response_format.type", target)
            }
        }
        guard let messages = object["messages"]?.elements else { throw .invalid("messages", "give the conversation as an array.") }
        for (index, message) in messages.enumerated() {
            try readMessage(message, at: "messages[\(index)]", into: &request, target: target)
        }
        return request
    }

    /// OpenAI's function tools (`tools`), each read from the object `function` finds in it (Chat nests it under
    /// `function`, Responses does not); any other kind of tool is refused by name.
    static func functionTools(_ tools: JSONValue?, target: String, function: (JSONMembers) -> JSONMembers?) throws(TranslationError) -> [ChatTool] {
        var read: [ChatTool] = []
        for (index, tool) in (tools?.elements ?? []).enumerated() {
            guard let tool = tool.object, tool["type"]?.string == "function", let spec = function(tool), let name = spec["name"]?.string else {
                throw .unsupported("tools[\(index)]", target, "only function tools translate")
            }
            read.append(ChatTool(name: name, description: spec["description"]?.string,
                                 parameters: spec["parameters"]?.raw ?? #"{"type":"object","properties":{}}"#))
        }
        return read
    }

    /// OpenAI's `tool_choice`: `auto`, `none`, `required`, or an object naming a function (`name` finds it).
    static func toolChoice(_ choice: JSONValue, target: String, name: (JSONMembers) -> String?) throws(TranslationError) -> ChatRequest.ToolChoice {
        switch choice.string {
        case "auto"?: return .auto
        case "none"?: return ChatRequest.ToolChoice.none
        case "required"?: return .required
        default:
            guard let object = choice.object, let function = name(object) else {
                throw .unsupported("tool_choice", target, "auto, none, required or a function")
            }
            return .tool(function)
        }
    }

    private static func readMessage(_ value: JSONValue, at path: String, into request: inout ChatRequest, target: String) throws(TranslationError) {
        guard let message = value.object, let role = message["role"]?.string else { throw .invalid(path, "a message needs a role.") }
        switch role {
        case "system", "developer":
            request.system.append(try text(of: message["content"], at: "\(path).content", target: target))
        case "user":
            request.append(.user, try parts(of: message["content"], at: "\(path).content", target: target))
        case "assistant":
            var parts: [ChatPart] = []
            for (index, block) in (message["thinking_blocks"]?.elements ?? []).enumerated() {
                guard let block = block.object else { throw .invalid("\(path).thinking_blocks[\(index)]", "a block is an object.") }
                if block["type"]?.string == "redacted_thinking", let data = block["data"]?.string {
                    parts.append(.redactedThinking(data))
                } else {
                    parts.append(.thinking(text: block["thinking"]?.string ?? "", signature: block["signature"]?.string))
                }
            }
            if let content = message["content"] {
                parts += try self.parts(of: content, at: "\(path).content", target: target).filter { if case .text(let t) = $0 { return !t.isEmpty } else { return true } }
            }
            for (index, call) in (message["tool_calls"]?.elements ?? []).enumerated() {
                guard let call = call.object, let id = call["id"]?.string, let function = call["function"]?.object,
                      let name = function["name"]?.string else { throw .invalid("\(path).tool_calls[\(index)]", "a tool call needs an id and a function name.") }
                parts.append(.toolCall(id: id, name: name, arguments: function["arguments"]?.string ?? "{}"))
            }
            request.append(.assistant, parts)
        case "tool":
            guard let id = message["tool_call_id"]?.string else { throw .invalid("\(path).tool_call_id", "a tool message names the call it answers.") }
            request.append(.user, [.toolResult(id: id, content: try text(of: message["content"], at: "\(path).content", target: target), isError: false)])
        default:
            throw .unsupported("\(path).role (\(role))", target)
        }
    }

    /// Text content: a string, or text parts joined.
    private static func text(of content: JSONValue?, at path: String, target: String) throws(TranslationError) -> String {
        guard let content else { return "" }
        if let text = content.string { return text }
        var joined: [String] = []
        for (index, part) in (content.elements ?? []).enumerated() {
            guard let part = part.object, part["type"]?.string == "text", let text = part["text"]?.string else {
                throw .unsupported("\(path)[\(index)]", target, "only text goes here")
            }
            joined.append(text)
        }
        return joined.joined(separator: "\n")
    }

    private static func parts(of content: JSONValue?, at path: String, target: String) throws(TranslationError) -> [ChatPart] {
        guard let content else { return [] }
        if let text = content.string { return [.text(text)] }
        guard let elements = content.elements else { throw .invalid(path, "content is a string or an array of parts.") }
        var parts: [ChatPart] = []
        for (index, element) in elements.enumerated() {
            guard let part = element.object else { throw .invalid("\(path)[\(index)]", "a part is an object.") }
            switch part["type"]?.string {
            case "text"?: parts.append(.text(part["text"]?.string ?? ""))
            case "image_url"?:
                guard let url = part["image_url"]?.object?["url"]?.string ?? part["image_url"]?.string else { throw .invalid("\(path)[\(index)].image_url", "give its url.") }
                parts.append(.image(.fromURL(url)))
            case "file"?:
                guard let data = part["file"]?.object?["file_data"]?.string, case .base64(let type, let base64) = MediaSource.fromURL(data) else {
                    throw .unsupported("\(path)[\(index)].file", target, "only a file given inline as a data: URL translates")
                }
                parts.append(.document(.base64(mediaType: type, data: base64)))
            default:
                throw .unsupported("\(path)[\(index)].type (\(part["type"]?.string ?? "?"))", target)
            }
        }
        return parts
    }

    /// Writes a Chat Completions request for a vendor; `limitMember` is the member its output limit goes in.
    static func writeRequest(_ request: ChatRequest, model: String, limitMember: String) -> [UInt8] {
        var json = JSONWriter(capacity: 1024)
        json.beginObject()
        json.member("model", model)
        json.key("messages")
        json.beginArray()
        if !request.system.isEmpty {
            json.beginObject(); json.member("role", "system"); json.member("content", request.system.joined(separator: "\n")); json.endObject()
        }
        for message in request.messages {
            // Tool results become messages of their own, first; the rest of a turn follows.
            for case .toolResult(let id, let content, _) in message.parts {
                json.beginObject(); json.member("role", "tool"); json.member("tool_call_id", id); json.member("content", content); json.endObject()
            }
            let rest = message.parts.filter { !$0.isToolResult }
            guard !rest.isEmpty else { continue }
            json.beginObject()
            json.member("role", message.role.rawValue)
            if message.role == .assistant {
                let text = rest.compactMap { if case .text(let t) = $0 { return t } else { return nil } }.joined()
                json.key("content")
                if text.isEmpty { json.null() } else { json.string(text) }
                let calls = rest.compactMap { part -> (String, String, String)? in
                    if case .toolCall(let id, let name, let arguments) = part { return (id, name, arguments) } else { return nil }
                }
                if !calls.isEmpty {
                    json.key("tool_calls")
                    json.beginArray()
                    for (id, name, arguments) in calls {
                        json.beginObject(); json.member("id", id); json.member("type", "function")
                        json.key("function"); json.beginObject(); json.member("name", name); json.member("arguments", arguments); json.endObject()
                        json.endObject()
                    }
                    json.endArray()
                }
            } else {
                json.key("content")
                json.beginArray()
                for part in rest {
                    switch part {
                    case .text(let text): json.beginObject(); json.member("type", "text"); json.member("text", text); json.endObject()
                    case .image(let source):
                        json.beginObject(); json.member("type", "image_url")
                        json.key("image_url"); json.beginObject(); json.member("url", source.dataURL); json.endObject()
                        json.endObject()
                    case .document(let source):
                        json.beginObject(); json.member("type", "file")
                        json.key("file"); json.beginObject(); json.member("filename", "document.pdf"); json.member("file_data", source.dataURL); json.endObject()
                        json.endObject()
                    default: break
                    }
                }
                json.endArray()
            }
            json.endObject()
        }
        json.endArray()
        if let max = request.maxTokens { json.member(limitMember, max) }
        json.memberIfPresent("temperature", raw: request.temperature)
        json.memberIfPresent("top_p", raw: request.topP)
        if !request.stop.isEmpty {
            json.key("stop"); json.beginArray(); request.stop.forEach { json.string($0) }; json.endArray()
        }
        if !request.tools.isEmpty {
            json.key("tools")
            json.beginArray()
            for tool in request.tools {
                json.beginObject(); json.member("type", "function")
                json.key("function"); json.beginObject()
                json.member("name", tool.name); json.memberIfPresent("description", tool.description); json.member("parameters", raw: tool.parameters)
                json.endObject(); json.endObject()
            }
            json.endArray()
        }
        switch request.toolChoice {
        case .auto?: json.member("tool_choice", "auto")
        case .none?: json.member("tool_choice", "none")
        case .required?: json.member("tool_choice", "required")
        case .tool(let name)?:
            json.key("tool_choice"); json.beginObject(); json.member("type", "function")
            json.key("function"); json.beginObject(); json.member("name", name); json.endObject(); json.endObject()
        case nil: break
        }
        if let parallel = request.parallelToolCalls { json.member("parallel_tool_calls", parallel) }
        switch request.output {
        case .jsonObject?:
            json.key("response_format"); json.beginObject(); json.member("type", "json_object"); json.endObject()
        case .jsonSchema(let name, let schema, let description)?:
            json.key("response_format"); json.beginObject(); json.member("type", "json_schema")
            json.key("json_schema"); json.beginObject(); json.member("name", name); json.memberIfPresent("description", description)
            json.member("schema", raw: schema); json.member("strict", true); json.endObject()
            json.endObject()
        case nil: break
        }
        if let effort = request.reasoning?.effort { json.member("reasoning_effort", effort) }
        json.memberIfPresent("user", request.user)
        if request.stream {
            json.member("stream", true)
            json.key("stream_options"); json.beginObject(); json.member("include_usage", true); json.endObject()
        }
        json.endObject()
        return json.bytes
    }

    // MARK: Answers

    static func finish(_ reason: String?) -> ChatFinish {
        switch reason {
        case "length"?: return .length
        case "tool_calls"?, "function_call"?: return .toolCalls
        case "content_filter"?: return .contentFilter
        default: return .stop
        }
    }

    static func reason(_ finish: ChatFinish) -> String {
        switch finish {
        case .stop, .stopSequence: return "stop"
        case .length: return "length"
        case .toolCalls: return "tool_calls"
        case .contentFilter: return "content_filter"
        }
    }

    static func usage(_ object: JSONMembers?) -> ChatUsage? {
        guard let object else { return nil }
        var usage = ChatUsage()
        usage.input = max(0, object["prompt_tokens"]?.int ?? 0)
        usage.output = max(0, object["completion_tokens"]?.int ?? 0)
        usage.cacheRead = max(0, object["prompt_tokens_details"]?.object?["cached_tokens"]?.int ?? 0)
        usage.reasoning = object["completion_tokens_details"]?.object?["reasoning_tokens"]?.int
        return usage
    }

    /// Reads a whole Chat Completions answer.
    static func readAnswer(_ body: [UInt8]) -> ChatAnswer? {
        guard let object = JSONMembers.document(body) else { return nil }
        var answer = ChatAnswer(id: object["id"]?.string ?? "chatcmpl", model: object["model"]?.string ?? "")
        let choice = object["choices"]?.elements?.first?.object
        if let message = choice?["message"]?.object {
            if let reasoning = message["reasoning_content"]?.string, !reasoning.isEmpty { answer.parts.append(.thinking(text: reasoning, signature: nil)) }
            if let text = message["content"]?.string, !text.isEmpty { answer.parts.append(.text(text)) }
            for call in message["tool_calls"]?.elements ?? [] {
                guard let call = call.object, let function = call["function"]?.object else { continue }
                answer.parts.append(.toolCall(id: call["id"]?.string ?? "call", name: function["name"]?.string ?? "",
                                              arguments: function["arguments"]?.string ?? "{}"))
            }
        }
        answer.finish = finish(choice?["finish_reason"]?.string)
        answer.usage = usage(object["usage"]?.object) ?? ChatUsage()
        return answer
    }

    /// Writes a whole Chat Completions answer.
    static func writeAnswer(_ answer: ChatAnswer, created: Int) -> [UInt8] {
        var json = JSONWriter()
        json.beginObject()
        json.member("id", answer.id)
        json.member("object", "chat.completion")
        json.member("created", created)
        json.member("model", answer.model)
        json.key("choices"); json.beginArray(); json.beginObject()
        json.member("index", 0)
        json.key("message"); json.beginObject()
        json.member("role", "assistant")
        let text = answer.parts.compactMap { if case .text(let t) = $0 { return t } else { return nil } }.joined()
        json.key("content")
        if text.isEmpty { json.null() } else { json.string(text) }
        json.key("refusal"); json.null()
        let calls = answer.parts.compactMap { part -> (String, String, String)? in
            if case .toolCall(let id, let name, let arguments) = part { return (id, name, arguments) } else { return nil }
        }
        if !calls.isEmpty {
            json.key("tool_calls"); json.beginArray()
            for (id, name, arguments) in calls {
                json.beginObject(); json.member("id", id); json.member("type", "function")
                json.key("function"); json.beginObject(); json.member("name", name); json.member("arguments", arguments); json.endObject()
                json.endObject()
            }
            json.endArray()
        }
        writeThinking(answer.parts, into: &json)
        json.endObject()
        json.key("logprobs"); json.null()
        json.member("finish_reason", reason(answer.finish))
        json.endObject(); json.endArray()
        json.key("usage"); writeUsage(answer.usage, into: &json)
        json.endObject()
        return json.bytes
    }

    /// Reasoning as OpenAI-shaped clients read it from other vendors: `reasoning_content` (the text) and
    /// `thinking_blocks` (each block with its signature, to be sent back on the next turn).
    static func writeThinking(_ parts: [ChatPart], into json: inout JSONWriter) {
        let thinking = parts.filter { if case .thinking = $0 { return true }; if case .redactedThinking = $0 { return true }; return false }
        guard !thinking.isEmpty else { return }
        let text = thinking.compactMap { if case .thinking(let t, _) = $0 { return t } else { return nil } }.joined()
        json.member("reasoning_content", text)
        json.key("thinking_blocks"); json.beginArray()
        for part in thinking {
            json.beginObject()
            switch part {
            case .thinking(let text, let signature):
                json.member("type", "thinking"); json.member("thinking", text); json.memberIfPresent("signature", signature)
            case .redactedThinking(let data):
                json.member("type", "redacted_thinking"); json.member("data", data)
            default: break
            }
            json.endObject()
        }
        json.endArray()
    }

    static func writeUsage(_ usage: ChatUsage, into json: inout JSONWriter) {
        json.beginObject()
        json.member("prompt_tokens", usage.input)
        json.member("completion_tokens", usage.output)
        json.member("total_tokens", usage.input.saturatingAdding(usage.output))
        json.key("prompt_tokens_details"); json.beginObject(); json.member("cached_tokens", usage.cacheRead); json.endObject()
        if let reasoning = usage.reasoning {
            json.key("completion_tokens_details"); json.beginObject(); json.member("reasoning_tokens", reasoning); json.endObject()
        }
        json.endObject()
    }

    /// An error in OpenAI's shape.
    static func writeError(status: Int, message: String, code: String?) -> [UInt8] {
        var json = JSONWriter()
        json.beginObject(); json.key("error"); json.beginObject()
        json.member("message", message)
        json.member("type", status == 429 ? "rate_limit_error" : status >= 500 ? "server_error" : status == 401 ? "authentication_error" : "invalid_request_error")
        json.key("param"); json.null()
        json.key("code"); if let code { json.string(code) } else { json.null() }
        json.endObject(); json.endObject()
        return json.bytes
    }
}

/// Reads an OpenAI Chat Completions stream's events.
struct OpenAIChatStreamReader: Sendable {
    private var started = false
    private var toolIndexes: [Int: Bool] = [:]
    private var finish: ChatFinish?
    private var usage: ChatUsage?
    private(set) var ended = false

    mutating func read(data: [UInt8], into events: inout [ChatEvent]) {
        if data.starts(with: Array("[DONE]".utf8)) {
            end(into: &events)
            return
        }
        guard let object = JSONMembers.document(data) else { return }
        if !started {
            started = true
            events.append(.start(id: object["id"]?.string ?? "chatcmpl", model: object["model"]?.string ?? ""))
        }
        if let choice = object["choices"]?.elements?.first?.object {
            if let delta = choice["delta"]?.object {
                if let reasoning = delta["reasoning_content"]?.string, !reasoning.isEmpty { events.append(.thinking(reasoning)) }
                if let text = delta["content"]?.string, !text.isEmpty { events.append(.text(text)) }
                for call in delta["tool_calls"]?.elements ?? [] {
                    guard let call = call.object else { continue }
                    let index = call["index"]?.int ?? 0
                    let function = call["function"]?.object
                    if toolIndexes[index] == nil {
                        toolIndexes[index] = true
                        events.append(.toolStart(id: call["id"]?.string ?? "call_\(index)", name: function?["name"]?.string ?? ""))
                    }
                    if let arguments = function?["arguments"]?.string, !arguments.isEmpty { events.append(.toolArguments(arguments)) }
                }
            }
            if let reason = choice["finish_reason"]?.string { finish = OpenAIChatWire.finish(reason) }
        }
        if let counted = OpenAIChatWire.usage(object["usage"]?.object) { usage = counted }
    }

    /// The stream ended (its `[DONE]`, or the body's end).
    mutating func end(into events: inout [ChatEvent]) {
        guard !ended else { return }
        ended = true
        events.append(.finish(finish ?? .stop))
        if let usage { events.append(.usage(usage)) }
    }
}

/// Writes an answer as an OpenAI Chat Completions stream.
struct OpenAIChatStreamWriter: Sendable {
    let includeUsage: Bool
    let created: Int
    private var id = "chatcmpl"
    private var model = ""
    private var toolCount = 0
    private var finish: ChatFinish = .stop
    private var usage: ChatUsage?

    init(includeUsage: Bool, created: Int) {
        self.includeUsage = includeUsage
        self.created = created
    }

    /// Every chunk's opening up to its delta (`{"id":…,"model":…,"choices":[{"index":0,"delta":`), made once the stream's
    /// id and model are known.
    private var opening: [UInt8] = []

    private mutating func makeOpening() {
        var json = JSONWriter(capacity: 160)
        json.beginObject()
        json.member("id", id); json.member("object", "chat.completion.chunk"); json.member("created", created); json.member("model", model)
        json.key("choices"); json.beginArray(); json.beginObject()
        json.member("index", 0)
        json.key("delta")
        opening = json.bytes
    }

    private static let openEnd = Array(#","finish_reason":null}]}"#.utf8)

    private mutating func chunk(_ out: inout [UInt8], finishReason: String? = nil, delta: (inout JSONWriter) -> Void) {
        if opening.isEmpty { makeOpening() }
        var json = JSONWriter(capacity: 64)
        json.beginObject(); delta(&json); json.endObject()
        out.append(contentsOf: "data: ".utf8)
        out.append(contentsOf: opening)
        out.append(contentsOf: json.bytes)
        if let finishReason {
            out.append(contentsOf: #","finish_reason":"#.utf8)
            var reason = JSONWriter(capacity: 24)
            reason.string(finishReason)
            out.append(contentsOf: reason.bytes)
            out.append(contentsOf: "}]}".utf8)
        } else {
            out.append(contentsOf: Self.openEnd)
        }
        out.append(contentsOf: [0x0A, 0x0A])
    }

    mutating func write(_ event: ChatEvent, into out: inout [UInt8]) {
        switch event {
        case .start(let id, let model):
            self.id = id
            self.model = model
            opening = []
            chunk(&out) { $0.member("role", "assistant"); $0.member("content", "") }
        case .text(let text):
            chunk(&out) { $0.member("content", text) }
        case .thinking(let text):
            chunk(&out) { $0.member("reasoning_content", text) }
        case .signature, .redactedThinking:
            break
        case .toolStart(let callID, let name):
            let index = toolCount
            toolCount += 1
            chunk(&out) { json in
                json.key("tool_calls"); json.beginArray(); json.beginObject()
                json.member("index", index); json.member("id", callID); json.member("type", "function")
                json.key("function"); json.beginObject(); json.member("name", name); json.member("arguments", ""); json.endObject()
                json.endObject(); json.endArray()
            }
        case .toolArguments(let arguments):
            let index = max(0, toolCount - 1)
            chunk(&out) { json in
                json.key("tool_calls"); json.beginArray(); json.beginObject()
                json.member("index", index)
                json.key("function"); json.beginObject(); json.member("arguments", arguments); json.endObject()
                json.endObject(); json.endArray()
            }
        case .finish(let finish): self.finish = finish
        case .usage(let usage): self.usage = usage
        }
    }

    mutating func end(into out: inout [UInt8]) {
        chunk(&out, finishReason: OpenAIChatWire.reason(finish)) { _ in }
        if includeUsage, let usage {
            var json = JSONWriter()
            json.beginObject()
            json.member("id", id); json.member("object", "chat.completion.chunk"); json.member("created", created); json.member("model", model)
            json.key("choices"); json.beginArray(); json.endArray()
            json.key("usage"); OpenAIChatWire.writeUsage(usage, into: &json)
            json.endObject()
            SSE.write(data: json.bytes, into: &out)
        }
        SSE.write(data: Array("[DONE]".utf8), into: &out)
    }
}

/// Server-sent events, as the chat APIs write them.
enum SSE {
    static func write(event: String? = nil, data: [UInt8], into out: inout [UInt8]) {
        if let event {
            out.append(contentsOf: "event: ".utf8)
            out.append(contentsOf: event.utf8)
            out.append(0x0A)
        }
        out.append(contentsOf: "data: ".utf8)
        out.append(contentsOf: data)
        out.append(contentsOf: [0x0A, 0x0A])
    }
}
