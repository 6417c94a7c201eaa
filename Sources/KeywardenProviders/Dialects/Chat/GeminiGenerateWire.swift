import Foundation
import KeywardenCore

/// Gemini's `generateContent` / `streamGenerateContent`, written (requests) and read (answers).
enum GeminiGenerateWire {
    /// The path of a call for `model`; `nil` when the model is not a plain Gemini model id (letters, digits, `.`, `-`,
    /// `_`): a model goes into the URL's path, where `/`, `:`, `?` or `#` would call another method or add a query.
    static func path(model: String, stream: Bool) -> String? {
        guard !model.isEmpty, model.utf8.count <= 200, model.utf8.allSatisfy({ byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2E || byte == 0x2D || byte == 0x5F
        }) else { return nil }
        return stream ? "/v1beta/models/\(model):streamGenerateContent?alt=sse" : "/v1beta/models/\(model):generateContent"
    }

    // MARK: Tool call ids

    /// Gemini names no call ids (and Gemini 3 wants each call's `thoughtSignature` back on the next turn): an id is
    /// made of the call's place and its signature, so both survive the caller's round trip without any state here.
    static func callID(index: Int, signature: String?) -> String {
        guard let signature, !signature.isEmpty else { return "call_g\(index)" }
        return "call_g\(index)_\(Base64URL.fromStandard(signature))"
    }

    /// The signature an id made by ``callID(index:signature:)`` carries.
    static func signature(inCallID id: String) -> String? {
        guard id.hasPrefix("call_g"), let underscore = id.dropFirst(6).firstIndex(of: "_") else { return nil }
        let text = String(id[id.index(after: underscore)...])
        return text.isEmpty ? nil : Base64URL.toStandard(text)
    }

    // MARK: Requests

    static func writeRequest(_ request: ChatRequest) throws(TranslationError) -> [UInt8] {
        var json = JSONWriter(capacity: 1024)
        // Tool results answer calls by id; Gemini's functionResponse names the function.
        var names: [String: String] = [:]
        for message in request.messages {
            for case .toolCall(let id, let name, _) in message.parts { names[id] = name }
        }
        json.beginObject()
        if !request.system.isEmpty {
            json.key("systemInstruction"); json.beginObject()
            json.key("parts"); json.beginArray(); json.beginObject(); json.member("text", request.system.joined(separator: "\n")); json.endObject(); json.endArray()
            json.endObject()
        }
        json.key("contents")
        json.beginArray()
        for (messageIndex, message) in request.messages.enumerated() {
            json.beginObject()
            json.member("role", message.role == .assistant ? "model" : "user")
            json.key("parts")
            json.beginArray()
            var pendingSignature: String?
            for (partIndex, part) in message.parts.enumerated() {
                let at = "messages[\(messageIndex)].content[\(partIndex)]"
                switch part {
                case .text(let text):
                    json.beginObject(); json.member("text", text); json.endObject()
                case .image(let source), .document(let source):
                    guard case .base64(let type, let data) = source else {
                        throw .unsupported("\(at) (a media URL)", "Gemini", "Gemini takes media inline: send it as base64 (a data: URL)")
                    }
                    json.beginObject(); json.key("inlineData"); json.beginObject(); json.member("mimeType", type); json.member("data", data); json.endObject(); json.endObject()
                case .toolCall(let id, let name, let arguments):
                    json.beginObject()
                    json.key("functionCall"); json.beginObject(); json.member("name", name)
                    json.key("args")
                    let bytes = Array(arguments.utf8)
                    if JSONObject.body(bytes) != nil { json.raw(bytes) } else { json.raw("{}") }
                    json.endObject()
                    if let signature = signature(inCallID: id) ?? pendingSignature { json.member("thoughtSignature", signature) }
                    pendingSignature = nil
                    json.endObject()
                case .toolResult(let id, let content, let isError):
                    json.beginObject()
                    json.key("functionResponse"); json.beginObject()
                    json.member("name", names[id] ?? id)
                    json.key("response"); json.beginObject()
                    let bytes = Array(content.utf8)
                    json.key(isError ? "error" : "result")
                    if JSONObject.body(bytes) != nil { json.raw(bytes) } else { json.string(content) }
                    json.endObject()
                    json.endObject(); json.endObject()
                case .thinking(_, let signature):
                    // Gemini does not take thought text back; its signature rides on the next call part.
                    pendingSignature = signature
                case .redactedThinking:
                    break
                }
            }
            json.endArray()
            json.endObject()
        }
        json.endArray()
        if !request.tools.isEmpty {
            json.key("tools"); json.beginArray(); json.beginObject()
            json.key("functionDeclarations"); json.beginArray()
            for tool in request.tools {
                json.beginObject()
                json.member("name", tool.name); json.memberIfPresent("description", tool.description)
                json.member("parametersJsonSchema", raw: tool.parameters)
                json.endObject()
            }
            json.endArray()
            json.endObject(); json.endArray()
        }
        if let choice = request.toolChoice {
            json.key("toolConfig"); json.beginObject(); json.key("functionCallingConfig"); json.beginObject()
            switch choice {
            case .auto: json.member("mode", "AUTO")
            case .none: json.member("mode", "NONE")
            case .required: json.member("mode", "ANY")
            case .tool(let name):
                json.member("mode", "ANY")
                json.key("allowedFunctionNames"); json.beginArray(); json.string(name); json.endArray()
            }
            json.endObject(); json.endObject()
        }
        json.key("generationConfig"); json.beginObject()
        json.memberIfPresent("maxOutputTokens", request.maxTokens)
        json.memberIfPresent("temperature", raw: request.temperature)
        json.memberIfPresent("topP", raw: request.topP)
        json.memberIfPresent("topK", raw: request.topK)
        if !request.stop.isEmpty {
            json.key("stopSequences"); json.beginArray(); request.stop.forEach { json.string($0) }; json.endArray()
        }
        switch request.output {
        case .jsonObject?: json.member("responseMimeType", "application/json")
        case .jsonSchema(_, let schema, _)?:
            json.member("responseMimeType", "application/json")
            json.member("responseJsonSchema", raw: schema)
        case nil: break
        }
        if let reasoning = request.reasoning {
            json.key("thinkingConfig"); json.beginObject()
            if let budget = reasoning.budget {
                json.member("thinkingBudget", budget); json.member("includeThoughts", true)
            } else {
                json.member("thinkingBudget", 0)
            }
            json.endObject()
        }
        json.endObject()
        json.endObject()
        return json.bytes
    }

