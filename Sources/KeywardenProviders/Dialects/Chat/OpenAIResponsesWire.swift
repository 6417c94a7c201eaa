import Foundation

/// OpenAI's Responses API as a caller's shape: requests read, answers (whole and streamed) written.
enum OpenAIResponsesWire {
    static let requestMembers: Set<String> = [
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens", "temperature", "top_p",
        "text", "reasoning", "stream", "user", "store", "truncation",
    ]

    /// Reads a Responses request; a member that cannot travel to `target` is refused by name.
    static func readRequest(_ body: [UInt8], target: String) throws(TranslationError) -> ChatRequest {
        guard let object = JSONMembers.document(body) else { throw .invalid("body", "send one JSON object, as the Responses API expects.") }
        for name in object.names.sorted() where !requestMembers.contains(name) && object.has(name) {
            throw .unsupported(name, target, name == "previous_response_id" ? "a translated call keeps no state: send the whole conversation in input" : nil)
        }
        // Keywarden keeps no responses: a call that asks for one to be stored, or truncated by the vendor, cannot be served.
        if object["store"]?.bool == true { throw .unsupported("store", target, "a translated response is not stored; send store: false") }
        if let truncation = object["truncation"]?.string, truncation != "disabled" { throw .unsupported("truncation", target) }
        var request = ChatRequest()
        request.model = object["model"]?.string
        request.stream = object["stream"]?.bool ?? false
        // A Responses stream always ends with its usage (`response.completed`).
        request.streamIncludesUsage = true
        request.maxTokens = object["max_output_tokens"]?.int
        request.temperature = object["temperature"].flatMap { $0.isNumber ? $0.raw : nil }
        request.topP = object["top_p"].flatMap { $0.isNumber ? $0.raw : nil }
        request.user = object["user"]?.string
        request.parallelToolCalls = object["parallel_tool_calls"]?.bool
        if let instructions = object["instructions"]?.string { request.system.append(instructions) }
        if let reasoning = object["reasoning"]?.object, let effort = reasoning["effort"]?.string {
            request.reasoning = effort == "none" ? .disabled : .effort(effort)
        }
        request.tools = try OpenAIChatWire.functionTools(object["tools"], target: target) { $0 }
        if let choice = object["tool_choice"] {
            request.toolChoice = try OpenAIChatWire.toolChoice(choice, target: target) { $0["type"]?.string == "function" ? $0["name"]?.string : nil }
        }
        if let format = object["text"]?.object?["format"]?.object {
            switch format["type"]?.string {
            case "text"?, nil: break
            case "json_object"?: request.output = .jsonObject
            case "json_schema"?:
                guard let schema = format["schema"] else { throw .invalid("text.format.schema", "give the schema") }
                request.output = .jsonSchema(name: format["name"]?.string ?? "response", schema: schema.raw, description: format["description"]?.string)
            default: throw .unsupported("text.format.type", target)
            }
        }
        guard let input = object["input"] else { throw .invalid("input", "give the input.") }
        if let text = input.string {
            request.append(.user, [.text(text)])
            return request
        }
        guard let items = input.elements else { throw .invalid("input", "a string or an array of items.") }
        for (index, item) in items.enumerated() {
            try readItem(item, at: "input[\(index)]", into: &request, target: target)
        }
        return request
    }

    private static func readItem(_ value: JSONValue, at path: String, into request: inout ChatRequest, target: String) throws(TranslationError) {
        guard let item = value.object else { throw .invalid(path, "an item is an object.") }
        switch item["type"]?.string ?? "message" {
        case "message":
            let role = item["role"]?.string ?? "user"
            let content = item["content"]
            if role == "system" || role == "developer" {
                request.system.append(try parts(of: content, at: "\(path).content", target: target).compactMap { if case .text(let t) = $0 { return t } else { return nil } }.joined(separator: "\n"))
                return
            }
            guard let chatRole = ChatMessage.Role(rawValue: role) else { throw .unsupported("\(path).role (\(role))", target) }
            request.append(chatRole, try parts(of: content, at: "\(path).content", target: target))
        case "function_call":
            guard let id = item["call_id"]?.string, let name = item["name"]?.string else { throw .invalid(path, "a function_call has a call_id and a name.") }
            request.append(.assistant, [.toolCall(id: id, name: name, arguments: item["arguments"]?.string ?? "{}")])
        case "function_call_output":
            guard let id = item["call_id"]?.string else { throw .invalid(path, "a function_call_output names its call_id.") }
            let output = item["output"]
            request.append(.user, [.toolResult(id: id, content: output?.string ?? output?.raw ?? "", isError: false)])
        case "reasoning":
            let summary = (item["summary"]?.elements ?? []).compactMap { $0.object?["text"]?.string }.joined(separator: "\n")
            request.append(.assistant, [.thinking(text: summary, signature: item["encrypted_content"]?.string)])
        case let other:
            throw .unsupported("\(path).type (\(other))", target)
        }
    }

