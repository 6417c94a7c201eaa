import Foundation
import KeywardenCore
import Testing
@testable import KeywardenProviders

/// Filling in what a JSON request body left out, without touching what the caller wrote.
@Suite("Request body defaults")
struct RequestBodyDefaultsTests {
    func fill(_ body: String, _ members: [(String, String)]) -> String? {
        guard let editable = RequestBodyDefaults(Array(body.utf8)) else { return nil }
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
        let editable = try #require(RequestBodyDefaults(Array(#"{"model":"default","max_tokens":null,"stream":true}"#.utf8)))
        #expect(editable.leavesOut("model") && editable.leavesOut("max_tokens") && editable.leavesOut("voice"))
        #expect(!editable.leavesOut("stream"))
        #expect(fill(#"{"model":"default","max_tokens":null,"stream":true}"#, [("model", #""m""#), ("max_tokens", "8")])
                == #"{"model":"m","max_tokens":8,"stream":true}"#)
        // "default" means the key's model only for a model; elsewhere it is the caller's value.
        let other = try #require(RequestBodyDefaults(Array(#"{"voice":"default","model":"Default"}"#.utf8)))
        #expect(!other.leavesOut("voice") && !other.leavesOut("model"))
    }

    @Test("a body that is not one JSON object, or names a member twice, is never edited")
    func refusesWhatItCannotRead() {
        for body in ["", "[]", "null", #"{"model":"a""#, #"{"model":"a","model":"b"}"#, #"{"a":1,}"#, "{} {}", #""text""#, "multipart junk"] {
            #expect(RequestBodyDefaults(Array(body.utf8)) == nil, "\(body)")
        }
    }
}
