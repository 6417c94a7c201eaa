import Foundation
@testable import KeywardenProviders
import Testing

/// SplitMix64: a seeded generator, so a failure names its seed and reproduces.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Scrubbing secrets from what vendors send back")
struct SecretScrubberTests {
    /// Whether any `length`-byte run of `form` (or all of it, when shorter) appears in `output`.
    func containsRun(of form: [UInt8], in output: [UInt8], length: Int = 8) -> Bool {
        let length = min(length, form.count)
        guard output.count >= length else { return false }
        var seen = Set<ArraySlice<UInt8>>()
        for start in 0...(output.count - length) { seen.insert(output[start..<start + length]) }
        for start in 0...(form.count - length) where seen.contains(form[start..<start + length]) { return true }
        return false
    }

    func contains(_ output: [UInt8], _ text: String) -> Bool {
        containsRun(of: Array(text.utf8), in: output, length: text.utf8.count)
    }

    /// The key inside a JSON string as `JSONSerialization` writes it (`/` as `\/`).
    func jsonSerializationEscaped(_ key: String) throws -> [UInt8] {
        let data = try JSONSerialization.data(withJSONObject: [key])
        return Array(data.dropFirst(2).dropLast(2))  // ["…"]
    }

    func jsonEncoderEscaped(_ key: String) throws -> [UInt8] {
        Array(try JSONEncoder().encode([key]).dropFirst(2).dropLast(2))
    }

    func percentEncoded(_ key: String) throws -> String {
        var unreserved = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        unreserved.insert(charactersIn: "-._~")
        return try #require(key.addingPercentEncoding(withAllowedCharacters: unreserved))
    }

    /// Lower-case hex in every `%XX`.
    func lowerHex(_ encoded: String) -> String {
        var result = ""
        var pending = 0
        for character in encoded {
            if character == "%" { pending = 2; result.append(character); continue }
            result += pending > 0 ? character.lowercased() : String(character)
            pending = max(0, pending - 1)
        }
        return result
    }

    static let printable = Array(" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~")

