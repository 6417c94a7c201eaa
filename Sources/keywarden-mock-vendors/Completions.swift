import Foundation
import Hummingbird
import NIOCore

/// The vendors' generation calls: OpenAI-shaped chat completions (every OpenAI-compatible vendor, and
/// Anthropic's and Gemini's compatibility endpoints), Anthropic messages, Gemini generateContent and
/// ElevenLabs text-to-speech, each plain or streamed (SSE) with usage where the vendor puts it.
///
/// Token counts are deterministic: input = characters of the prompt / 4 (at least 1), output = words of
/// the reply, so tests can compare what Keywarden metered with what the mock said (a tool call's output is
/// the characters of its name and arguments / 4, at least 1; thinking adds the 5 words of its text).
///
/// Like the real vendors, a request the vendor would refuse is refused with the vendor's own 400 body
/// (Validation.swift); tools are answered with a tool call (arguments built from the tool's schema), a tool's
/// result with "The tool said: …", and thinking with a thinking block or thought part first.
extension MockVendor {
    /// The answer to a generation call, or `nil` when `path` is not one.
    func generation(method: String, path: String, query: [String: String], body: ByteBuffer, key: String) -> Response? {
        guard method == "POST" else { return nil }
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
        // The body with its members in order (for the schemas' properties), read only when a schema is answered.
        let ordered = { OrderedJSON(parsing: Array(body.readableBytesView)) ?? OrderedJSON(any: object) }
        let midstream = key.contains("midstream")
        if path.hasSuffix("/chat/completions") {
            return chatCompletion(object, ordered: ordered, midstream: midstream)
        }
        if family == .openai || family == .azureOpenAI, path.hasSuffix("/v1/responses") {
            return openAIResponse(object, midstream: midstream)
        }
        if family == .anthropic, path == "/v1/messages" {
            return anthropicMessage(object, ordered: ordered, midstream: midstream)
        }
        if family == .gemini, path.hasPrefix("/v1beta/models/"), path.contains(":") {
            let model = String(path.dropFirst("/v1beta/models/".count).prefix { $0 != ":" })
            return geminiContent(object, ordered: ordered, model: model, stream: path.hasSuffix(":streamGenerateContent"), sse: query["alt"] == "sse",
                                 midstream: midstream)
        }
        if family == .elevenlabs, path.hasPrefix("/v1/text-to-speech/") {
            let text = object["text"] as? String ?? ""
            var audio = ByteBuffer(string: "ID3")
            for _ in 0..<max(1, text.count / 8) { audio.writeString("\u{FF}\u{FB}mock-frame") }
            return Response(status: .ok, headers: [.contentType: "audio/mpeg", .init("character-cost")!: "\(text.count)"], body: .init(byteBuffer: audio))
        }
        return nil
    }

    /// The reply text and token counts for a request's messages.
    func reply(_ object: [String: Any]) -> (text: String, words: [String], input: Int, output: Int) {
        var characters = 0
        for message in object["messages"] as? [[String: Any]] ?? [] {
            if let text = message["content"] as? String { characters += text.count }
            for part in message["content"] as? [[String: Any]] ?? [] {
                characters += (part["text"] as? String)?.count ?? 0
                // Anthropic's tool results: a string, or text blocks.
                guard part["type"] as? String == "tool_result" else { continue }
                if let text = part["content"] as? String { characters += text.count }
                for inner in part["content"] as? [[String: Any]] ?? [] { characters += (inner["text"] as? String)?.count ?? 0 }
            }
        }
        if let system = object["system"] as? String { characters += system.count }
        for block in object["system"] as? [[String: Any]] ?? [] { characters += (block["text"] as? String)?.count ?? 0 }
        for content in object["contents"] as? [[String: Any]] ?? [] {
            for part in content["parts"] as? [[String: Any]] ?? [] { characters += (part["text"] as? String)?.count ?? 0 }
        }
        let text = "Hello from the \(name) mock."
        let words = text.split(separator: " ").map(String.init)
        return (text, words, max(1, characters / 4), words.count)
    }

    // MARK: What is answered

    static let thought = "Let me think about this."
    /// The words of ``thought``, counted as thinking tokens.
    static let thoughtTokens = 5

    static func randomDigits() -> Int { Int.random(in: 100_000...999_999) }