    private static func parts(of content: JSONValue?, at path: String, target: String) throws(TranslationError) -> [ChatPart] {
        guard let content else { return [] }
        if let text = content.string { return [.text(text)] }
        guard let elements = content.elements else { throw .invalid(path, "content is a string or an array of parts.") }
        var parts: [ChatPart] = []
        for (index, element) in elements.enumerated() {
            guard let part = element.object else { throw .invalid("\(path)[\(index)]", "a part is an object.") }
            switch part["type"]?.string {
            case "input_text"?, "output_text"?, "text"?: parts.append(.text(part["text"]?.string ?? ""))
            case "input_image"?:
                guard let url = part["image_url"]?.string else {
                    throw .unsupported("\(path)[\(index)].file_id", target, "give the image as image_url (a data: URL or an http URL)")
                }
                parts.append(.image(.fromURL(url)))
            case "input_file"?:
                guard let data = part["file_data"]?.string, case .base64(let type, let base64) = MediaSource.fromURL(data) else {
                    throw .unsupported("\(path)[\(index)]", target, "only a file given inline as a data: URL translates")
                }
                parts.append(.document(.base64(mediaType: type, data: base64)))
            default:
                throw .unsupported("\(path)[\(index)].type (\(part["type"]?.string ?? "?"))", target)
            }
        }
        return parts
    }

    // MARK: Answers

    static func writeUsage(_ usage: ChatUsage, into json: inout JSONWriter) {
        json.beginObject()
        json.member("input_tokens", usage.input)
        json.key("input_tokens_details"); json.beginObject(); json.member("cached_tokens", usage.cacheRead); json.endObject()
        json.member("output_tokens", usage.output)
        json.key("output_tokens_details"); json.beginObject(); json.member("reasoning_tokens", usage.reasoning ?? 0); json.endObject()
        json.member("total_tokens", usage.input.saturatingAdding(usage.output))
        json.endObject()
    }

    /// One output item, as the answer and `response.output_item.done` carry it.
    enum Item: Sendable {
        case message(id: String, text: String)
        case functionCall(id: String, callID: String, name: String, arguments: String)
        case reasoning(id: String, text: String, signature: String?)

        func write(into json: inout JSONWriter, done: Bool = true) {
            json.beginObject()
            switch self {
            case .message(let id, let text):
                json.member("type", "message"); json.member("id", id); json.member("status", done ? "completed" : "in_progress"); json.member("role", "assistant")
                json.key("content"); json.beginArray()
                if done { writeTextPart(text, into: &json) }
                json.endArray()
            case .functionCall(let id, let callID, let name, let arguments):
                json.member("type", "function_call"); json.member("id", id); json.member("call_id", callID); json.member("name", name)
                json.member("arguments", done ? arguments : ""); json.member("status", done ? "completed" : "in_progress")
            case .reasoning(let id, let text, let signature):
                json.member("type", "reasoning"); json.member("id", id)
                json.key("summary"); json.beginArray()
                if done, !text.isEmpty { json.beginObject(); json.member("type", "summary_text"); json.member("text", text); json.endObject() }
                json.endArray()
                if done, let signature { json.member("encrypted_content", signature) }
            }
            json.endObject()
        }
    }

    static func writeTextPart(_ text: String, into json: inout JSONWriter) {
        json.beginObject(); json.member("type", "output_text"); json.member("text", text)
        json.key("annotations"); json.beginArray(); json.endArray()
        json.endObject()
    }

