import Foundation
import Hummingbird
import NIOCore

/// The vendors' generation calls: OpenAI-shaped chat completions (every OpenAI-compatible vendor, and
/// Anthropic's and Gemini's compatibility endpoints), Anthropic messages, Gemini generateContent and
/// ElevenLabs text-to-speech, each plain or streamed (SSE) with usage where the vendor puts it.
///
/// Token counts are deterministic: input = characters of the prompt / 4 (at least 1), output = words of
/// the reply, so tests can compare what Keywarden metered with what the mock said.
extension MockVendor {
    /// The answer to a generation call, or `nil` when `path` is not one.
    func generation(method: String, path: String, query: [String: String], body: ByteBuffer, key: String) -> Response? {
        guard method == "POST" else { return nil }
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
        let midstream = key.contains("midstream")
        if path.hasSuffix("/chat/completions") {
            return chatCompletion(object, midstream: midstream)
        }
        if family == .anthropic, path == "/v1/messages" {
            return anthropicMessage(object, midstream: midstream)
        }
        if family == .gemini, path.hasPrefix("/v1beta/models/"), path.contains(":") {
            let model = String(path.dropFirst("/v1beta/models/".count).prefix { $0 != ":" })
            return geminiContent(object, model: model, stream: path.hasSuffix(":streamGenerateContent"), sse: query["alt"] == "sse", midstream: midstream)
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
            for part in message["content"] as? [[String: Any]] ?? [] { characters += (part["text"] as? String)?.count ?? 0 }
        }
        if let system = object["system"] as? String { characters += system.count }
        for content in object["contents"] as? [[String: Any]] ?? [] {
            for part in content["parts"] as? [[String: Any]] ?? [] { characters += (part["text"] as? String)?.count ?? 0 }
        }
        let text = "Hello from the \(name) mock."
        let words = text.split(separator: " ").map(String.init)
        return (text, words, max(1, characters / 4), words.count)
    }

    func chatCompletion(_ object: [String: Any], midstream: Bool) -> Response {
        // Like OpenAI: a request without a model is refused before anything is generated.
        guard let model = object["model"] as? String else {
            return json(400, ["error": ["message": "you must provide a model parameter", "type": "invalid_request_error",
                                        "param": NSNull(), "code": NSNull()]])
        }
        let (text, words, input, output) = reply(object)
        let id = "chatcmpl-mock\(Int.random(in: 100_000...999_999))"
        let usage: [String: Any] = ["prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output]
        guard object["stream"] as? Bool == true else {
            return json(200, [
                "id": id, "object": "chat.completion", "created": 1_763_800_000, "model": model,
                "choices": [["index": 0, "message": ["role": "assistant", "content": text], "finish_reason": "stop", "logprobs": NSNull()]],
                "usage": usage, "system_fingerprint": "fp_mock",
            ])
        }
        let includeUsage = (object["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true
        var events: [[String: Any]] = [chunk(id, model, delta: ["role": "assistant", "content": ""], finish: nil)]
        for (index, word) in words.enumerated() {
            events.append(chunk(id, model, delta: ["content": (index == 0 ? "" : " ") + word], finish: nil))
        }
        events.append(chunk(id, model, delta: [:], finish: "stop"))
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

    func anthropicMessage(_ object: [String: Any], midstream: Bool) -> Response {
        // Like Anthropic: model and max_tokens are required fields.
        guard let model = object["model"] as? String else {
            return json(400, ["type": "error", "error": ["type": "invalid_request_error", "message": "model: Field required"]])
        }
        guard object["max_tokens"] is Int else {
            return json(400, ["type": "error", "error": ["type": "invalid_request_error", "message": "max_tokens: Field required"]])
        }
        let (text, words, input, output) = reply(object)
        let id = "msg_mock\(Int.random(in: 100_000...999_999))"
        guard object["stream"] as? Bool == true else {
            return json(200, [
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [["type": "text", "text": text]], "stop_reason": "end_turn", "stop_sequence": NSNull(),
                "usage": ["input_tokens": input, "output_tokens": output],
            ])
        }
        var events: [(String, [String: Any])] = [
            ("message_start", ["type": "message_start", "message": [
                "id": id, "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": NSNull(),
                "stop_sequence": NSNull(), "usage": ["input_tokens": input, "output_tokens": 1],
            ]]),
            ("content_block_start", ["type": "content_block_start", "index": 0, "content_block": ["type": "text", "text": ""]]),
            ("ping", ["type": "ping"]),
        ]
        for (index, word) in words.enumerated() {
            events.append(("content_block_delta", ["type": "content_block_delta", "index": 0, "delta": ["type": "text_delta", "text": (index == 0 ? "" : " ") + word]]))
        }
        events.append(("content_block_stop", ["type": "content_block_stop", "index": 0]))
        events.append(("message_delta", ["type": "message_delta", "delta": ["stop_reason": "end_turn", "stop_sequence": NSNull()], "usage": ["output_tokens": output]]))
        events.append(("message_stop", ["type": "message_stop"]))
        return sse(events.map { "event: \($0.0)\ndata: \(serialize($0.1))\n\n" }, midstream: midstream)
    }

    func geminiContent(_ object: [String: Any], model: String, stream: Bool, sse useSSE: Bool, midstream: Bool) -> Response {
        let (text, words, input, output) = reply(object)
        func response(_ text: String, outputSoFar: Int, finished: Bool) -> [String: Any] {
            var candidate: [String: Any] = ["content": ["parts": [["text": text]], "role": "model"], "index": 0]
            if finished { candidate["finishReason"] = "STOP" }
            return ["candidates": [candidate],
                    "usageMetadata": ["promptTokenCount": input, "candidatesTokenCount": outputSoFar, "totalTokenCount": input + outputSoFar],
                    "modelVersion": model]
        }
        guard stream else { return json(200, response(text, outputSoFar: output, finished: true)) }
        let parts = words.enumerated().map { index, word in
            response((index == 0 ? "" : " ") + word, outputSoFar: index + 1, finished: index == words.count - 1)
        }
        if useSSE { return sse(parts.map { "data: \(serialize($0))\r\n\r\n" }, midstream: midstream) }
        // Without `alt=sse`, Gemini streams one JSON array of the responses.
        let array = (try? JSONSerialization.data(withJSONObject: parts, options: [.sortedKeys])) ?? Data("[]".utf8)
        return Response(status: .ok, headers: [.contentType: "application/json; charset=UTF-8"], body: .init(byteBuffer: ByteBuffer(bytes: array)))
    }

    func serialize(_ object: [String: Any]) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data(), as: UTF8.self)
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
