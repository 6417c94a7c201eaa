import Testing
@testable import KeywardenProviders

@Suite("Usage-only events")
struct UsageEventFilterTests {
    let stream = """
        data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"}}],"usage":null}

        data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}],"usage":null}

        data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}

        data: [DONE]


        """

    var expected: String {
        stream.replacingOccurrences(of: #"data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"# + "\n\n", with: "")
    }

    @Test("the usage-only event is left out and every other byte passes, wherever the chunks are cut")
    func everyCut() {
        let bytes = Array(stream.utf8)
        #expect(expected.count < stream.count && expected.contains("[DONE]") && expected.contains(#""content":"lo""#))
        for cut in 0...bytes.count {
            var filter = UsageEventFilter()
            var out = filter.pass(bytes[..<cut])
            out += filter.pass(bytes[cut...])
            out += filter.finish()
            #expect(String(decoding: out, as: UTF8.self) == expected, "cut at \(cut)")
        }
        // One byte at a time, in LF and in CRLF streams.
        for text in [stream, stream.replacingOccurrences(of: "\n", with: "\r\n")] {
            var filter = UsageEventFilter()
            var out: [UInt8] = []
            for byte in text.utf8 { out += filter.pass([byte]) }
            out += filter.finish()
            let want = text == stream ? expected : expected.replacingOccurrences(of: "\n", with: "\r\n")
            #expect(String(decoding: out, as: UTF8.self) == want)
        }
    }

    @Test("an event is passed on as soon as its blank line arrives; CRLF streams and spaced JSON are read too")
    func promptAndVariants() {
        var filter = UsageEventFilter()
        #expect(filter.pass(Array("data: {\"choices\":[{\"delta\":{}}]}\n".utf8)).isEmpty)
        #expect(String(decoding: filter.pass(Array("\ndata: {\"cho".utf8)), as: UTF8.self) == "data: {\"choices\":[{\"delta\":{}}]}\n\n")

        var crlf = UsageEventFilter()
        let spaced = "data: {\"choices\": [], \"usage\": {\"prompt_tokens\": 1}}\r\n\r\ndata: [DONE]\r\n\r\n"
        #expect(String(decoding: crlf.pass(Array(spaced.utf8)) + crlf.finish(), as: UTF8.self) == "data: [DONE]\r\n\r\n")

        // Empty choices without usage, or usage with choices, are ordinary events.
        var ordinary = UsageEventFilter()
        let kept = "data: {\"choices\":[],\"usage\":null}\n\ndata: {\"choices\":[{}],\"usage\":{\"prompt_tokens\":1}}\n\n"
        #expect(String(decoding: ordinary.pass(Array(kept.utf8)), as: UTF8.self) == kept)
    }
}