    /// The items of a whole answer.
    static func items(of answer: ChatAnswer, id: String) -> [Item] {
        var items: [Item] = []
        var text = ""
        for (index, part) in answer.parts.enumerated() {
            switch part {
            case .thinking(let thought, let signature): items.append(.reasoning(id: "rs_\(id)_\(index)", text: thought, signature: signature))
            case .text(let piece): text += piece
            case .toolCall(let callID, let name, let arguments): items.append(.functionCall(id: "fc_\(id)_\(index)", callID: callID, name: name, arguments: arguments))
            default: break
            }
        }
        if !text.isEmpty { items.insert(.message(id: "msg_\(id)", text: text), at: items.firstIndex { if case .functionCall = $0 { return true } else { return false } } ?? items.count) }
        return items
    }

    /// The response object: whole, or as `response.created` (`status` in_progress, no output yet) and
    /// `response.completed` carry it.
    static func writeResponse(id: String, model: String, created: Int, status: String, items: [Item], finish: ChatFinish?, usage: ChatUsage?,
                              into json: inout JSONWriter) {
        json.beginObject()
        json.member("id", id); json.member("object", "response"); json.member("created_at", created)
        let incomplete = finish == .length
        json.member("status", incomplete && status == "completed" ? "incomplete" : status)
        json.key("error"); json.null()
        json.key("incomplete_details")
        if incomplete, status == "completed" { json.beginObject(); json.member("reason", "max_output_tokens"); json.endObject() } else { json.null() }
        json.member("model", model)
        json.key("output"); json.beginArray(); for item in items { item.write(into: &json) }; json.endArray()
        json.member("parallel_tool_calls", true)
        json.member("tool_choice", "auto")
        json.key("tools"); json.beginArray(); json.endArray()
        json.key("usage"); if let usage { writeUsage(usage, into: &json) } else { json.null() }
        json.endObject()
    }

    static func writeAnswer(_ answer: ChatAnswer, created: Int) -> [UInt8] {
        let id = answer.id.hasPrefix("resp_") ? answer.id : "resp_" + answer.id
        var json = JSONWriter()
        writeResponse(id: id, model: answer.model, created: created, status: "completed", items: items(of: answer, id: id),
                      finish: answer.finish, usage: answer.usage, into: &json)
        return json.bytes
    }
}

/// Writes an answer as a Responses API stream: each item opened, its deltas, its end, then `response.completed`.
struct OpenAIResponsesStreamWriter: Sendable {
    let created: Int
    private var id = "resp"
    private var model = ""
    private var sequence = 0
    private var items: [OpenAIResponsesWire.Item] = []
    /// The item open now (its text is kept apart, in ``openText``, appended in place: no copy per delta).
    private var open: OpenAIResponsesWire.Item?
    /// What the open item has gathered: its text, thinking or arguments.
    private var openText = ""
    private var openSignature: String?
    private var finish: ChatFinish = .stop
    private var usage: ChatUsage?

    init(created: Int) { self.created = created }

    private mutating func event(_ type: String, _ out: inout [UInt8], body: (inout JSONWriter) -> Void) {
        var json = JSONWriter(capacity: 256)
        json.beginObject()
        json.member("type", type)
        json.member("sequence_number", sequence)
        sequence += 1
        body(&json)
        json.endObject()
        SSE.write(event: type, data: json.bytes, into: &out)
    }

    private var outputIndex: Int { items.count }

    /// The open item with what it gathered.
    private var gathered: OpenAIResponsesWire.Item? {
        switch open {
        case .message(let id, _)?: return .message(id: id, text: openText)
        case .functionCall(let id, let callID, let name, _)?: return .functionCall(id: id, callID: callID, name: name, arguments: openText)
        case .reasoning(let id, _, _)?: return .reasoning(id: id, text: openText, signature: openSignature)
        case nil: return nil
        }
    }

