import Foundation
import Testing
@testable import KeywardenProviders

/// The strict read of a request body: what every vendor's parser reads alike passes; anything some read otherwise is
/// named, with where it is.
@Suite("Request bodies read as every vendor reads them")
struct RequestBodyCheckTests {
    func verdict(_ text: String) -> RequestBodyCheck.Verdict { RequestBodyCheck.check(Array(text.utf8)) }

    func refused(_ text: String) -> String? {
        if case .unreadable(let why) = verdict(text) { return why }
        return nil
    }

    @Test("ordinary bodies pass: chat, tools with nested schemas, unicode text and escapes, numbers of every spelling, white space around")
    func ordinaryBodiesPass() {
        let bodies = [
            #"{"model":"gpt-4.1","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true}}"#,
            #"  {"model":"claude","max_tokens":1024,"messages":[{"role":"user","content":"caf\u00e9 \ud83d\ude00 \"q\" \\ / \n"}]}"# + "\n",
            #"{"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"array","items":{"type":"number"}}}}}}]}"#,
            #"{"temperature":0.7,"top_p":1.0,"n":1,"seed":-12,"x":1e3,"y":1.5E-7,"z":0,"w":-0.0}"#,
            #"{"contents":[{"parts":[{"text":"日本語のテキスト"}]}],"generationConfig":{"maxOutputTokens":200}}"#,
            #"{"a":{"stream":true},"b":{"stream":false}}"#, // the same name in different objects
            "{}",
        ]
        for body in bodies { #expect(verdict(body) == .readable, "\(body)") }
    }

    @Test("a member named twice is refused wherever it is, spelled the same, escaped, or in another case; the message says which and where",
          arguments: [
              (#"{"stream":false,"stream":true}"#, #"duplicate member "stream" at $"#),
              (#"{"model":"a","messages":[],"model":"b"}"#, #"duplicate member "model" at $"#),
              (#"{"stream_options":{"include_usage":true,"include_usage":false}}"#, #"duplicate member "include_usage" at $.stream_options"#),
              (#"{"generationConfig":{"maxOutputTokens":10,"maxOutputTokens":99999}}"#, #"duplicate member "maxOutputTokens" at $.generationConfig"#),
              (#"{"messages":[{"role":"user","content":"a","content":"b"}]}"#, #"duplicate member "content" at $.messages[0]"#),
              (#"{"stream":false,"str\u0065am":true}"#, #"duplicate member "stream" at $"#),
              (#"{"stream":false,"STREAM":true}"#, #"members "stream" and "STREAM" that some parsers take for one at $"#),
              (#"{"max_tokens":10,"Max_Tokens":100000}"#, #"members "max_tokens" and "Max_Tokens" that some parsers take for one at $"#),
          ])
    func duplicatesAreRefused(body: String, reason: String) {
        #expect(refused(body) == reason)
    }

    @Test("a name with a letter that folds to ASCII (read as stream by Go's encoding/json) is refused, alone or beside its twin",
          arguments: ["{\"\u{17F}tream\":true}", "{\"stream\":false,\"\u{17F}tream\":true}", "{\"max_to\u{212A}ens\":5}", #"{"\u017ftream":true}"#])
    func foldingNamesAreRefused(body: String) {
        #expect(refused(body) != nil, "\(body)")
    }

    @Test("a lone surrogate, a number beyond a double, deep nesting, a byte-order mark, bytes that are not UTF-8 and broken JSON are each named",
          arguments: [
              (#"{"messages":[{"content":"\ud800"}]}"#, "a lone surrogate at $.messages[0].content"),
              (#"{"messages":[{"content":"x\udc00y"}]}"#, "a lone surrogate at $.messages[0].content"),
              (#"{"a":"\ud83d\u0041"}"#, "a lone surrogate at $.a"),
              (#"{"max_tokens":1e999}"#, "a number beyond a double's range at $.max_tokens"),
              (#"{"t":-1.5e400}"#, "a number beyond a double's range at $.t"),
              (#"{"model":"a"} {"model":"b"}"#, "text after the object at byte 13"),
              (#"["not","an","object"]"#, "the body is not one JSON object"),
              (#"{"a":tru}"#, "malformed JSON at $.a"),
              (#"{"a":01}"#, "malformed JSON (a comma or a closing brace expected) at $"),
              ("{\"a\":\"x\u{1}y\"}", "a control character in a string at $.a"),
          ])
    func hazardsAreNamed(body: String, reason: String) {
        #expect(refused(body) == reason)
    }

    @Test("nesting past the limit is refused without recursing into it; a byte-order mark and invalid UTF-8 are refused")
    func depthBOMAndUTF8() {
        let deep = String(repeating: #"{"a":"#, count: 200) + "1" + String(repeating: "}", count: 200)
        #expect(refused(deep)?.hasPrefix("nesting deeper than 128 levels at $") == true)
        let arrays = "{\"a\":" + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "}"
        #expect(refused(arrays)?.hasPrefix("nesting deeper than 128 levels") == true)
        #expect(RequestBodyCheck.check([0xEF, 0xBB, 0xBF] + Array(#"{"model":"a"}"#.utf8)) == .unreadable("a byte-order mark starts the body"))
        #expect(RequestBodyCheck.check(Array(#"{"model":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)) == .unreadable("a string that is not UTF-8 at $.model"))
        #expect(RequestBodyCheck.check(Array(#"{""#.utf8) + [0xFF] + Array(#"":1}"#.utf8)) == .unreadable("a string that is not UTF-8 at $"))
    }

    @Test("what a vendor takes for JSON: a JSON content type, or a body that opens an object or array whatever its type says")
    func looksLikeJSON() {
        #expect(RequestBodyCheck.looksLikeJSON(Array("x".utf8), contentType: "application/json; charset=utf-8"))
        #expect(RequestBodyCheck.looksLikeJSON(Array(" \n{\"a\":1}".utf8), contentType: "text/plain"))
        #expect(RequestBodyCheck.looksLikeJSON([0xEF, 0xBB, 0xBF] + Array("{}".utf8), contentType: nil))
        #expect(RequestBodyCheck.looksLikeJSON(Array("[1]".utf8), contentType: "application/octet-stream"))
        #expect(!RequestBodyCheck.looksLikeJSON(Array("--boundary\r\n".utf8), contentType: "multipart/form-data; boundary=boundary"))
        #expect(!RequestBodyCheck.looksLikeJSON([0x52, 0x49, 0x46, 0x46], contentType: "audio/wav"))
    }

    @Test("messages never carry more than a bounded, printable form of a name")
    func namesInMessagesAreBounded() {
        let long = String(repeating: "n", count: 500)
        let reason = refused("{\"\(long)\":1,\"\(long)\":2}") ?? ""
        #expect(reason.count < 120 && reason.contains("…"))
        let control = refused(#"{"x":{"a\u0001b":1,"a\u0001b":2}}"#) ?? ""
        #expect(control == "a member name with a control character at $.x", "\(control)")
    }
}

/// The members the meter reads, read as strictly as the loosest vendor reads them; the caller's own names left alone.
@Suite("Request bodies: the metered members")
struct MeteredMemberTests {
    func refused(_ text: String) -> String? {
        if case .unreadable(let why) = RequestBodyCheck.check(Array(text.utf8)) { return why }
        return nil
    }

    @Test("a metered member spelled as some parser matches it (case, underscores, folding letters) is refused, alone or not",
          arguments: [#"{"STREAM":true}"#, #"{"Max_Tokens":9}"#, #"{"maxtokens":9}"#, #"{"max-tokens":9}"#, #"{"Model":"x"}"#,
                      "{\"\u{131}nput\":\"x\"}", #"{"stream_options":{"IncludeUsage":true}}"#, #"{"generationConfig":{"MaxOutputTokens":5}}"#,
                      #"{"generationConfig":{"maxOutputTokens":5,"max_output_tokens":9}}"#, #"{"maxOutputTokens":5}"#])
    func looseSpellingsAreRefused(body: String) {
        #expect(refused(body) != nil, "\(body)")
    }

    @Test("a metered member of another type than the meter reads is refused (pydantic turns \"4096\" into a number, \"true\" into true)",
          arguments: [#"{"max_tokens":"4096"}"#, #"{"stream":"true"}"#, #"{"stream":1}"#, #"{"n":2.5}"#, #"{"n":"8"}"#, #"{"model":7}"#,
                      #"{"stream_options":{"include_usage":"yes"}}"#, #"{"stream_options":true}"#, #"{"generationConfig":{"maxOutputTokens":"9"}}"#,
                      #"{"max_tokens":1e20}"#])
    func otherTypesAreRefused(body: String) {
        #expect(refused(body)?.hasPrefix("a value of another type than the meter reads") == true, "\(body): \(refused(body) ?? "passed")")
    }

    @Test("two names vendors read for the same thing are refused together, allowed alone", arguments: [
        (#"{"model":"a","model_id":"b"}"#, true), (#"{"text":"a","input":"b"}"#, true), (#"{"model_id":"b"}"#, false), (#"{"input":["a"]}"#, false),
    ])
    func aliases(body: String, refusedExpected: Bool) {
        #expect((refused(body) != nil) == refusedExpected, "\(body)")
    }

    @Test("the caller's own names (a tool's schema, messages, metadata) are not the meter's: same-name members elsewhere, case variants and types pass")
    func callersNamesPass() {
        let bodies = [
            #"{"model":"m","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"model":{"type":"string"},"Model":{"type":"integer"},"user_id":{},"userId":{},"stream":{"enum":[1]},"n":{"type":"number"},"text":{"type":"object"}}}}}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"metadata":{"STREAM":"x","Max_Tokens":"y"}}"#,
            #"{"model":"m","max_tokens":4096,"n":1,"stream":false,"stream_options":null,"input":{"any":"thing"}}"#,
            #"{"model":"m","max_tokens":12.0,"generationConfig":{"maxOutputTokens":1e3,"temperature":0.5}}"#,
        ]
        for body in bodies { #expect(refused(body) == nil, "\(body): \(refused(body) ?? "")") }
    }

    @Test("UTF-16 and UTF-32 text is told by its byte-order mark or a NUL among its first bytes")
    func wideText() {
        var utf16LE: [UInt8] = []
        for unit in "{\"model\":\"m\"}".utf16 { utf16LE += [UInt8(unit & 0xFF), UInt8(unit >> 8)] }
        #expect(RequestBodyCheck.isWideText([0xFF, 0xFE] + utf16LE))
        #expect(RequestBodyCheck.isWideText(utf16LE))
        #expect(RequestBodyCheck.isWideText([0x00, 0x7B, 0x00, 0x22]))
        #expect(RequestBodyCheck.isWideText([0x00, 0x00, 0xFE, 0xFF]))
        #expect(!RequestBodyCheck.isWideText(Array(#"{"model":"m"}"#.utf8)))
        // Marks alone, a NUL at each of the first four places, and past them; short and empty bodies; a ByteBuffer-like
        // slice that does not start at index 0.
        #expect(RequestBodyCheck.isWideText([0xFE, 0xFF]) && RequestBodyCheck.isWideText([0xFF, 0xFE, 0x7B]))
        for place in 0..<4 {
            var body = Array(#"{"model":"m"}"#.utf8)
            body[place] = 0
            #expect(RequestBodyCheck.isWideText(body), "NUL at \(place)")
        }
        #expect(!RequestBodyCheck.isWideText(Array(#"{"mo"#.utf8) + [0x00]), "a NUL past the first four bytes is the JSON reader's to refuse")
        #expect(!RequestBodyCheck.isWideText([UInt8]()) && !RequestBodyCheck.isWideText([0xFF]) && !RequestBodyCheck.isWideText([0xFE, 0xFE]))
        #expect(RequestBodyCheck.isWideText((Array(#"xx{"#.utf8) + [0x00])[2...]))
        #expect(!RequestBodyCheck.isWideText([0x7B, 0xFF, 0xFE, 0x22]), "a mark counts only at the start")
    }

    @Test("a content type is searched and prefixed in any case, after blanks, and non-ASCII text is searched as characters")
    func contentTypeText() {
        for type in ["application/json", "APPLICATION/JSON", "application/vnd.api+Json; charset=utf-8", "image/x+json", "  text/json"] {
            #expect(ASCIIText.contains("json", ignoringCaseIn: type), "\(type)")
            #expect(RequestBodyCheck.looksLikeJSON([], contentType: type), "\(type)")
        }
        for type in ["", "application/octet-stream", "jso n", "application/js", "text/plain; x=\u{2028}jsoN"] {
            #expect(ASCIIText.contains("json", ignoringCaseIn: type) == type.lowercased().contains("json"), "\(type)")
        }
        #expect(ASCIIText.contains("json", ignoringCaseIn: "application/é+JSON"), "non-ASCII text is searched as characters")
        for (type, form) in [("multipart/form-data; boundary=x", true), (" \tMultipart/Form-Data;boundary=x", true), ("multipart/mixed", false),
                             ("xmultipart/form-data", false), ("multipart/form", false), ("", false)] {
            #expect(ASCIIText.hasPrefix("multipart/form-data", ignoringCaseAfterBlanks: type) == form, "\(type)")
            #expect(MultipartForm.isForm(type) == form, "\(type)")
        }
        #expect(!ASCIIText.hasPrefix("multipart/form-data", ignoringCaseAfterBlanks: "\u{A0}multipart/form-data"), "only spaces and tabs are blanks")
        // Non-ASCII text is compared as characters: a combining mark joins the byte before it into another character.
        #expect(!ASCIIText.hasPrefix("audio/", ignoringCaseAfterBlanks: "audio/\u{301}x") && !MultipartForm.isForm("multipart/form-data\u{301}; boundary=x"))
        #expect(ASCIIText.hasPrefix("audio/", ignoringCaseAfterBlanks: " AUDIO/é") && MultipartForm.isForm("Multipart/Form-Data; boundary=é"))
    }
}
