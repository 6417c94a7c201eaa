import Foundation
import KeywardenProviders

/// The CPU this process has used so far, in seconds (the measured process's own time: stable on a shared machine).
func processCPUSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

func cpuMicroseconds(_ iterations: Int, _ body: () throws -> Void) rethrows -> Double {
    let start = processCPUSeconds()
    for _ in 0..<iterations { try body() }
    return (processCPUSeconds() - start) / Double(iterations) * 1e6
}

/// The cost of translating a typical chat call between dialects: a 2 KB OpenAI request with a tool, its answer whole
/// (about 1 KB) and streamed (60 text events), to and from Anthropic and Gemini. The baseline is what every call already
/// pays on the same bytes: the request facts' read of the body and the usage reader's read of the answer.
func translateBenchmark() throws {
    let iterations = option("--iterations", default: 20_000)
    let turn = "Please summarise the attached notes on the quarterly plan and list three risks we should watch. "
    var messages = [#"{"role":"system","content":"You are a concise assistant for the operations team."}"#]
    for index in 0..<6 {
        messages.append(#"{"role":"user","content":"\#(turn)(\#(index))"}"#)
        messages.append(#"{"role":"assistant","content":"Here is the summary you asked for, with the three risks listed in order of impact. (\#(index))"}"#)
    }
    messages.append(#"{"role":"user","content":"\#(turn)Also check the weather in Paris."}"#)
    let request = Array(#"{"model":"claude-sonnet-4-6","messages":[\#(messages.joined(separator: ","))],"tools":[{"type":"function","function":{"name":"get_weather","description":"The weather of a city","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["city"]}}}],"temperature":0.7,"max_completion_tokens":800}"#.utf8)
    let text = String(repeating: "The plan holds if the suppliers deliver on time and the budget stays flat. ", count: 11)
    let anthropicWhole = Array(#"{"id":"msg_bench","type":"message","role":"assistant","model":"claude-sonnet-4-6","content":[{"type":"text","text":"\#(text)"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":512,"output_tokens":180}}"#.utf8)
    var anthropicStream = Array(#"event: message_start\#ndata: {"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","model":"claude-sonnet-4-6","content":[],"usage":{"input_tokens":512,"output_tokens":1}}}\#n\#nevent: content_block_start\#ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\#n\#n"#.utf8)
    var geminiStream: [UInt8] = []
    for index in 0..<60 {
        anthropicStream += Array(#"event: content_block_delta\#ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"word\#(index) and more "}}\#n\#n"#.utf8)
        geminiStream += Array(#"data: {"candidates":[{"content":{"parts":[{"text":"word\#(index) and more "}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":512,"candidatesTokenCount":\#(index + 1)},"modelVersion":"gemini-2.5-flash"}\#r\#n\#r\#n"#.utf8)
    }
    anthropicStream += Array(#"event: content_block_stop\#ndata: {"type":"content_block_stop","index":0}\#n\#nevent: message_delta\#ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":180}}\#n\#nevent: message_stop\#ndata: {"type":"message_stop"}\#n\#n"#.utf8)
    let geminiWhole = Array(#"{"candidates":[{"content":{"parts":[{"text":"\#(text)"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":512,"candidatesTokenCount":180,"totalTokenCount":692},"modelVersion":"gemini-2.5-flash","responseId":"r1"}"#.utf8)
    var streamRequest = request
    streamRequest.removeLast()
    streamRequest += Array(#","stream":true}"#.utf8)
    // Chunks as they come off the wire: about 1 KB each.
    func chunks(_ bytes: [UInt8]) -> [[UInt8]] { stride(from: 0, to: bytes.count, by: 1024).map { Array(bytes[$0..<min($0 + 1024, bytes.count)]) } }
    let anthropicChunks = chunks(anthropicStream)
    let geminiChunks = chunks(geminiStream)

    var sink = 0
    print("request \(request.count) B; answer \(anthropicWhole.count) B whole, \(anthropicStream.count) B streamed (60 events); \(iterations) iterations, CPU µs per call")
    let baselineWhole = cpuMicroseconds(iterations) {
        sink &+= RequestFacts.read(body: request, path: "/v1/chat/completions").model?.count ?? 0
        var reader = UsageReader(contentType: "application/json")
        reader.feed(anthropicWhole)
        reader.finish()
        sink &+= reader.counts.outputTokens ?? 0
    }
    let baselineStream = cpuMicroseconds(iterations) {
        sink &+= RequestFacts.read(body: streamRequest, path: "/v1/chat/completions").model?.count ?? 0
        var reader = UsageReader(contentType: "text/event-stream")
        for chunk in anthropicChunks { reader.feed(chunk) }
        reader.finish()
        sink &+= reader.counts.outputTokens ?? 0
    }
    print(String(format: "  baseline (request facts + usage read, every call pays it)   whole %7.2f   stream %7.2f", baselineWhole, baselineStream))
    for (name, vendor, whole, streamed) in [("anthropic", ChatShape.anthropicMessages, anthropicWhole, anthropicChunks),
                                            ("gemini", .geminiGenerate, geminiWhole, geminiChunks)] {
        let wholeCost = try cpuMicroseconds(iterations) {
            let translated = try ChatTranslation.request(request, from: .openAIChat, to: vendor, model: "m", target: name, created: 1)
            sink &+= translated.body.count
            sink &+= translated.translation.answer(whole)?.count ?? 0
        }
        let streamCost = try cpuMicroseconds(iterations) {
            let translated = try ChatTranslation.request(streamRequest, from: .openAIChat, to: vendor, model: "m", target: name, created: 1)
            sink &+= translated.body.count
            var translator = translated.translation.streamTranslator()
            for chunk in streamed { sink &+= translator.feed(chunk).count }
            sink &+= translator.finish().count
        }
        print(String(format: "  openai → %-9@ translation (request + answer)            whole %7.2f   stream %7.2f   (%.1f× / %.1f× the baseline)",
                     name as NSString, wholeCost, streamCost, wholeCost / baselineWhole, streamCost / baselineStream))
    }
    // The other way: an Anthropic caller served by an OpenAI-shaped vendor, whole.
    let anthropicRequest = Array(#"{"model":"m","max_tokens":800,"system":"You are concise.","messages":[{"role":"user","content":"\#(turn)"},{"role":"assistant","content":"Sure."},{"role":"user","content":"\#(turn)"}]}"#.utf8)
    let openAIWhole = Array(#"{"id":"chatcmpl-bench","object":"chat.completion","created":1763800000,"model":"gpt-5.4-mini","choices":[{"index":0,"message":{"role":"assistant","content":"\#(text)"},"finish_reason":"stop"}],"usage":{"prompt_tokens":25,"completion_tokens":180,"total_tokens":205}}"#.utf8)
    let reverse = try cpuMicroseconds(iterations) {
        let translated = try ChatTranslation.request(anthropicRequest, from: .anthropicMessages, to: .openAIChat, model: "m", target: "openai", created: 1)
        sink &+= translated.body.count
        sink &+= translated.translation.answer(openAIWhole)?.count ?? 0
    }
    print(String(format: "  anthropic → openai translation (request + answer)           whole %7.2f", reverse))
    print("(sink \(sink))")
}