    /// A reply text's output tokens: its words.
    static func outputTokens(text: String) -> Int { text.split(separator: " ").count }

    /// A tool call's output tokens: the characters of its name and arguments / 4, at least 1.
    static func outputTokens(tool name: String, arguments: String) -> Int { max(1, (name.count + arguments.count) / 4) }

    /// A text as streamed: word by word (each word after the first with its space), or a text without spaces
    /// (a JSON answer) in two or three pieces.
    static func pieces(_ text: String) -> [String] {
        let words = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        if words.count > 1 { return words.enumerated().map { $0.offset == 0 ? $0.element : " " + $0.element } }
        return chunks(text)
    }

    /// `text` cut in two or three pieces (one when it is shorter than two characters).
    static func chunks(_ text: String) -> [String] {
        let characters = Array(text)
        guard characters.count >= 2 else { return [text] }
        let size = max(1, (characters.count + 2) / 3)
        return stride(from: 0, to: characters.count, by: size).map { String(characters[$0..<min($0 + size, characters.count)]) }
    }

    // MARK: OpenAI-shaped chat completions

    func chatCompletion(_ object: [String: Any], ordered: () -> OrderedJSON, midstream: Bool) -> Response {
        // Like OpenAI: a request without a model is refused before anything is generated.
        guard let model = object["model"] as? String else {
            return json(400, ["error": ["message": "you must provide a model parameter", "type": "invalid_request_error",
                                        "param": NSNull(), "code": NSNull()]])
        }
        if let refusal = OpenAIRules.refusal(object) {
            return json(400, ["error": ["message": refusal.message, "type": "invalid_request_error", "param": refusal.param, "code": NSNull()]], raw: [:])
        }
        var (text, _, input, _) = reply(object)
        let id = "chatcmpl-mock\(Self.randomDigits())"

        // Tools: the forced one, else the first; `none` keeps them unused.
        let tools = (JSONRead.array(object["tools"]) ?? []).map { JSONRead.object(JSONRead.object($0)?["function"])?["name"] as? String ?? "" }
        let choice = object["tool_choice"]
        let choiceMode = choice as? String
        let forced = JSONRead.object(JSONRead.object(choice)?["function"])?["name"] as? String
        let messages = JSONRead.array(object["messages"]) ?? []
        let last = JSONRead.object(messages.last)
        let answeringTool = last?["role"] as? String == "tool"
        var call: (id: String, name: String, arguments: String)?
        var output: Int
        if !tools.isEmpty, choiceMode != "none", !answeringTool || forced != nil || choiceMode == "required" {
            let name = forced ?? tools[0]
            let index = tools.firstIndex(of: name) ?? 0
            let arguments = SchemaSample.object(ordered()["tools"]?[index]?["function"]?["parameters"])
            call = ("call_mock\(Self.randomDigits())", name, arguments)
            output = Self.outputTokens(tool: name, arguments: arguments)
        } else {
            let format = JSONRead.object(object["response_format"])
            if format?["type"] as? String == "json_schema" {
                // A structured output (also after a tool's result: the final answer keeps the asked shape).
                text = SchemaSample.object(ordered()["response_format"]?["json_schema"]?["schema"])
            } else if answeringTool {
                var content = last?["content"] as? String ?? ""
                if let parts = JSONRead.array(last?["content"]) {
                    content = parts.compactMap { JSONRead.object($0)?["text"] as? String }.joined()
                }
                text = "The tool said: \(content)"
            }
            output = Self.outputTokens(text: text)
        }
        let usage: [String: Any] = ["prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output]
        let finish = call == nil ? "stop" : "tool_calls"
        guard object["stream"] as? Bool == true else {
            var message: [String: Any] = ["role": "assistant", "content": text]
            if let call {
                message["content"] = NSNull()
                message["tool_calls"] = [["id": call.id, "type": "function", "function": ["name": call.name, "arguments": call.arguments]]]
            }
            return json(200, [
                "id": id, "object": "chat.completion", "created": 1_763_800_000, "model": model,
                "choices": [["index": 0, "message": message, "finish_reason": finish, "logprobs": NSNull()]],
                "usage": usage, "system_fingerprint": "fp_mock",
            ])
        }
        let includeUsage = (object["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true
        var events: [[String: Any]] = []
        if let call {
            // Like OpenAI: the call's index, id, type and name first (arguments ""), then the arguments in pieces.
            events.append(chunk(id, model, delta: ["role": "assistant", "content": NSNull(), "tool_calls": [[
                "index": 0, "id": call.id, "type": "function", "function": ["name": call.name, "arguments": ""],
            ]]], finish: nil))
            for piece in Self.chunks(call.arguments) {
                events.append(chunk(id, model, delta: ["tool_calls": [["index": 0, "function": ["arguments": piece]]]], finish: nil))
            }
        } else {
            events.append(chunk(id, model, delta: ["role": "assistant", "content": ""], finish: nil))
            for piece in Self.pieces(text) {
                events.append(chunk(id, model, delta: ["content": piece], finish: nil))
            }
        }
        events.append(chunk(id, model, delta: [:], finish: finish))
        if includeUsage {
            events.append(["id": id, "object": "chat.completion.chunk", "created": 1_763_800_000, "model": model, "choices": [], "usage": usage])
        }
        var lines = events.map { "data: \(serialize($0))\n\n" }
        lines.append("data: [DONE]\n\n")
        return sse(lines, midstream: midstream)
    }

    func chunk(_ id: String, _ model: String, delta: [String: Any], finish: String?) -> [String: Any] {
        ["id": id, "object": "chat.completion.chunk", "created": 1_763_800_000, "model": model,
         "choices": [["index": 0, "delta": delta, "finish_reason": finish as Any? ?? NSNull()]]]
    }

    // MARK: Anthropic messages

    func anthropicMessage(_ object: [String: Any], ordered: () -> OrderedJSON, midstream: Bool) -> Response {
        // Like Anthropic: model and max_tokens are required fields, and the rest is checked as the API does.
        if let problem = AnthropicRules.refusal(object) {
            return json(400, ["type": "error", "error": ["type": "invalid_request_error", "message": problem]], raw: [:])
        }
        let model = object["model"] as? String ?? ""
        var (text, _, input, _) = reply(object)
        let id = "msg_mock\(Self.randomDigits())"

        let tools = (JSONRead.array(object["tools"]) ?? []).compactMap(JSONRead.object)
        let choice = JSONRead.object(object["tool_choice"])
        let choiceType = choice?["type"] as? String
        let messages = JSONRead.array(object["messages"]) ?? []
        let lastBlocks = (JSONRead.array(JSONRead.object(messages.last)?["content"]) ?? []).compactMap(JSONRead.object)
        let results = lastBlocks.filter { $0["type"] as? String == "tool_result" }
        let thinking = JSONRead.object(object["thinking"])?["type"] as? String == "enabled"

        var call: (id: String, name: String, input: String)?
        var output: Int
        let forces = choiceType == "any" || choiceType == "tool"
        if !tools.isEmpty, choiceType != "none", results.isEmpty || forces {
            // The forced tool, else the first tool of the caller's own (one with an input_schema).
            let index = choiceType == "tool" ? tools.firstIndex { $0["name"] as? String == choice?["name"] as? String } ?? 0
                : tools.firstIndex { $0["input_schema"] != nil } ?? 0
            let name = tools[index]["name"] as? String ?? ""
            let input = SchemaSample.object(ordered()["tools"]?[index]?["input_schema"])
            call = ("toolu_mock\(Self.randomDigits())", name, input)
            output = Self.outputTokens(tool: name, arguments: input)
        } else if let result = results.first {
            var content = result["content"] as? String ?? ""
            if let blocks = JSONRead.array(result["content"]) {
                content = blocks.compactMap { JSONRead.object($0) }.filter { $0["type"] as? String == "text" }.compactMap { $0["text"] as? String }.joined()
            }
            text = "The tool said: \(content)"
            output = Self.outputTokens(text: text)
        } else {
            output = Self.outputTokens(text: text)
        }
        if thinking { output += Self.thoughtTokens }
        let signature = "sig-mock-\(Self.randomDigits())"
        let stopReason = call == nil ? "end_turn" : "tool_use"
        let inputMarker = "@@mock-raw-tool-input@@"

        guard object["stream"] as? Bool == true else {
            var content: [[String: Any]] = []
            if thinking { content.append(["type": "thinking", "thinking": Self.thought, "signature": signature]) }
            if let call {
                content.append(["type": "tool_use", "id": call.id, "name": call.name, "input": inputMarker])
            } else {
                content.append(["type": "text", "text": text])
            }
            let message: [String: Any] = [
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": stopReason, "stop_sequence": NSNull(),
                "usage": ["input_tokens": input, "output_tokens": output],
            ]
            return call.map { json(200, message, raw: [inputMarker: $0.input]) } ?? json(200, message)
        }
        var events: [(String, [String: Any])] = [
            ("message_start", ["type": "message_start", "message": [
                "id": id, "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": NSNull(),
                "stop_sequence": NSNull(), "usage": ["input_tokens": input, "output_tokens": 1],
            ]]),
        ]
        // Each block: its start (the ping after the first, as Anthropic sends it), its deltas, its stop.
        var blocks: [(start: [String: Any], deltas: [[String: Any]])] = []
        if thinking {
            blocks.append((["type": "thinking", "thinking": ""],
                           Self.pieces(Self.thought).map { ["type": "thinking_delta", "thinking": $0] } + [["type": "signature_delta", "signature": signature]]))
        }
        if let call {
            blocks.append((["type": "tool_use", "id": call.id, "name": call.name, "input": [String: Any]()],
                           Self.chunks(call.input).map { ["type": "input_json_delta", "partial_json": $0] }))
        } else {
            blocks.append((["type": "text", "text": ""], Self.pieces(text).map { ["type": "text_delta", "text": $0] }))
        }
        for (index, block) in blocks.enumerated() {
            events.append(("content_block_start", ["type": "content_block_start", "index": index, "content_block": block.start]))
            if index == 0 { events.append(("ping", ["type": "ping"])) }
            for delta in block.deltas {
                events.append(("content_block_delta", ["type": "content_block_delta", "index": index, "delta": delta]))
            }
            events.append(("content_block_stop", ["type": "content_block_stop", "index": index]))
        }
        events.append(("message_delta", ["type": "message_delta", "delta": ["stop_reason": stopReason, "stop_sequence": NSNull()], "usage": ["output_tokens": output]]))
        events.append(("message_stop", ["type": "message_stop"]))
        return sse(events.map { "event: \($0.0)\ndata: \(serialize($0.1))\n\n" }, midstream: midstream)
    }

    // MARK: Gemini generateContent

    func geminiContent(_ object: [String: Any], ordered: () -> OrderedJSON, model: String, stream: Bool, sse useSSE: Bool, midstream: Bool) -> Response {
        if let problem = GeminiRules.refusal(object) {
            return json(400, ["error": ["code": 400, "message": problem, "status": "INVALID_ARGUMENT"]], raw: [:])
        }
        var (text, _, input, _) = reply(object)
        var output: Int
        let config = JSONRead.object(JSONRead.either(object, "generationConfig"))
        let thoughts = JSONRead.bool(JSONRead.either(JSONRead.object(JSONRead.either(config, "thinkingConfig")), "includeThoughts")) == true
        let calling = JSONRead.object(JSONRead.either(JSONRead.object(JSONRead.either(object, "toolConfig")), "functionCallingConfig"))
        let mode = (calling?["mode"] as? String)?.uppercased()
        let allowed = (JSONRead.array(JSONRead.either(calling, "allowedFunctionNames")) ?? []).compactMap { $0 as? String }
        let contents = JSONRead.array(object["contents"]) ?? []
        let lastParts = (JSONRead.array(JSONRead.object(contents.last)?["parts"]) ?? []).compactMap(JSONRead.object)
        let responseIndex = lastParts.firstIndex { JSONRead.either($0, "functionResponse") != nil }

        // The declared functions, each with its schema (in order).
        var declarations: [(name: String, schema: OrderedJSON?)] = []
        let hasDeclarations = (JSONRead.array(object["tools"]) ?? []).contains { JSONRead.array(JSONRead.either(JSONRead.object($0), "functionDeclarations"))?.isEmpty == false }
        if hasDeclarations {
            for tool in ordered()["tools"]?.elements ?? [] {
                for declaration in tool.either("functionDeclarations")?.elements ?? [] {
                    declarations.append((declaration["name"]?.string ?? "", declaration.either("parametersJsonSchema") ?? declaration["parameters"]))
                }
            }
        }
        var call: (name: String, args: String)?
        if !declarations.isEmpty, mode != "NONE", responseIndex == nil || mode == "ANY" {
            let name = allowed.first ?? declarations[0].name
            let args = SchemaSample.object(declarations.first { $0.name == name }?.schema)
            call = (name, args)
            output = Self.outputTokens(tool: name, arguments: args)
        } else {
            let mime = JSONRead.either(config, "responseMimeType") as? String
            let orderedConfig = ordered().either("generationConfig")
            if mime == "application/json", let schema = orderedConfig?.either("responseJsonSchema") ?? orderedConfig?.either("responseSchema") {
                // A structured output (also after a function's response: the final answer keeps the asked shape).
                text = SchemaSample.object(schema)
            } else if let responseIndex {
                let parts = ordered()["contents"]?.elements?.last?["parts"]
                let response = parts?[responseIndex]?.either("functionResponse")?["response"]
                text = "The tool said: \(response?.text ?? "{}")"
            }
            output = Self.outputTokens(text: text)
        }
        let thoughtCount = thoughts ? Self.thoughtTokens : 0
        let argsMarker = "@@mock-raw-function-args@@"
        let thoughtPart: [String: Any] = ["text": Self.thought, "thought": true]
        // Google's signatures are bytes, so base64 in JSON (the SDKs decode them: google-genai refuses anything else):
        // this one is "gsig-mock<6 digits>" encoded (20 characters, never a `+`, `/` or `=`).
        let signature = Data("gsig-mock\(Self.randomDigits())".utf8).base64EncodedString()
        let callPart: [String: Any]? = call.map { ["functionCall": ["name": $0.name, "args": argsMarker], "thoughtSignature": signature] }

        func response(_ parts: [[String: Any]], outputSoFar: Int, thoughtsSoFar: Int, finished: Bool) -> [String: Any] {
            var candidate: [String: Any] = ["content": ["parts": parts, "role": "model"], "index": 0]
            if finished { candidate["finishReason"] = "STOP" }
            var usage: [String: Any] = ["promptTokenCount": input, "candidatesTokenCount": outputSoFar, "totalTokenCount": input + outputSoFar + thoughtsSoFar]
            if thoughtsSoFar > 0 { usage["thoughtsTokenCount"] = thoughtsSoFar }
            return ["candidates": [candidate], "usageMetadata": usage, "modelVersion": model]
        }
        let raw = call.map { [argsMarker: $0.args] } ?? [:]
        guard stream else {
            let parts = (thoughts ? [thoughtPart] : []) + [callPart ?? ["text": text]]
            let answer = response(parts, outputSoFar: output, thoughtsSoFar: thoughtCount, finished: true)
            return raw.isEmpty ? json(200, answer) : json(200, answer, raw: raw)
        }
        // One response a piece: the thought, then the function call whole, or the text word by word.
        var pieces: [[String: Any]] = []
        if thoughts { pieces.append(response([thoughtPart], outputSoFar: 0, thoughtsSoFar: thoughtCount, finished: false)) }
        if let callPart {
            pieces.append(response([callPart], outputSoFar: output, thoughtsSoFar: thoughtCount, finished: true))
        } else {
            let words = Self.pieces(text)
            for (index, word) in words.enumerated() {
                let last = index == words.count - 1
                pieces.append(response([["text": word]], outputSoFar: last ? output : min(output, index + 1), thoughtsSoFar: thoughtCount, finished: last))
            }
        }
        if useSSE { return sse(pieces.map { "data: \(serialize($0, raw: raw))\r\n\r\n" }, midstream: midstream) }
        // Without `alt=sse`, Gemini streams one JSON array of the responses.
        let array = "[" + pieces.map { serialize($0, raw: raw) }.joined(separator: ",") + "]"
        return Response(status: .ok, headers: [.contentType: "application/json; charset=UTF-8"], body: .init(byteBuffer: ByteBuffer(string: array)))
    }

    // MARK: Writing

    func serialize(_ object: [String: Any]) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data(), as: UTF8.self)
    }

    /// `object` serialized, each marker string in `raw` replaced by its JSON text (so a schema-ordered object keeps
    /// its order inside a body JSONSerialization writes with sorted keys).
    func serialize(_ object: [String: Any], raw: [String: String]) -> String {
        var text = serialize(object)
        for (marker, json) in raw { text = text.replacingOccurrences(of: "\"\(marker)\"", with: json) }
        return text
    }

    func json(_ status: Int, _ object: [String: Any], raw: [String: String]) -> Response {
        Response(status: .init(code: status), headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: serialize(object, raw: raw))))
    }

    /// An event stream sent piece by piece (20 ms apart, so a client can see it arrive in parts); a
    /// `midstream` key breaks the connection after two events.
    func sse(_ events: [String], midstream: Bool) -> Response {
        Response(status: .ok, headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache"], body: ResponseBody { writer in
            for (index, event) in events.enumerated() {
                if midstream, index == 2 { throw MidstreamFailure() }
                try await writer.write(ByteBuffer(string: event))
                try await Task.sleep(for: .milliseconds(20))
            }
            try await writer.finish(nil)
        })
    }
}

