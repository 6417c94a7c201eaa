import Foundation
import Testing
@testable import KeywardenProviders

@Suite("Chat translation between dialects")
struct ChatTranslationTests {
    static func json(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    static func translate(_ body: String, from caller: ChatShape = .openAIChat, to vendor: ChatShape, model: String = "m") throws(TranslationError) -> ChatTranslation.Request {
        try ChatTranslation.request(Array(body.utf8), from: caller, to: vendor, model: model, target: "Vendor", created: 1)
    }

    /// An OpenAI tool loop with an image, a schema whose properties are out of alphabetical order, and reasoning.
    static let openAIToolLoop = #"""
    {"model":"x","messages":[
      {"role":"system","content":"Be brief."},
      {"role":"user","content":[{"type":"text","text":"Weather?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]},
      {"role":"assistant","content":null,"tool_calls":[{"id":"call_abc","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}],
       "thinking_blocks":[{"type":"thinking","thinking":"Need the tool.","signature":"sig-1"}]},
      {"role":"tool","tool_call_id":"call_abc","content":"Sunny"}
    ],
    "tools":[{"type":"function","function":{"name":"weather","description":"Weather of a city","parameters":{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"number"},"city":{"type":"string"}},"required":["city"]}}}],
    "tool_choice":"auto","temperature":0.70,"stop":"END","max_completion_tokens":300,"reasoning_effort":"low","stream":true,"stream_options":{"include_usage":true}}
    """#

    @Test("OpenAI → Anthropic: system on top, tool ids kept, tool results answer in the next user turn, media as sources, schema bytes, thinking back first, max tokens and effort mapped")
    func openAIToAnthropicRequest() throws {
        let translated = try Self.translate(Self.openAIToolLoop, to: .anthropicMessages, model: "claude-sonnet-4-6")
        #expect(translated.path == "/v1/messages")
        let text = String(decoding: translated.body, as: UTF8.self)
        let body = try Self.json(translated.body)
        #expect(body["model"] as? String == "claude-sonnet-4-6" && body["system"] as? String == "Be brief.")
        #expect(body["max_tokens"] as? Int == 300 && body["stop_sequences"] as? [String] == ["END"] && body["stream"] as? Bool == true)
        #expect(text.contains(#""temperature":0.70"#), "the caller's number as written")
        #expect(text.contains(#"{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"number"},"city":{"type":"string"}},"required":["city"]}"#),
                "the schema's bytes, its property order kept")
        #expect((body["thinking"] as? [String: Any])?["budget_tokens"] as? Int == 1024)
        let messages = try #require(body["messages"] as? [[String: Any]])
        #expect(messages.map { $0["role"] as? String } == ["user", "assistant", "user"])
        let user = try #require(messages[0]["content"] as? [[String: Any]])
        #expect(user.map { $0["type"] as? String } == ["text", "image", "image"])
        #expect((user[1]["source"] as? [String: Any])?["media_type"] as? String == "image/png")
        #expect((user[2]["source"] as? [String: Any])?["url"] as? String == "https://example.com/a.png")
        let assistant = try #require(messages[1]["content"] as? [[String: Any]])
        #expect(assistant.map { $0["type"] as? String } == ["thinking", "tool_use"])
        #expect(assistant[0]["signature"] as? String == "sig-1")
        #expect(assistant[1]["id"] as? String == "call_abc" && (assistant[1]["input"] as? [String: Any])?["city"] as? String == "Paris")
        let result = try #require((messages[2]["content"] as? [[String: Any]])?.first)
        #expect(result["type"] as? String == "tool_result" && result["tool_use_id"] as? String == "call_abc" && result["content"] as? String == "Sunny")
    }

    @Test("OpenAI → Gemini: systemInstruction, functionCall / functionResponse by name, responseJsonSchema bytes, thinking budget; a media URL is refused by name")
    func openAIToGeminiRequest() throws {
        let withURL = Self.openAIToolLoop
        #expect(throws: TranslationError.self) { try Self.translate(withURL, to: .geminiGenerate) }
        do {
            _ = try Self.translate(withURL, to: .geminiGenerate)
        } catch {
            #expect(error.code == "unsupported_for_provider" && error.field.contains("messages[0].content[2]"))
        }
        let inline = withURL.replacingOccurrences(of: #",{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}"#, with: "")
        let translated = try Self.translate(inline, to: .geminiGenerate, model: "gemini-2.5-flash")
        #expect(translated.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
        let body = try Self.json(translated.body)
        let contents = try #require(body["contents"] as? [[String: Any]])
        #expect(contents.map { $0["role"] as? String } == ["user", "model", "user"])
        let call = try #require((contents[1]["parts"] as? [[String: Any]])?.first)
        #expect((call["functionCall"] as? [String: Any])?["name"] as? String == "weather")
        #expect(call["thoughtSignature"] as? String == "sig-1", "the thinking block's signature rides on the call")
        let response = try #require((contents[2]["parts"] as? [[String: Any]])?.first?["functionResponse"] as? [String: Any])
        #expect(response["name"] as? String == "weather" && (response["response"] as? [String: Any])?["result"] as? String == "Sunny")
        let config = try #require(body["generationConfig"] as? [String: Any])
        #expect(config["maxOutputTokens"] as? Int == 300 && (config["thinkingConfig"] as? [String: Any])?["thinkingBudget"] as? Int == 1024)
        let schema = try Self.translate(#"{"messages":[{"role":"user","content":"Hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"r","schema":{"type":"object","properties":{"b":{"type":"string"},"a":{"type":"string"}}}}}}"#,
                                        to: .geminiGenerate)
        #expect(String(decoding: schema.body, as: UTF8.self).contains(#""responseJsonSchema":{"type":"object","properties":{"b":{"type":"string"},"a":{"type":"string"}}}"#))
    }

    @Test("a member no target can express is refused by name, never dropped; every spelling of a tool the target lacks too")
    func unsupportedIsRefused() throws {
        for (body, field) in [
            (#"{"messages":[{"role":"user","content":"Hi"}],"logprobs":true}"#, "logprobs"),
            (#"{"messages":[{"role":"user","content":"Hi"}],"n":2}"#, "n"),
            (#"{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#, "messages[0].content[0].type (input_audio)"),
            (#"{"messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"web_search"}]}"#, "tools[0]"),
        ] {
            do {
                _ = try Self.translate(body, to: .anthropicMessages)
                Issue.record("\(body) passed")
            } catch {
                #expect(error.code == "unsupported_for_provider" && error.field == field, "\(error)")
            }
        }
        // Anthropic's own server tools do not translate either.
        #expect(throws: TranslationError.self) {
            try Self.translate(#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"web_search_20250305","name":"web_search"}]}"#,
                               from: .anthropicMessages, to: .openAIChat)
        }
    }

    @Test("Anthropic → OpenAI answer: text, tool calls with their ids, thinking with its signature, finish reason, usage with cached tokens")
    func anthropicAnswerToOpenAI() throws {
        let translated = try Self.translate(#"{"messages":[{"role":"user","content":"Hi"}]}"#, to: .anthropicMessages)
        let answer = #"{"id":"msg_1","type":"message","model":"claude-sonnet-4-6","content":[{"type":"thinking","thinking":"Hmm.","signature":"sig-9"},{"type":"text","text":"Let me check."},{"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Paris"}}],"stop_reason":"tool_use","usage":{"input_tokens":10,"cache_read_input_tokens":90,"output_tokens":7}}"#
        let out = try Self.json(try #require(translated.translation.answer(Array(answer.utf8))))
        #expect(out["object"] as? String == "chat.completion" && out["id"] as? String == "msg_1" && out["model"] as? String == "claude-sonnet-4-6")
        let choice = try #require((out["choices"] as? [[String: Any]])?.first)
        #expect(choice["finish_reason"] as? String == "tool_calls")
        let message = try #require(choice["message"] as? [String: Any])
        #expect(message["content"] as? String == "Let me check." && message["reasoning_content"] as? String == "Hmm.")
        #expect(((message["thinking_blocks"] as? [[String: Any]])?.first)?["signature"] as? String == "sig-9")
        let call = try #require((message["tool_calls"] as? [[String: Any]])?.first)
        #expect(call["id"] as? String == "toolu_1" && (call["function"] as? [String: Any])?["arguments"] as? String == #"{"city":"Paris"}"#)
        let usage = try #require(out["usage"] as? [String: Any])
        #expect(usage["prompt_tokens"] as? Int == 100 && usage["completion_tokens"] as? Int == 7)
        #expect((usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int == 90)
    }

    static let anthropicStream = """
    event: message_start
    data: {"type":"message_start","message":{"id":"msg_2","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],"usage":{"input_tokens":12,"output_tokens":1}}}

    event: content_block_start
    data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

    event: content_block_delta
    data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel\\u00e9"}}

    event: content_block_stop
    data: {"type":"content_block_stop","index":0}

    event: content_block_start
    data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_7","name":"weather","input":{}}}

    event: content_block_delta
    data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\":"}}

    event: content_block_delta
    data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\\"Paris\\"}"}}

    event: content_block_stop
    data: {"type":"content_block_stop","index":1}

    event: message_delta
    data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":15}}

    event: message_stop
    data: {"type":"message_stop"}


    """

    /// The chunks an OpenAI stream carries, parsed.
    static func chunks(_ bytes: [UInt8]) throws -> (events: [[String: Any]], done: Bool) {
        var events: [[String: Any]] = []
        var done = false
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("data: ") {
            let data = line.dropFirst(6)
            if data == "[DONE]" { done = true; continue }
            events.append(try Self.json(Array(data.utf8)))
        }
        return (events, done)
    }

    @Test("an Anthropic stream becomes OpenAI chunks as it arrives, the same whether fed whole or byte by byte")
    func anthropicStreamToOpenAI() throws {
        let translated = try Self.translate(#"{"messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true}}"#, to: .anthropicMessages)
        var whole = translated.translation.streamTranslator()
        let wholeOut = whole.feed(Array(Self.anthropicStream.utf8)) + whole.finish()
        var bytewise = translated.translation.streamTranslator()
        var byteOut: [UInt8] = []
        for byte in Self.anthropicStream.utf8 { byteOut += bytewise.feed([byte]) }
        byteOut += bytewise.finish()
        #expect(wholeOut == byteOut)
        // Incremental: the first text is out as soon as its event is in.
        var early = translated.translation.streamTranslator()
        let firstEvents = Self.anthropicStream.components(separatedBy: "event: content_block_stop")[0]
        #expect(String(decoding: early.feed(Array(firstEvents.utf8)), as: UTF8.self).contains("Hel\u{e9}"))
        let (events, done) = try Self.chunks(wholeOut)
        #expect(done)
        let deltas = events.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any]) }
        #expect(deltas.compactMap { $0["content"] as? String }.joined() == "Hel\u{e9}")
        let calls = deltas.compactMap { ($0["tool_calls"] as? [[String: Any]])?.first }
        #expect(calls.first?["id"] as? String == "toolu_7" && (calls.first?["function"] as? [String: Any])?["name"] as? String == "weather")
        #expect(calls.compactMap { ($0["function"] as? [String: Any])?["arguments"] as? String }.joined() == #"{"city":"Paris"}"#)
        #expect(events.compactMap { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String } == ["tool_calls"])
        let usage = try #require(events.last?["usage"] as? [String: Any])
        #expect(usage["prompt_tokens"] as? Int == 12 && usage["completion_tokens"] as? Int == 15)
    }

    @Test("a Gemini stream becomes Anthropic events; a call's id carries its thought signature back to Gemini on the next turn")
    func geminiStreamToAnthropic() throws {
        let request = #"{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"Hi"}],"stream":true}"#
        let translated = try Self.translate(request, from: .anthropicMessages, to: .geminiGenerate)
        let stream = """
        data: {"candidates":[{"content":{"parts":[{"text":"Think.","thought":true}],"role":"model"}}],"modelVersion":"gemini-2.5-flash","responseId":"r1"}\r
        \r
        data: {"candidates":[{"content":{"parts":[{"text":"Sure"}],"role":"model"}}],"modelVersion":"gemini-2.5-flash"}\r
        \r
        data: {"candidates":[{"content":{"parts":[{"functionCall":{"name":"weather","args":{"city":"Paris"}},"thoughtSignature":"ab+/cd=="}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":4,"thoughtsTokenCount":3}}\r
        \r

        """
        var translator = translated.translation.streamTranslator()
        let out = String(decoding: translator.feed(Array(stream.utf8)) + translator.finish(), as: UTF8.self)
        let types = out.split(separator: "\n").filter { $0.hasPrefix("event: ") }.map { String($0.dropFirst(7)) }
        #expect(types == ["message_start", "content_block_start", "content_block_delta", "content_block_stop",
                          "content_block_start", "content_block_delta", "content_block_stop",
                          "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"])
        #expect(out.contains(#""stop_reason":"tool_use""#) && out.contains(#""output_tokens":7"#))
        let id = try #require(out.range(of: #""id":"call_g0_"#).map { out[$0.lowerBound...].dropFirst(6).prefix { $0 != "\"" } })
        #expect(GeminiGenerateWire.signature(inCallID: String(id)) == "ab+/cd==")
        // The next turn: the call and its result go back, the signature with the call.
        let next = #"{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":[{"type":"tool_use","id":"\#(id)","name":"weather","input":{"city":"Paris"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"\#(id)","content":"Sunny"}]}]}"#
        let body = try Self.json(try Self.translate(next, from: .anthropicMessages, to: .geminiGenerate).body)
        let call = try #require(((body["contents"] as? [[String: Any]])?[1]["parts"] as? [[String: Any]])?.first)
        #expect(call["thoughtSignature"] as? String == "ab+/cd==")
    }

    @Test("an OpenAI stream becomes Anthropic events (an Anthropic caller served by an OpenAI key), usage asked for on the caller's behalf")
    func openAIStreamToAnthropic() throws {
        let translated = try Self.translate(#"{"model":"m","max_tokens":50,"messages":[{"role":"user","content":"Hi"}],"stream":true}"#,
                                            from: .anthropicMessages, to: .openAIChat)
        let sent = try Self.json(translated.body)
        #expect((sent["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true && sent["max_tokens"] as? Int == 50)
        let stream = """
        data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-5.4-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

        data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-5.4-mini","choices":[{"index":0,"delta":{"content":"Hi there"},"finish_reason":null}]}

        data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-5.4-mini","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}

        data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-5.4-mini","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}

        data: [DONE]


        """
        var translator = translated.translation.streamTranslator()
        let out = String(decoding: translator.feed(Array(stream.utf8)) + translator.finish(), as: UTF8.self)
        #expect(out.contains(#""text":"Hi there""#) && out.contains(#""stop_reason":"max_tokens""#))
        #expect(out.contains(#""input_tokens":5"#) && out.contains(#""output_tokens":2"#))
        #expect(out.components(separatedBy: "event: message_stop").count == 2, "one end, though both [DONE] and the body's end came")
    }

    @Test("errors come back in the caller's shape with the vendor's message and status")
    func errorsInTheCallersShape() throws {
        let toAnthropic = try Self.translate(#"{"messages":[{"role":"user","content":"Hi"}]}"#, to: .anthropicMessages)
        let openAIShaped = try Self.json(toAnthropic.translation.error(status: 429, body: Array(#"{"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}"#.utf8)))
        #expect((openAIShaped["error"] as? [String: Any])?["message"] as? String == "Slow down")
        #expect((openAIShaped["error"] as? [String: Any])?["type"] as? String == "rate_limit_error")
        let toOpenAI = try Self.translate(#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"Hi"}]}"#, from: .anthropicMessages, to: .openAIChat)
        let anthropicShaped = try Self.json(toOpenAI.translation.error(status: 401, body: Array(#"{"error":{"message":"Incorrect API key","type":"invalid_request_error","code":"invalid_api_key"}}"#.utf8)))
        #expect(anthropicShaped["type"] as? String == "error")
        #expect((anthropicShaped["error"] as? [String: Any])?["type"] as? String == "authentication_error")
        #expect((anthropicShaped["error"] as? [String: Any])?["message"] as? String == "Incorrect API key")
    }

    @Test("a structured output goes to Anthropic as a forced tool and comes back as the answer's text")
    func structuredOutputThroughAnthropic() throws {
        let translated = try Self.translate(#"{"messages":[{"role":"user","content":"Hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"string"}}}}}}"#,
                                            to: .anthropicMessages)
        let body = try Self.json(translated.body)
        #expect((body["tool_choice"] as? [String: Any])?["name"] as? String == "answer")
        #expect(String(decoding: translated.body, as: UTF8.self).contains(#""input_schema":{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"string"}}}"#))
        let answer = #"{"id":"msg_3","model":"claude","content":[{"type":"tool_use","id":"toolu_1","name":"answer","input":{"z":"1","a":"2"}}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":1}}"#
        let out = try Self.json(try #require(translated.translation.answer(Array(answer.utf8))))
        let choice = try #require((out["choices"] as? [[String: Any]])?.first)
        #expect(choice["finish_reason"] as? String == "stop")
        #expect((choice["message"] as? [String: Any])?["content"] as? String == #"{"z":"1","a":"2"}"#)
    }

    @Test("a Responses call: input items (messages, function calls and their outputs, reasoning) translate, and an Anthropic stream comes back as Responses events")
    func responsesCallerThroughAnthropic() throws {
        let body = #"{"model":"m","instructions":"Be brief.","input":[{"role":"user","content":[{"type":"input_text","text":"Weather?"}]},{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"Need it."}],"encrypted_content":"sig-3"},{"type":"function_call","call_id":"call_9","name":"weather","arguments":"{\"city\":\"Paris\"}"},{"type":"function_call_output","call_id":"call_9","output":"Sunny"}],"tools":[{"type":"function","name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}],"max_output_tokens":200,"stream":true,"store":false}"#
        let translated = try Self.translate(body, from: .openAIResponses, to: .anthropicMessages)
        let sent = try Self.json(translated.body)
        #expect(sent["system"] as? String == "Be brief." && sent["max_tokens"] as? Int == 200)
        let messages = try #require(sent["messages"] as? [[String: Any]])
        #expect(messages.map { $0["role"] as? String } == ["user", "assistant", "user"])
        let assistant = try #require(messages[1]["content"] as? [[String: Any]])
        #expect(assistant.map { $0["type"] as? String } == ["thinking", "tool_use"] && assistant[0]["signature"] as? String == "sig-3")
        #expect(((messages[2]["content"] as? [[String: Any]])?.first)?["tool_use_id"] as? String == "call_9")
        for (refused, field) in [(#"{"model":"m","input":"Hi","previous_response_id":"resp_1"}"#, "previous_response_id"),
                                 (#"{"model":"m","input":"Hi","store":true}"#, "store"),
                                 (#"{"model":"m","input":"Hi","tools":[{"type":"web_search"}]}"#, "tools[0]")] {
            do {
                _ = try Self.translate(refused, from: .openAIResponses, to: .anthropicMessages)
                Issue.record("\(refused) passed")
            } catch {
                #expect(error.code == "unsupported_for_provider" && error.field == field)
            }
        }
        var translator = translated.translation.streamTranslator()
        let out = String(decoding: translator.feed(Array(Self.anthropicStream.utf8)) + translator.finish(), as: UTF8.self)
        let types = out.split(separator: "\n").filter { $0.hasPrefix("event: ") }.map { String($0.dropFirst(7)) }
        #expect(types.first == "response.created" && types.last == "response.completed")
        #expect(types.contains("response.output_text.delta") && types.contains("response.function_call_arguments.delta"))
        #expect(out.contains(#""type":"response.output_text.done""#) && out.contains("\"text\":\"Hel\u{e9}\""), "the text's done event carries the whole text")
        let completed = try #require(out.split(separator: "\n").last { $0.hasPrefix("data: ") && $0.contains("response.completed") })
        let response = try #require(try Self.json(Array(completed.dropFirst(6).utf8))["response"] as? [String: Any])
        let output = try #require(response["output"] as? [[String: Any]])
        #expect(output.map { $0["type"] as? String } == ["message", "function_call"])
        #expect(output[1]["call_id"] as? String == "toolu_7" && output[1]["arguments"] as? String == #"{"city":"Paris"}"#)
        #expect((response["usage"] as? [String: Any])?["output_tokens"] as? Int == 15)
        // Whole: the same answer as one response object.
        let whole = try Self.json(try #require(translated.translation.answer(Array(#"{"id":"msg_1","model":"claude","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}"#.utf8))))
        #expect(whole["object"] as? String == "response" && whole["status"] as? String == "completed")
        #expect(((whole["output"] as? [[String: Any]])?.first?["content"] as? [[String: Any]])?.first?["text"] as? String == "Hi")
    }
}