    // MARK: Answers

    static func finish(_ reason: String?, calledTools: Bool) -> ChatFinish {
        switch reason {
        case "MAX_TOKENS"?: return .length
        case "SAFETY"?, "RECITATION"?, "BLOCKLIST"?, "PROHIBITED_CONTENT"?, "SPII"?, "IMAGE_SAFETY"?: return .contentFilter
        default: return calledTools ? .toolCalls : .stop
        }
    }

    static func usage(_ metadata: JSONMembers?) -> ChatUsage? {
        guard let metadata else { return nil }
        var usage = ChatUsage()
        usage.input = max(0, metadata["promptTokenCount"]?.int ?? 0)
        let thoughts = max(0, metadata["thoughtsTokenCount"]?.int ?? 0)
        usage.output = max(0, metadata["candidatesTokenCount"]?.int ?? 0).saturatingAdding(thoughts)
        usage.cacheRead = max(0, metadata["cachedContentTokenCount"]?.int ?? 0)
        if thoughts > 0 { usage.reasoning = thoughts }
        return usage
    }

    /// The parts of one response (whole, or one streamed piece) as events; `calls` numbers the tool calls so far.
    static func read(_ object: JSONMembers, calls: inout Int, into events: inout [ChatEvent]) -> (finish: String?, usage: ChatUsage?) {
        let candidate = object["candidates"]?.elements?.first?.object
        for part in candidate?["content"]?.object?["parts"]?.elements ?? [] {
            guard let part = part.object else { continue }
            let signature = part["thoughtSignature"]?.string
            if let call = part["functionCall"]?.object {
                events.append(.toolStart(id: call["id"]?.string ?? callID(index: calls, signature: signature), name: call["name"]?.string ?? ""))
                events.append(.toolArguments(call["args"]?.raw ?? "{}"))
                calls += 1
            } else if let text = part["text"]?.string {
                if part["thought"]?.bool == true {
                    events.append(.thinking(text))
                    if let signature { events.append(.signature(signature)) }
                } else if !text.isEmpty {
                    events.append(.text(text))
                }
            }
        }
        var finish = candidate?["finishReason"]?.string
        if candidate == nil, object["promptFeedback"]?.object?["blockReason"] != nil { finish = "SAFETY" }
        return (finish, usage(object["usageMetadata"]?.object))
    }

    static func readAnswer(_ body: [UInt8]) -> ChatAnswer? {
        guard let object = JSONMembers.document(body) else { return nil }
        var answer = ChatAnswer(id: object["responseId"]?.string ?? "gemini", model: object["modelVersion"]?.string ?? "")
        var events: [ChatEvent] = []
        var calls = 0
        let (finish, usage) = read(object, calls: &calls, into: &events)
        var arguments: [String] = []
        for event in events {
            switch event {
            case .text(let text): answer.parts.append(.text(text))
            case .thinking(let text): answer.parts.append(.thinking(text: text, signature: nil))
            case .signature(let signature):
                if case .thinking(let text, _)? = answer.parts.last { answer.parts[answer.parts.count - 1] = .thinking(text: text, signature: signature) }
            case .toolStart(let id, let name): answer.parts.append(.toolCall(id: id, name: name, arguments: ""))
            case .toolArguments(let json):
                arguments.append(json)
                if case .toolCall(let id, let name, let so)? = answer.parts.last { answer.parts[answer.parts.count - 1] = .toolCall(id: id, name: name, arguments: so + json) }
            default: break
            }
        }
        answer.finish = self.finish(finish, calledTools: calls > 0)
        answer.usage = usage ?? ChatUsage()
        return answer
    }
}

/// Reads a Gemini `streamGenerateContent?alt=sse` stream's events.
struct GeminiStreamReader: Sendable {
    private var started = false
    private var calls = 0
    private var finish: String?
    private var usage: ChatUsage?
    private(set) var ended = false

    mutating func read(data: [UInt8], into events: inout [ChatEvent]) {
        guard let object = JSONMembers.document(data) else { return }
        if !started {
            started = true
            events.append(.start(id: object["responseId"]?.string ?? "gemini", model: object["modelVersion"]?.string ?? ""))
        }
        let read = GeminiGenerateWire.read(object, calls: &calls, into: &events)
        if let reason = read.finish { finish = reason }
        if let counted = read.usage { usage = counted }
    }

    mutating func end(into events: inout [ChatEvent]) {
        guard !ended else { return }
        ended = true
        events.append(.finish(GeminiGenerateWire.finish(finish, calledTools: calls > 0)))
        if let usage { events.append(.usage(usage)) }
    }
}