    @Test("1,000 random keys are removed raw, JSON-escaped, URL-encoded, base64-encoded and among invalid UTF-8; text far from them stays")
    func randomKeys() throws {
        let seed: UInt64 = 0x5EC2_E75C_2B8B_0001
        var random = SeededGenerator(state: seed)
        var failures = 0
        for index in 0..<1000 where failures < 5 {
            let key = String((0..<Int.random(in: 8...200, using: &random)).map { _ in Self.printable.randomElement(using: &random)! })
            let keyBytes = Array(key.utf8)
            let scrubber = SecretScrubber(secrets: [key])
            let far = "far-away-text-\(index)"
            let label = "seed \(seed), key #\(index): \(key)"
            var ok = true
            func check(_ condition: Bool, _ what: String) {
                if !condition { ok = false; Issue.record("\(what) — \(label)") }
            }

            // Raw, inside prose.
            let raw = scrubber.scrub(bytes: Array("\(far) lorem ipsum: \(key) dolor sit amet \(far)".utf8))
            check(!containsRun(of: keyBytes, in: raw), "raw: a run of the key is left")
            check(raw.starts(with: Array("\(far) lorem ipsum: ".utf8)) && contains(raw, " dolor sit amet \(far)"), "raw: the text around the key is cut")

            // JSON-escaped, as JSONSerialization and JSONEncoder write it.
            let object = ["error": ["message": "Incorrect API key provided: \(key).", "far": far]]
            let json = scrubber.scrub(bytes: Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])))
            check(!containsRun(of: try jsonSerializationEscaped(key), in: json), "JSONSerialization: a run of the escaped key is left")
            check(contains(json, #""far":"\#(far)""#) && contains(json, "Incorrect API key provided: "), "JSONSerialization: the text around the key is cut")
            let encoded = scrubber.scrub(bytes: Array(try JSONEncoder().encode(object)))
            check(!containsRun(of: try jsonEncoderEscaped(key), in: encoded), "JSONEncoder: a run of the escaped key is left")
            check(contains(encoded, far), "JSONEncoder: the text around the key is cut")

            // URL-encoded: upper- and lower-case hex, and + for space.
            let upper = try percentEncoded(key)
            for form in [upper, lowerHex(upper), upper.replacingOccurrences(of: "%20", with: "+")] {
                let url = scrubber.scrub(bytes: Array("GET https://vendor.example/v1/models?user=\(far)&key=\(form)&next=\(far)".utf8))
                check(!containsRun(of: Array(form.utf8), in: url), "URL: a run of the encoded key is left (\(form))")
                check(url.starts(with: Array("GET https://vendor.example/v1/models?user=\(far)&key=".utf8)) && contains(url, "&next=\(far)"),
                      "URL: the text around the key is cut")
            }

            // Base64 of surrounding bytes with the key at a random offset, both alphabets.
            let prefix = (0..<Int.random(in: 0...40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let suffix = (0..<Int.random(in: 0...40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let standard = Array(Data(prefix + keyBytes + suffix).base64EncodedString().utf8)
            let urlSafe = standard.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: "-") : $0 == UInt8(ascii: "/") ? UInt8(ascii: "_") : $0 }
            // Characters first..<end depend on the key's bits alone.
            let first = (prefix.count * 8 + 5) / 6, end = (prefix.count + keyBytes.count) * 8 / 6
            for base64 in [standard, urlSafe] {
                let output = scrubber.scrub(bytes: Array("data: ".utf8) + base64 + Array(" \(far)".utf8))
                check(!containsRun(of: Array(base64[first..<end]), in: output), "base64 at offset \(prefix.count): a run of the key's characters is left")
                check(output.starts(with: Array("data: ".utf8) + base64[..<max(0, first - 1)]), "base64: the characters of the bytes before the key are cut")
                check(output.suffix(far.utf8.count + 1 + max(0, base64.count - end - 1)) == ArraySlice(base64[min(base64.count, end + 1)...] + Array(" \(far)".utf8)),
                      "base64: the characters of the bytes after the key are cut")
            }

            // Among bytes that are not UTF-8.
            let invalid: [UInt8] = [0xFF, 0xFE] + Array(" \(far) ".utf8) + [0xC3, 0x28, 0xED, 0xA0, 0x80, 0x20] + keyBytes + [0x80, 0xBF, 0xF0, 0x9F]
                + Array(" \(far) ".utf8) + [0xFF]
            let bytes = scrubber.scrub(bytes: invalid)
            check(!containsRun(of: keyBytes, in: bytes), "invalid UTF-8: a run of the key is left")
            check(bytes.starts(with: [0xFF, 0xFE] + Array(" \(far) ".utf8) + [0xC3, 0x28, 0xED, 0xA0, 0x80, 0x20]) && bytes.last == 0xFF
                  && bytes.filter { $0 == 0xFF }.count == 2, "invalid UTF-8: the bytes around the key are cut")
            if !ok { failures += 1 }
        }
    }

    @Test("a masked echo loses every run of 8 or more bytes of the key, and nothing else")
    func maskedEcho() {
        let scrubber = SecretScrubber(secrets: ["sk-proj-abcdefghijklmnopqrstuvwxyz1234"])
        #expect(scrubber.scrub("Incorrect API key provided: sk-proj-****************wxyz1234. You can find your API key at https://platform.example/keys.")
            == "Incorrect API key provided: [redacted]****************[redacted]. You can find your API key at https://platform.example/keys.")
        // Seven bytes of the key are not enough to name it: kept, as before.
        #expect(scrubber.scrub("ends with xyz1234") == "ends with xyz1234")
        #expect(scrubber.scrub("Key sk-proj-abcdefghijklmnopqrstuvwxyz1234 and fragment ghijklmnop are wrong") == "Key [redacted] and fragment [redacted] are wrong")
        // A run of the key next to another run of it, or of another key, is one [redacted].
        let two = SecretScrubber(secrets: ["first-secret-AAAA", "second-secret-BBBB"])
        #expect(two.scrub("x first-secret-AAAAsecond-secret-BBBB y") == "x [redacted] y")
    }

    @Test("a secret shorter than 8 bytes is removed where it appears whole; one shorter than 4 is not a secret")
    func shortSecrets() {
        let scrubber = SecretScrubber(secrets: ["abc", "wxyz", "k3y-42"])
        #expect(scrubber.scrub("abc wxyz k3y-42 k3y-4 xyz") == "abc [redacted] [redacted] k3y-4 xyz")
        // Its JSON-escaped form is 8 bytes or more: any 8 of them go.
        let quoted = SecretScrubber(secrets: [#"a"b/c\d"#])
        let json = String(decoding: try! JSONSerialization.data(withJSONObject: ["m": #"a"b/c\d"#]), as: UTF8.self)
        #expect(json.contains(#"a\"b\/c\\d"#))
        #expect(quoted.scrub(json) == #"{"m":"[redacted]"}"#)
        #expect(quoted.scrub(#"raw: a"b/c\d."#) == "raw: [redacted].")
    }

    @Test("a text without a secret comes back unchanged, byte for byte")
    func noSecret() {
        let scrubber = SecretScrubber(secrets: ["sk-live-0123456789abcdef"])
        let text = "{\"error\":{\"message\":\"Rate limit reached for gpt-5.4 in organization org-123 on tokens per min. Limit: 30000.\"}}\r\n\u{0}é🔑"
        #expect(scrubber.scrub(text) == text)
        #expect(Array(scrubber.scrub(text).utf8) == Array(text.utf8))
        let bytes: [UInt8] = [0xFF, 0x00, 0xC3, 0x28, 0x73, 0x6B, 0x2D, 0x6C, 0x69, 0x76, 0x65, 0x80]  // "sk-live": 7 bytes of the key
        #expect(scrubber.scrub(bytes: bytes) == bytes)
        #expect(SecretScrubber(secrets: []).scrub(text) == text)
        #expect(scrubber.scrub("") == "" && scrubber.scrub(bytes: []) == [])
    }

    @Test("bytes that are not UTF-8 are scrubbed and otherwise kept")
    func invalidUTF8() {
        let scrubber = SecretScrubber(secrets: ["sk-ant-api03-SECRETSECRET"])
        let body: [UInt8] = [0xFF, 0xFE, 0x41] + Array("sk-ant-api03-SECRETSECRET".utf8) + [0x42, 0xC3] + Array("api03-SEC".utf8) + [0xED, 0xA0, 0x80]
        #expect(scrubber.scrub(bytes: body) == [0xFF, 0xFE, 0x41] + Array("[redacted]".utf8) + [0x42, 0xC3] + Array("[redacted]".utf8) + [0xED, 0xA0, 0x80])
    }

    @Test("a removed run never cuts a UTF-8 character, so a string stays valid")
    func characterBoundaries() {
        // The text's "¨" is C2 A8; the key's "è" is C3 A8: the match "\xA8te-tr\xC3\xA8…" starts at A8, and takes C2 with it.
        let scrubber = SecretScrubber(secrets: ["clé-secrète-très-longue"])
        let text = "x\u{A8}te-tr\u{E8}s-longue y"
        let cleaned = scrubber.scrub(text)
        #expect(cleaned == "x[redacted] y")
        #expect(!cleaned.unicodeScalars.contains("\u{FFFD}"))
    }

    @Test("the forms: as sent, upper- and lower-case, spaces as +, base64 at each offset; escapes are undone, not listed")
    func forms() {
        let forms = SecretScrubber.forms(of: Array("Key one/é".utf8)).map { String(decoding: $0, as: UTF8.self) }
        #expect(forms.contains("Key one/é") && forms.contains("KEY ONE/é") && forms.contains("key one/é") && forms.contains("Key+one/é"))
        #expect(!forms.contains { $0.contains("%") || $0.contains("\\") })
        // base64("sk-abc") = c2stYWJj; with one byte before, the first two characters and the last one depend on the neighbours.
        #expect(SecretScrubber.base64Interior(Array("sk-abc".utf8), offset: 0, alphabet: SecretScrubber.base64Standard) == Array("c2stYWJj".utf8))
        let shifted = Array(Data([0] + Array("sk-abc".utf8) + [0]).base64EncodedString().utf8)
        #expect(SecretScrubber.base64Interior(Array("sk-abc".utf8), offset: 1, alphabet: SecretScrubber.base64Standard) == Array(shifted[2..<9]))
    }

    /// How a client decodes what it reads: JSON escapes, or percent-escapes (never both).
    enum Decoding: CaseIterable { case json, percent }

    /// The key with each character spelt, at random, as itself or escaped the way `decoding` undoes (JSON: `\uXXXX` in
    /// either case or its short escape; percent: `%XX` in either case).
    static func mixedSpelling(_ key: String, _ decoding: Decoding, using random: inout SeededGenerator) -> String {
        var spelt = ""
        for scalar in key.unicodeScalars {
            let hexCase = Bool.random(using: &random)
            func hex(_ value: UInt32, _ count: Int) -> String {
                let digits = String(value, radix: 16)
                let padded = String(repeating: "0", count: max(0, count - digits.count)) + digits
                return hexCase ? padded.uppercased() : padded
            }
            // A character that would read as an escape's start is always escaped.
            let special = decoding == .json ? scalar == "\\" || scalar == "\"" : scalar == "%"
            if !special, Bool.random(using: &random) {
                spelt.unicodeScalars.append(scalar)
            } else if decoding == .percent {
                spelt += String(scalar).utf8.map { "%" + hex(UInt32($0), 2) }.joined()
            } else {
                switch (scalar, Bool.random(using: &random)) {
                case ("\"", true): spelt += "\\\""
                case ("\\", true): spelt += "\\\\"
                case ("/", true): spelt += "\\/"
                case ("\n", true): spelt += "\\n"
                case ("\t", true): spelt += "\\t"
                default: spelt += String(scalar).utf16.map { "\\u" + hex(UInt32($0), 4) }.joined()
                }
            }
        }
        return spelt
    }

    /// What a client that decodes `decoding` reads in `text` (bytes an escape does not stand for are kept).
    static func decoded(_ text: [UInt8], _ decoding: Decoding) -> [UInt8] {
        var output: [UInt8] = []
        var index = 0
        func hex(_ at: Int, _ count: Int) -> UInt32? {
            guard at + count <= text.count else { return nil }
            return UInt32(String(decoding: text[at..<at + count], as: UTF8.self), radix: 16)
        }
        while index < text.count {
            let byte = text[index]
            if decoding == .percent, byte == UInt8(ascii: "%"), let value = hex(index + 1, 2),
               text[index + 1] != UInt8(ascii: "+"), text[index + 1] != UInt8(ascii: "-") {
                output.append(UInt8(value)); index += 3; continue
            }
            if decoding == .json, byte == UInt8(ascii: "\\"), index + 1 < text.count {
                let simple: [UInt8: UInt8] = [0x22: 0x22, 0x5C: 0x5C, 0x2F: 0x2F, 0x62: 8, 0x66: 12, 0x6E: 10, 0x72: 13, 0x74: 9]
                if let value = simple[text[index + 1]] { output.append(value); index += 2; continue }
                if text[index + 1] == UInt8(ascii: "u"), let unit = hex(index + 2, 4), !text[(index + 2)..<(index + 6)].contains(UInt8(ascii: "+")) {
                    if (0xD800..<0xDC00).contains(unit), index + 12 <= text.count, text[index + 6] == 0x5C, text[index + 7] == UInt8(ascii: "u"),
                       let low = hex(index + 8, 4), (0xDC00..<0xE000).contains(low) {
                        output += Array(String(Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))!).utf8); index += 12; continue
                    }
                    if let scalar = Unicode.Scalar(unit) { output += Array(String(scalar).utf8); index += 6; continue }
                }
            }
            output.append(byte)
            index += 1
        }
        return output
    }

    @Test("800 keys spelt with each character plain, JSON-escaped or percent-escaped at random: neither a JSON nor a URL decoder finds 8 bytes of the key in what passes")
    func noDecoderFindsAFragment() {
        let seed: UInt64 = 0x5EC2_E75C_2B8B_0004
        var random = SeededGenerator(state: seed)
        var failures = 0
        for index in 0..<800 where failures < 5 {
            let key = String((0..<Int.random(in: 8...60, using: &random)).map { _ in
                Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_").randomElement(using: &random)!
            })
            let scrubber = SecretScrubber(secrets: [key, "Bearer " + key])
            var spelt = ""
            for character in key {
                switch Int.random(in: 0..<3, using: &random) {
                case 0: spelt.append(character)
                case 1: spelt += Self.mixedSpelling(String(character), .json, using: &random)
                default: spelt += Self.mixedSpelling(String(character), .percent, using: &random)
                }
            }
            let output = scrubber.scrub(bytes: Array("{\"m\":\"key \(spelt) end\"}".utf8))
            for decoding in Decoding.allCases where containsRun(of: Array(key.utf8), in: Self.decoded(output, decoding)) {
                failures += 1
                Issue.record("seed \(seed), key #\(index) \(key) spelt \(spelt), \(decoding): \(String(decoding: output, as: UTF8.self))")
            }
        }
    }

    @Test("an escape of the other kind never hides a fragment from a client: JSON and percent escapes mixed to defeat one reading of both (a review's finding)")
    func escapesOfTheOtherKind() {
        let key = "sk-proj-4fA9b2QeT7xLmN0pRsUvWyZ1c3D5e7F9"
        let scrubber = SecretScrubber(secrets: [key, "Bearer " + key])
        for (text, decoding) in [(#"{"error":"bad key %04fA9b2Q\u0065"}"#, Decoding.json), (#"q=%20\u004fA9b2Q%65T"#, .percent),
                                 (#"x%20\b2QeT7x%4C"#, .percent), (#"{"k":"%0ab1\u0032cd"}"#, .json)] {
            let output = scrubber.scrub(bytes: Array(text.utf8))
            #expect(!containsRun(of: Array(key.utf8), in: Self.decoded(output, decoding)), "\(text) → \(String(decoding: output, as: UTF8.self))")
        }
        let short = SecretScrubber(secrets: ["ab12cd"])
        #expect(!Self.decoded(short.scrub(bytes: Array(#"%0ab1\u0032cd"#.utf8)), .json).containsSequence(Array("ab12cd".utf8)))
    }

    @Test("1,000 random keys spelt with a random mix of plain characters and JSON escapes, or of plain characters and percent-escapes, or in another case, are removed")
    func mixedSpellings() {
        let seed: UInt64 = 0x5EC2_E75C_2B8B_0002
        var random = SeededGenerator(state: seed)
        let alphabet = Self.printable + ["é", "ü", "中", "🔑"]
        var failures = 0
        for index in 0..<1000 where failures < 5 {
            let key = String((0..<Int.random(in: 8...80, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
            let scrubber = SecretScrubber(secrets: [key])
            let far = "far-away-text-\(index)"
            // Case changes as a vendor whose keys are case-insensitive makes them (keys are ASCII).
            let upper = String(key.map { $0.isASCII ? Character($0.uppercased()) : $0 })
            let lower = String(key.map { $0.isASCII ? Character($0.lowercased()) : $0 })
            for spelling in [Self.mixedSpelling(key, .json, using: &random), Self.mixedSpelling(key, .percent, using: &random), upper, lower] {
                let text = "\(far) {\"message\":\"key \(spelling) refused\"} \(far)"
                let output = scrubber.scrub(text)
                let readable = output.contains("\(far) {\"message\":\"key [redacted]") && output.hasSuffix(" refused\"} \(far)")
                if !readable || output.contains(spelling) {
                    failures += 1
                    Issue.record("seed \(seed), key #\(index) \(key) spelt \(spelling): \(output)")
                }
            }
        }
    }

    @Test("a text in parts, cut anywhere (a key split across parts included), is scrubbed exactly as the whole text is")
    func streamedLikeWhole() {
        let seed: UInt64 = 0x5EC2_E75C_2B8B_0003
        var random = SeededGenerator(state: seed)
        var failures = 0
        for index in 0..<600 where failures < 5 {
            let keys = (0..<Int.random(in: 1...2, using: &random)).map { _ in
                String((0..<Int.random(in: 4...40, using: &random)).map { _ in (Self.printable + ["é", "🔑"]).randomElement(using: &random)! })
            }
            let scrubber = SecretScrubber(secrets: keys)
            var text: [UInt8] = []
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                let key = keys.randomElement(using: &random)!
                let piece: String
                switch Int.random(in: 0..<5, using: &random) {
                case 0: piece = key
                case 1: piece = Self.mixedSpelling(key, Decoding.allCases.randomElement(using: &random)!, using: &random)
                case 2: piece = String(key.prefix(Int.random(in: 0...key.count, using: &random)))
                case 3: piece = Data(key.utf8).base64EncodedString()
                default: piece = "data: {\"x\":\"\\u00e9\\ud83d\\ude00%4\"}\n\n"
                }
                text += Array(piece.utf8) + (0..<Int.random(in: 0...6, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            }
            let whole = scrubber.scrub(bytes: text)
            var stream = scrubber.stream()
            var streamed: [UInt8] = []
            var rest = text[...]
            while !rest.isEmpty {
                let part = rest.prefix(Int.random(in: 1...12, using: &random))
                rest = rest.dropFirst(part.count)
                switch stream.feed(part) {
                case .prefix(let count): streamed += part.prefix(count)
                case .bytes(let bytes): streamed += bytes
                }
            }
            streamed += stream.finish()
            if streamed != whole {
                failures += 1
                Issue.record("seed \(seed), text #\(index) (keys \(keys)): streamed \(String(decoding: streamed, as: UTF8.self)) ≠ whole \(String(decoding: whole, as: UTF8.self))")
            }
        }
    }

    @Test("a stream passes each server-sent event on whole, at once, and holds back only what could begin a key")
    func streamHoldsBackLittle() {
        let key = "sk-proj-abcdefghijklmnopqrstuvwxyz1234"
        var stream = SecretScrubber(secrets: [key]).stream()
        let event = Array("data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n".utf8)
        #expect(stream.feed(event) == .prefix(event.count))
        // A part that ends in characters a key is made of holds at most 7 of them.
        let word = Array("data: {\"content\":\"zyxwvutsrqpo".utf8)
        #expect(stream.feed(word) == .prefix(word.count - 7))
        // The key split across two parts: neither half reaches the caller.
        var split = SecretScrubber(secrets: [key]).stream()
        var output: [UInt8] = []
        for part in [Array("echo: sk-proj-abcdefghij".utf8), Array("klmnopqrstuvwxyz1234 done\n".utf8)] {
            switch split.feed(part) {
            case .prefix(let count): output += part.prefix(count)
            case .bytes(let bytes): output += bytes
            }
        }
        output += split.finish()
        #expect(String(decoding: output, as: UTF8.self) == "echo: [redacted] done\n")
        // With no secret, everything passes at once.
        var none = SecretScrubber(secrets: []).stream()
        #expect(none.feed(word) == .prefix(word.count) && none.finish().isEmpty)
    }

    @Test("one scrubber serves many texts, and a large text with a long key takes a moment, not minutes")
    func largeText() {
        var random = SeededGenerator(state: 42)
        let key = String((0..<4096).map { _ in Self.printable.randomElement(using: &random)! })
        let scrubber = SecretScrubber(secrets: [key])
        var text = Array(String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 1 << 14).utf8)  // ~720 KiB
        text.replaceSubrange(1000..<1000, with: Array(key.utf8))
        let start = ContinuousClock.now
        let cleaned = scrubber.scrub(bytes: text)
        #expect(ContinuousClock.now - start < .seconds(20))
        #expect(cleaned.count == text.count - key.utf8.count + "[redacted]".utf8.count)
        #expect(!containsRun(of: Array(key.utf8), in: cleaned))
        #expect(scrubber.scrub("again: \(key.prefix(100))") == "again: [redacted]")
    }

    @Test("the cache hands out a scrubber for the secrets asked for, holds at most its capacity, and none past its lifetime")
    func cache() async throws {
        let cache = SecretScrubber.Cache(capacity: 2, lifetime: .milliseconds(200))
        for index in 0..<5 {
            let key = "sk-cache-test-key-\(index)-abcdefgh"
            #expect(cache.scrubber(for: [key]).scrub("echo \(key) end") == "echo [redacted] end")
            #expect(cache.count <= 2)
        }
        #expect(cache.scrubber(for: ["sk-cache-test-key-4-abcdefgh"]).scrub("sk-cache-test-key-4-abcdefgh") == "[redacted]")
        try await Task.sleep(for: .milliseconds(250))
        _ = cache.scrubber(for: ["sk-cache-later-key-abcdefgh"])
        _ = cache.scrubber(for: ["sk-cache-later-key-2-abcdefgh"])
        #expect(cache.count <= 2)
        cache.removeAll()
        #expect(cache.count == 0)
        #expect(cache.scrubber(for: []).isEmpty)
    }
}

extension Array where Element == UInt8 {
    func containsSequence(_ other: [UInt8]) -> Bool {
        guard !other.isEmpty, other.count <= count else { return other.isEmpty }
        return (0...(count - other.count)).contains { self[$0..<$0 + other.count].elementsEqual(other) }
    }
}
