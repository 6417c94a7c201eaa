import Foundation
import KeywardenCore
@testable import KeywardenProviders
import Testing

@Suite("Reading usage from vendor answers")
struct UsageReaderTests {
    /// Feeds `text` in chunks of `size` bytes, as a network would cut it.
    func read(_ text: String, contentType: String, chunk size: Int) -> UsageReader {
        var reader = UsageReader(contentType: contentType)
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            reader.feed(bytes[index..<min(index + size, bytes.count)])
            index += size
        }
        reader.finish()
        return reader
    }

    @Test("OpenAI-shaped answers, plain and streamed, cut at any byte")
    func openAI() {
        let plain = #"{"id":"c","model":"gpt-5.4-mini","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}}"#
        #expect(read(plain, contentType: "application/json", chunk: 7).counts == UsageCounts(inputTokens: 12, outputTokens: 34))
        let stream = """
        data: {"choices":[{"delta":{"content":"Hi"}}]}

        data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9}}

        data: [DONE]

        """
        for size in [1, 3, 64, 4096] {
            let reader = read(stream, contentType: "text/event-stream; charset=utf-8", chunk: size)
            #expect(reader.counts == UsageCounts(inputTokens: 5, outputTokens: 9), "chunk \(size)")
        }
        let withoutUsage = read("data: {\"choices\":[]}\n\ndata: [DONE]\n\n", contentType: "text/event-stream", chunk: 5)
        #expect(withoutUsage.counts == UsageCounts(), "no usage asked for: nothing invented")
    }

    @Test("a stream that asked for usage is read once its null usage lines are skipped, the model and counts as before")
    func nullUsageLines() {
        #expect(UsageReader.usageMention(in: Array(#"data: {"choices":[{"delta":{}}]}"#.utf8)) == .none)
        #expect(UsageReader.usageMention(in: Array(#"data: {"model":"m","usage":null}"#.utf8)) == .nullOnly)
        #expect(UsageReader.usageMention(in: Array(#"data: {"usage": null,"x":"usage":null}"#.utf8)) == .nullOnly)
        #expect(UsageReader.usageMention(in: Array(#"data: {"usage":null,"message":{"usage":{"input_tokens":3}}}"#.utf8)) == .values)
        #expect(UsageReader.usageMention(in: Array(#"data: {"usageMetadata":{"promptTokenCount":2}}"#.utf8)) == .values)
        #expect(UsageReader.usageMention(in: Array(#"data: {"delta":{"content":"usage notes"},"usage":null}"#.utf8)) == .values)
        let stream = """
        data: {"model":"gpt-5.4-mini-2026-03-05","choices":[{"delta":{"content":"Hi"}}],"usage":null}

        data: {"model":"gpt-5.4-mini-2026-03-05","choices":[{"delta":{}}],"usage":null}

        data: {"model":"gpt-5.4-mini-2026-03-05","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9}}

        data: [DONE]

        """
        for size in [1, 7, 4096] {
            let reader = read(stream, contentType: "text/event-stream", chunk: size)
            #expect(reader.counts == UsageCounts(inputTokens: 5, outputTokens: 9) && reader.model == "gpt-5.4-mini-2026-03-05", "chunk \(size)")
        }
        // Cut before its usage arrives, the stream still names the model it was served by.
        let broken = read(stream.components(separatedBy: "\n\n").prefix(2).joined(separator: "\n\n") + "\n\n", contentType: "text/event-stream", chunk: 3)
        #expect(broken.model == "gpt-5.4-mini-2026-03-05" && broken.counts == UsageCounts())
    }

    @Test("Anthropic streams: input in message_start, output in the cumulative message_delta")
    func anthropic() {
        let stream = """
        event: message_start
        data: {"type":"message_start","message":{"model":"claude-sonnet-4-6","usage":{"input_tokens":25,"output_tokens":1}}}

        event: content_block_delta
        data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"usage is a word"}}

        event: message_delta
        data: {"type":"message_delta","usage":{"output_tokens":15}}

        """
        let reader = read(stream, contentType: "text/event-stream", chunk: 11)
        #expect(reader.counts == UsageCounts(inputTokens: 25, outputTokens: 15) && reader.model == "claude-sonnet-4-6")
        let plain = #"{"type":"message","usage":{"input_tokens":8,"output_tokens":3}}"#
        #expect(read(plain, contentType: "application/json", chunk: 2).counts == UsageCounts(inputTokens: 8, outputTokens: 3))
    }

    @Test("Gemini's usageMetadata, streamed with CRLF lines; thoughts count as output")
    func gemini() {
        let stream = "data: {\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":1}}\r\n\r\n"
            + "data: {\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":5,\"thoughtsTokenCount\":2},\"modelVersion\":\"gemini-2.5-flash\"}\r\n\r\n"
        let reader = read(stream, contentType: "text/event-stream", chunk: 9)
        #expect(reader.counts == UsageCounts(inputTokens: 8, outputTokens: 7) && reader.model == "gemini-2.5-flash")
    }

    @Test("Gemini streamed without alt=sse (one JSON array of responses), Groq's x_groq.usage, and an answer with white space around it")
    func arraysAndVendorFields() {
        let array = """
        [{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":1},"modelVersion":"gemini-2.5-flash"},
         {"candidates":[{"content":{"parts":[{"text":" there"}]}}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":3,"thoughtsTokenCount":2}}]
        """
        for size in [1, 5, 64, 4096] {
            let reader = read(array, contentType: "application/json; charset=UTF-8", chunk: size)
            #expect(reader.counts == UsageCounts(inputTokens: 7, outputTokens: 5) && reader.model == "gemini-2.5-flash", "chunk \(size)")
        }
        let groq = """
        data: {"id":"c","model":"llama-3.3-70b-versatile","choices":[{"delta":{"content":"Hi"}}]}

        data: {"id":"c","model":"llama-3.3-70b-versatile","choices":[{"delta":{},"finish_reason":"stop"}],"x_groq":{"id":"req_1","usage":{"prompt_tokens":18,"completion_tokens":4,"total_tokens":22}}}

        data: [DONE]

        """
        #expect(read(groq, contentType: "text/event-stream", chunk: 9).counts == UsageCounts(inputTokens: 18, outputTokens: 4))
        let spaced = "\n  " + #"{"model":"m","usage":{"prompt_tokens":2,"completion_tokens":3}}"# + "\r\n"
        #expect(read(spaced, contentType: "application/json", chunk: 3).counts == UsageCounts(inputTokens: 2, outputTokens: 3))
        // Not an array of objects, or not valid: nothing is read.
        #expect(read("[1, 2]", contentType: "application/json", chunk: 1).counts == UsageCounts())
        #expect(read(#"[{"usageMetadata":{"promptTokenCount":1}}"#, contentType: "application/json", chunk: 4).counts == UsageCounts())
    }

    @Test("a body past the size limit is not kept, and nothing is guessed from it")
    func oversized() {
        var reader = UsageReader(contentType: "application/json")
        reader.feed(Array(repeating: UInt8(ascii: " "), count: UsageReader.maximumBodySize))
        reader.feed(Array(#"{"usage":{"prompt_tokens":1}}"#.utf8))
        reader.finish()
        #expect(reader.counts == UsageCounts())
    }

    @Test("request facts: the model from the body or Gemini's path, stream, and spoken characters")
    func requestFacts() {
        let body = Array(#"{"model":"gpt-5.4-mini","stream":true,"input":"Hello there"}"#.utf8)
        #expect(RequestFacts.read(body: body, path: "/v1/audio/speech") == RequestFacts(model: "gpt-5.4-mini", stream: true, characters: 11, isJSONObject: true))
        #expect(RequestFacts.read(body: nil, path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
                == RequestFacts(model: "gemini-2.5-flash", stream: true))
        #expect(RequestFacts.read(body: Array("not json".utf8), path: "/v1/x") == RequestFacts())
        #expect(RequestFacts.read(body: Array(#"{"text":"abc","model_id":"eleven_v3"}"#.utf8), path: "/v1/text-to-speech/v").model == "eleven_v3")
    }
}