    private mutating func close(_ out: inout [UInt8]) {
        guard let item = gathered else { return }
        let index = outputIndex
        switch item {
        case .message(let itemID, let text):
            event("response.output_text.done", &out) { json in
                json.member("item_id", itemID); json.member("output_index", index); json.member("content_index", 0); json.member("text", text)
            }
            event("response.content_part.done", &out) { json in
                json.member("item_id", itemID); json.member("output_index", index); json.member("content_index", 0)
                json.key("part"); OpenAIResponsesWire.writeTextPart(text, into: &json)
            }
        case .functionCall(let itemID, _, _, let arguments):
            event("response.function_call_arguments.done", &out) { json in
                json.member("item_id", itemID); json.member("output_index", index); json.member("arguments", arguments)
            }
        case .reasoning(let itemID, let text, _):
            event("response.reasoning_summary_text.done", &out) { json in
                json.member("item_id", itemID); json.member("output_index", index); json.member("summary_index", 0); json.member("text", text)
            }
        }
        event("response.output_item.done", &out) { json in
            json.member("output_index", index)
            json.key("item"); item.write(into: &json)
        }
        items.append(item)
        open = nil
        openText = ""
        openSignature = nil
    }

    private mutating func begin(_ item: OpenAIResponsesWire.Item, _ out: inout [UInt8]) {
        close(&out)
        open = item
        openText = ""
        openSignature = nil
        let index = outputIndex
        event("response.output_item.added", &out) { json in
            json.member("output_index", index)
            json.key("item"); item.write(into: &json, done: false)
        }
        switch item {
        case .message(let itemID, _):
            event("response.content_part.added", &out) { json in
                json.member("item_id", itemID); json.member("output_index", index); json.member("content_index", 0)
                json.key("part"); OpenAIResponsesWire.writeTextPart("", into: &json)
            }
        case .reasoning(let itemID, _, _):
            event("response.reasoning_summary_part.added", &out) { json in
                json.member("item_id", itemID); json.member("output_index", index); json.member("summary_index", 0)
                json.key("part"); json.beginObject(); json.member("type", "summary_text"); json.member("text", ""); json.endObject()
            }
        case .functionCall:
            break
        }
    }

    mutating func write(_ event: ChatEvent, into out: inout [UInt8]) {
        switch event {
        case .start(let vendorID, let model):
            id = vendorID.hasPrefix("resp_") ? vendorID : "resp_" + vendorID
            self.model = model
            let (id, created) = (id, created)
            self.event("response.created", &out) { json in
                json.key("response")
                OpenAIResponsesWire.writeResponse(id: id, model: model, created: created, status: "in_progress", items: [], finish: nil, usage: nil, into: &json)
            }
        case .text(let text):
            if case .message? = open {} else { begin(.message(id: "msg_\(id)_\(outputIndex)", text: ""), &out) }
            openText += text
            guard case .message(let itemID, _)? = open else { return }
            let index = outputIndex
            self.event("response.output_text.delta", &out) { json in
                json.member("item_id", itemID); json.member("output_index", index); json.member("content_index", 0); json.member("delta", text)
            }
        case .thinking(let text):
            if case .reasoning? = open {} else { begin(.reasoning(id: "rs_\(id)_\(outputIndex)", text: "", signature: nil), &out) }
            openText += text
            guard case .reasoning(let itemID, _, _)? = open else { return }
            let index = outputIndex
            self.event("response.reasoning_summary_text.delta", &out) { json in
                json.member("item_id", itemID); json.member("output_index", index); json.member("summary_index", 0); json.member("delta", text)
            }
        case .signature(let signature):
            if case .reasoning? = open { openSignature = (openSignature ?? "") + signature }
        case .redactedThinking:
            break
        case .toolStart(let callID, let name):
            begin(.functionCall(id: "fc_\(id)_\(outputIndex)", callID: callID, name: name, arguments: ""), &out)
        case .toolArguments(let arguments):
            guard case .functionCall(let itemID, _, _, _)? = open else { return }
            openText += arguments
            let index = outputIndex
            self.event("response.function_call_arguments.delta", &out) { json in
                json.member("item_id", itemID); json.member("output_index", index); json.member("delta", arguments)
            }
        case .finish(let finish): self.finish = finish
        case .usage(let usage): self.usage = usage
        }
    }

    mutating func end(into out: inout [UInt8]) {
        close(&out)
        let (id, model, created, items, finish, usage) = (id, model, created, items, finish, usage ?? ChatUsage())
        event(finish == .length ? "response.incomplete" : "response.completed", &out) { json in
            json.key("response")
            OpenAIResponsesWire.writeResponse(id: id, model: model, created: created, status: "completed", items: items, finish: finish, usage: usage, into: &json)
        }
    }
}