struct MidstreamFailure: Error {}

extension MockVendor {
    /// OpenAI's Responses API: text only (the gateway passes it through to OpenAI, and translates it for the others).
    func openAIResponse(_ object: [String: Any], midstream: Bool) -> Response {
        guard let model = object["model"] as? String else {
            return json(400, ["error": ["message": "Missing required parameter: 'model'.", "type": "invalid_request_error", "param": "model", "code": "missing_required_parameter"]])
        }
        var characters = (object["instructions"] as? String)?.count ?? 0
        if let text = object["input"] as? String { characters += text.count }
        for item in object["input"] as? [[String: Any]] ?? [] {
            if let text = item["content"] as? String { characters += text.count }
            for part in item["content"] as? [[String: Any]] ?? [] { characters += (part["text"] as? String)?.count ?? 0 }
        }
        let text = "Hello from the \(name) mock."
        let words = text.split(separator: " ").map(String.init)
        let (input, output) = (max(1, characters / 4), words.count)
        let id = "resp_mock\(Int.random(in: 100_000...999_999))"
        let usage: [String: Any] = ["input_tokens": input, "input_tokens_details": ["cached_tokens": 0], "output_tokens": output,
                                    "output_tokens_details": ["reasoning_tokens": 0], "total_tokens": input + output]
        func response(_ status: String, done: Bool) -> [String: Any] {
            let part: [String: Any] = ["type": "output_text", "text": text, "annotations": [Any]()]
            let message: [String: Any] = ["type": "message", "id": "msg_mock", "status": "completed", "role": "assistant", "content": [part]]
            var body: [String: Any] = ["id": id, "object": "response", "created_at": 1_763_800_000, "status": status, "model": model]
            body["error"] = NSNull()
            body["incomplete_details"] = NSNull()
            body["output"] = done ? [message] : [Any]()
            body["parallel_tool_calls"] = true
            body["tool_choice"] = "auto"
            body["tools"] = [Any]()
            body["usage"] = done ? usage : NSNull()
            return body
        }
        guard object["stream"] as? Bool == true else { return json(200, response("completed", done: true)) }
        var events: [(String, [String: Any])] = [("response.created", ["type": "response.created", "response": response("in_progress", done: false)])]
        events.append(("response.output_item.added", ["type": "response.output_item.added", "output_index": 0,
                                                       "item": ["type": "message", "id": "msg_mock", "status": "in_progress", "role": "assistant", "content": [] as [Any]]]))
        events.append(("response.content_part.added", ["type": "response.content_part.added", "item_id": "msg_mock", "output_index": 0, "content_index": 0,
                                                        "part": ["type": "output_text", "text": "", "annotations": [] as [Any]]]))
        for (index, word) in words.enumerated() {
            events.append(("response.output_text.delta", ["type": "response.output_text.delta", "item_id": "msg_mock", "output_index": 0, "content_index": 0,
                                                           "delta": (index == 0 ? "" : " ") + word]))
        }
        events.append(("response.completed", ["type": "response.completed", "response": response("completed", done: true)]))
        var sequenced: [String] = []
        for (number, (type, var body)) in events.enumerated() {
            body["sequence_number"] = number
            sequenced.append("event: \(type)\ndata: \(serialize(body))\n\n")
        }
        return sse(sequenced, midstream: midstream)
    }
}
