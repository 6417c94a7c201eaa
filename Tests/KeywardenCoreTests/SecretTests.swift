import Foundation
import Testing
@testable import KeywardenCore

@Suite("Secret")
struct SecretTests {
    let canary = "sk-canary-7f3e9b2c4d1a8e6f0b5c"

    @Test("printing, interpolating, dumping and encoding never show the value")
    func neverPrinted() throws {
        let secret = Secret(canary)
        var dumped = ""
        dump(secret, to: &dumped)
        let outputs = [
            secret.description, secret.debugDescription, "\(secret)", String(describing: secret),
            String(reflecting: secret), dumped, "\([secret])", "\(["k": secret])", "\(Optional(secret) as Any)",
            String(decoding: try JSONEncoder().encode(secret), as: UTF8.self),
            String(decoding: try JSONEncoder().encode(["key": secret]), as: UTF8.self),
        ]
        // The stored bytes would print as numbers, not as the string: reflection must expose nothing at all.
        #expect(Mirror(reflecting: secret).children.isEmpty)
        for output in outputs {
            #expect(!output.contains(canary), "\(output)")
            #expect(!output.contains("7f3e9b"), "\(output)")
        }
    }

    @Test("decoding takes the plaintext from a request body")
    func decodesPlaintext() throws {
        let decoded = try JSONDecoder().decode([String: Secret].self, from: Data(#"{"api_key": "sk-abc"}"#.utf8))
        #expect(decoded["api_key"]?.unprotectedString == "sk-abc")
    }

    @Test("equality compares the values")
    func equality() {
        #expect(Secret("a") == Secret("a"))
        #expect(Secret("a") != Secret("b"))
        #expect(Secret("a") != Secret("ab"))
    }

    @Test("masked hints show a short prefix and the last four characters only")
    func maskedHints() {
        #expect(Secret("sk-proj-abcdefghijklmnopqrstuvwxyza1b2").maskedHint == "sk-…a1b2")
        #expect(Secret("AIzaSyA-abcdefghijklmnopq9z8y").maskedHint == "AIz…9z8y")
        #expect(Secret("shortkey1234").maskedHint == "…34")
        #expect(Secret("abc").maskedHint == "…")
        #expect(Secret("").maskedHint == "")
    }

    @Test("blank means empty or whitespace")
    func blank() {
        #expect(Secret("").isBlank && Secret("  \n").isBlank && !Secret(" x ").isBlank)
    }
}

@Suite("Field templates and scopes")
struct FieldTemplateTests {
    @Test("placeholders are filled from field values; a missing one gives nil")
    func render() {
        let template = FieldTemplate("https://{region}.api.cognitive.microsoft.com/{path}")
        #expect(template.placeholders == ["region", "path"])
        #expect(template.render(["region": "westeurope", "path": "sts"]) == "https://westeurope.api.cognitive.microsoft.com/sts")
        #expect(template.render(["region": "westeurope"]) == nil)
    }

    @Test("scopes round-trip through their text form")
    func scopeText() {
        #expect(Scope("platform") == .platform)
        #expect(Scope("workspace:ws_1") == .workspace("ws_1"))
        #expect(Scope(Scope.workspace("a:b").description) == .workspace("a:b"))
        #expect(Scope("workspace:") == nil && Scope("team:1") == nil)
    }

    @Test("identifiers carry their prefix and do not repeat")
    func identifiers() {
        let ids = (0..<1000).map { _ in Identifier.make("key") }
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.hasPrefix("key_") && $0.count == 30 })
        // Every character of the alphabet turns up at every place (the bytes are random, not zero or repeated).
        let alphabet = Set("0123456789abcdefghjkmnpqrstvwxyz")
        for place in 4..<30 {
            let seen = Set(ids.map { Array($0)[place] })
            #expect(seen.isSubset(of: alphabet) && seen.count >= 28, "place \(place): \(seen.count) letters")
        }
    }
}
