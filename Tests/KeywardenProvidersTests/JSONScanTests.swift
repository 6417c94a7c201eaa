import Foundation
import Testing
@testable import KeywardenProviders

@Suite("JSON scan")
struct JSONScanTests {
    static let documents: [String] = [
        #"{}"#, #" { } "#, #"{"model":"gpt-5.4-mini","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
        #"{"a":[1,-2.5e3,0,-0,1E+2,true,false,null,{"b":[[]]},"x"]}"#, #"{"s":"\u00e9\n\t\"\\\/\b\f\r"}"#, #"{"e":"\uD83D\uDE00"}"#,
        "{\"t\":\"caf\u{e9} \u{1F600}\"}", #"{"n":123456789012345678901234567890}"#,
        // Not one valid JSON object:
        #""#, #"[]"#, #""model""#, #"{"a" 1}"#, #"{"a":01}"#, #"{"a":1.}"#, #"{"a":.5}"#, #"{"a":-}"#, #"{"a":1e}"#,
        #"{"a":tru}"#, #"{"a":nul}"#, #"{"a":"x}"#, #"{"a":"\x"}"#, #"{"a":"\u12G4"}"#, #"{"a":"\uD83D"}"#, #"{"a":"\uDE00"}"#,
        "{\"a\":\"line\nbreak\"}", #"{"a":[1,2}"#, #"{"a":{"b":1]}"#, #"{"a":1} x"#, #"{"a":1}{}"#, #"{a:1}"#, #"{'a':1}"#, #"{"a":[,1]}"#,
        #"{"a":NaN}"#, #"{"a":+1}"#, #"{"a":1}"# + "\u{0}",
    ]

    @Test("accepts exactly the objects JSONSerialization accepts, and reads the same strings and numbers")
    func agreesWithJSONSerialization() throws {
        for document in Self.documents {
            let bytes = Array(document.utf8)
            let reference = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
            let scanned = JSONObject(bytes)
            #expect((scanned != nil) == (reference != nil), "\(document)")
            guard let scanned, let reference else { continue }
            #expect(Set(scanned.members.keys) == Set(reference.keys), "\(document)")
            for (name, value) in reference {
                if let text = value as? String { #expect(scanned.string(name) == text, "\(document)") }
            }
        }
        // Stricter than Foundation's parser, which takes a trailing comma: RFC 8259 does not, and neither do the vendors.
        #expect(JSONObject(Array(#"{"a":1,}"#.utf8)) == nil && JSONObject(Array(#"{"a":[1,]}"#.utf8)) == nil)
        // A name given twice: which value a vendor reads is unknown, so nothing is read from such an object.
        #expect(JSONObject(Array(#"{"model":"cheap","model":"expensive"}"#.utf8)) == nil)
        #expect(JSONObject(Array(#"{"o":{"x":1,"x":2}}"#.utf8))?.object("o") == nil)
        let invalidUTF8: [UInt8] = Array(#"{"model":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        #expect(JSONObject(invalidUTF8) == nil)
    }

    @Test("typed readers: a value of another type, a fraction or a number past Int reads as nil")
    func typedReaders() throws {
        let object = try #require(JSONObject(Array(#"{"i":42,"neg":-7,"f":1.5,"s":"42","b":true,"big":9223372036854775808,"max":9223372036854775807,"o":{"x":1}}"#.utf8)))
        #expect(object.int("i") == 42 && object.int("neg") == -7 && object.int("max") == Int.max)
        #expect(object.int("f") == nil && object.int("s") == nil && object.int("big") == nil && object.int("missing") == nil)
        let exact = try #require(JSONObject(Array(#"{"a":12.0,"b":1e3,"c":-2E+1,"d":1e300,"e":0.5}"#.utf8)))
        #expect(exact.int("a") == 12 && exact.int("b") == 1000 && exact.int("c") == -20 && exact.int("d") == nil && exact.int("e") == nil)
        #expect(object.bool("b") == true && object.bool("i") == nil && object.string("i") == nil && object.string("s") == "42")
        #expect(object.object("o")?.int("x") == 1 && object.object("s") == nil)
        #expect(JSONObject(Array(#"{"min":-9223372036854775808}"#.utf8))?.int("min") == Int.min)
    }

    @Test("hostile nesting is refused at the depth limit, without recursing further")
    func deepNestingRefused() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(JSONObject(Array(("{\"a\":" + deep + "}").utf8)) == nil)
        let fine = String(repeating: "[", count: 120) + String(repeating: "]", count: 120)
        #expect(JSONObject(Array(("{\"a\":" + fine + "}").utf8)) != nil)
    }

    @Test("request facts and usage are read as before: model, stream, stream_options, text, and each vendor's usage shape")
    func factsAndUsage() {
        let facts = RequestFacts.read(body: Array(#"{"model":5,"model_id":"m2","stream":true,"stream_options":{"include_usage":true},"input":"héllo"}"#.utf8), path: "/v1/x")
        #expect(facts == RequestFacts(model: "m2", stream: true, streamIncludesUsage: true, characters: 5, isJSONObject: true))
        #expect(RequestFacts.read(body: Array(#"{"model":"a","messages":[1,,2]}"#.utf8), path: "/") == RequestFacts())

        var openai = UsageReader(contentType: "application/json")
        openai.feed(Array(#"{"model":"gpt-5.4-mini","usage":{"prompt_tokens":12,"completion_tokens":"4","output_tokens":3}}"#.utf8))
        openai.finish()
        #expect(openai.counts.inputTokens == 12 && openai.counts.outputTokens == 3 && openai.model == "gpt-5.4-mini")

        var anthropic = UsageReader(contentType: "text/event-stream")
        anthropic.feed(Array("event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-4-6\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\r\n\r\n".utf8))
        anthropic.feed(Array("data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n".utf8))
        anthropic.finish()
        #expect(anthropic.counts.inputTokens == 25 && anthropic.counts.outputTokens == 15 && anthropic.model == "claude-sonnet-4-6")

        var gemini = UsageReader(contentType: "application/json")
        gemini.feed(Array(#"{"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":3,"thoughtsTokenCount":2},"modelVersion":"gemini-2.5-flash"}"#.utf8))
        gemini.finish()
        #expect(gemini.counts.inputTokens == 7 && gemini.counts.outputTokens == 5 && gemini.model == "gemini-2.5-flash")

        // Anthropic's cached prompt tokens are counted apart from input_tokens: the prompt is all of them.
        var cached = UsageReader(contentType: "application/json")
        cached.feed(Array(#"{"usage":{"input_tokens":12,"cache_creation_input_tokens":1000,"cache_read_input_tokens":90000,"output_tokens":40}}"#.utf8))
        cached.finish()
        #expect(cached.counts.inputTokens == 91_012 && cached.counts.outputTokens == 40)
        // A speech request's characters are code points: combining marks count.
        #expect(RequestFacts.read(body: Array("{\"text\":\"a\u{301}\u{301}\"}".utf8), path: "/v1/text-to-speech/x").characters == 3)

        var lying = UsageReader(contentType: "application/json")
        lying.feed(Array(#"{"usage":{"prompt_tokens":-5,"completion_tokens":99999999999999999999}}"#.utf8))
        lying.finish()
        #expect(lying.counts.inputTokens == nil && lying.counts.outputTokens == nil)
    }
}
