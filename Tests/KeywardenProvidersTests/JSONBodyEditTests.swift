import Foundation
import KeywardenCore
import Testing
@testable import KeywardenProviders

/// Editing a JSON request body (filling in what it left out, setting a model, asking a stream for usage) without touching what the caller wrote.
@Suite("JSON body edits")
struct JSONBodyEditTests {
    func fill(_ body: String, _ members: [(String, String)]) -> String? {
        guard let editable = JSONBodyEdit(Array(body.utf8)) else { return nil }
        return String(decoding: editable.filled(with: members.map { CallDefaultsPlan.Member(name: $0.0, json: $0.1) }), as: UTF8.self)
    }

    @Test("absent members are added at the front; the caller's bytes stay as written")
    func addsAtTheFront() throws {
        let body = #"{ "messages": [{"role":"user","content":"hi \u00e9"}], "temperature": 0.70, "big": 12345678901234567890 }"#
        let filled = try #require(fill(body, [("model", #""claude-haiku-4-5""#), ("max_tokens", "4096")]))
        #expect(filled == #"{"model":"claude-haiku-4-5","max_tokens":4096, "messages": [{"role":"user","content":"hi \u00e9"}], "temperature": 0.70, "big": 12345678901234567890 }"#)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(filled.utf8)) as? [String: Any])
        #expect(object["max_tokens"] as? Int == 4096)
    }

    @Test("an empty object takes no trailing comma")
    func emptyObject() {
        #expect(fill("{}", [("model", #""m""#)]) == #"{"model":"m"}"#)
        #expect(fill(" { \n } ", [("model", #""m""#), ("max_tokens", "1")]) == " {\"model\":\"m\",\"max_tokens\":1 \n } ")
    }

    @Test("null, and a model of \"default\", count as left out and are replaced in place")
    func replacesNullAndDefault() throws {
        let editable = try #require(JSONBodyEdit(Array(#"{"model":"default","max_tokens":null,"stream":true}"#.utf8)))
        #expect(editable.leavesOut("model") && editable.leavesOut("max_tokens") && editable.leavesOut("voice"))
        #expect(!editable.leavesOut("stream"))
        #expect(fill(#"{"model":"default","max_tokens":null,"stream":true}"#, [("model", #""m""#), ("max_tokens", "8")])
                == #"{"model":"m","max_tokens":8,"stream":true}"#)
        // "default" means the key's model only for a model; elsewhere it is the caller's value.
        let other = try #require(JSONBodyEdit(Array(#"{"voice":"default","model":"Default"}"#.utf8)))
        #expect(!other.leavesOut("voice") && !other.leavesOut("model"))
    }

    @Test("a body that is not one JSON object, or names a member twice, is never edited")
    func refusesWhatItCannotRead() {
        for body in ["", "[]", "null", #"{"model":"a""#, #"{"model":"a","model":"b"}"#, #"{"a":1,}"#, "{} {}", #""text""#, "multipart junk"] {
            #expect(JSONBodyEdit(Array(body.utf8)) == nil, "\(body)")
        }
    }

    @Test("a replaced member keeps its place; every other byte (member order, 1.0, escapes, white space) is kept")
    func replacesInPlace() throws {
        let body = "{\n  \"response_format\": {\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"properties\":{\"zeta\":{},\"alpha\":{},\"mu\":{}}}}},\n  \"model\" : \"openai/gpt-5.4\",\n  \"temperature\": 1.0, \"top_p\": 1e0, \"x\": \"\\u00e9\\/\"\n}\n"
        var edit = try #require(JSONBodyEdit(Array(body.utf8)))
        edit.set("model", json: #""gpt-5.4""#)
        let expected = body.replacingOccurrences(of: "\"openai/gpt-5.4\"", with: "\"gpt-5.4\"")
        #expect(String(decoding: edit.bytes, as: UTF8.self) == expected)
        // A second edit lands where the first left things.
        edit.set("include_usage", in: "stream_options", json: "true")
        edit.set("model", json: #""gpt-5.4-mini""#)
        #expect(String(decoding: edit.bytes, as: UTF8.self)
                == "{\"stream_options\":{\"include_usage\":true}," + expected.dropFirst().replacingOccurrences(of: "\"gpt-5.4\"", with: "\"gpt-5.4-mini\""))
    }

    @Test("a nested member is set inside the caller's object, keeping its other members; a parent that is not an object is replaced")
    func setsNestedMembers() throws {
        func nested(_ body: String) throws -> String {
            var edit = try #require(JSONBodyEdit(Array(body.utf8)))
            edit.set("include_usage", in: "stream_options", json: "true")
            return String(decoding: edit.bytes, as: UTF8.self)
        }
        #expect(try nested(#"{"stream":true,"stream_options":{"include_obfuscation":false}}"#)
                == #"{"stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false}}"#)
        #expect(try nested(#"{"stream":true,"stream_options":{"include_usage":false, "a":1.50}}"#)
                == #"{"stream":true,"stream_options":{"include_usage":true, "a":1.50}}"#)
        #expect(try nested(#"{"stream":true,"stream_options": { } }"#) == #"{"stream":true,"stream_options": {"include_usage":true } }"#)
        for odd in [#""yes""#, "null", "[]", "5", #"{"a":1,"a":2}"#] {
            #expect(try nested(#"{"stream":true,"stream_options":\#(odd)}"#) == #"{"stream":true,"stream_options":{"include_usage":true}}"#, "\(odd)")
        }
        #expect(try nested(#"{"stream":true}"#) == #"{"stream_options":{"include_usage":true},"stream":true}"#)
    }

    @Test("every edit of many random bodies changes only the edited value: the rest is the caller's bytes, in order")
    func editsKeepTheRestOfManyBodies() throws {
        var generator = SystemRandomNumberGenerator()
        let values = ["1.0", "1e3", "-0", "\"a\\u0041\\/\"", "[1, 2.50]", "{\"z\":1,\"a\":2}", "null", "true", " \"sp\" "]
        for _ in 0..<200 {
            let names = (0..<Int.random(in: 1...8, using: &generator)).map { "k\($0)" }.shuffled(using: &generator)
            let chosen = names.map { ($0, values.randomElement(using: &generator) ?? "0") }
            let members = chosen.map { "\"\($0.0)\":\($0.1)" }
            let target = try #require(chosen.randomElement(using: &generator))
            let body = "{" + members.joined(separator: Bool.random(using: &generator) ? "," : " ,\n ") + "}"
            var edit = try #require(JSONBodyEdit(Array(body.utf8)), "\(body)")
            edit.set(target.0, json: "\"new\"")
            // Only the value's own bytes change: white space around it stays.
            let value = target.1.trimmingCharacters(in: .whitespaces)
            let member = "\"\(target.0)\":" + target.1.replacingOccurrences(of: value, with: "\"new\"")
            #expect(String(decoding: edit.bytes, as: UTF8.self) == body.replacingOccurrences(of: "\"\(target.0)\":\(target.1)", with: member), "\(body)")
        }
    }
}

