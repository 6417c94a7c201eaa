import Foundation
import KeywardenCore
import Testing

@Suite("Credit policy and modality inference")
struct MeteringValuesTests {
    @Test("the most specific credit rule wins; an unknown source or a bad number is an error naming the rule")
    func creditRules() throws {
        let policy = try CreditPolicy(parsing: "*=1, openai:managed=2.5, *:byok=0.5, elevenlabs=0")
        #expect(policy.milliCredits(provider: "anthropic", source: .platform) == 1000)
        #expect(policy.milliCredits(provider: "openai", source: .managed) == 2500)
        #expect(policy.milliCredits(provider: "openai", source: .byok) == 500)
        #expect(policy.milliCredits(provider: "elevenlabs", source: .byok) == 0, "provider beats source")
        #expect(CreditPolicy(rules: []).milliCredits(provider: "openai", source: .byok) == 0)
        #expect(CreditPolicy.standard.milliCredits(provider: "openai", source: .byok) == 1000, "seed 004: one credit per action even on BYOK")
        for bad in ["openai", "openai:owner=1", "*=-1", "*=lots"] {
            let error = #expect(throws: KeywardenError.self) { try CreditPolicy(parsing: bad) }
            #expect(error?.message.contains(bad) == true)
        }
    }

    @Test("the modality comes from the vendor path when the call does not say it")
    func modalityFromPath() {
        let cases: [(String, Modality?)] = [
            ("/v1/chat/completions", .chat), ("/v1/messages", .chat), ("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", .chat),
            ("/v1/audio/speech", .tts), ("/v1/text-to-speech/voice123/stream", .tts), ("/v1/audio/transcriptions", .stt),
            ("/v1/embeddings", .embeddings), ("/v1beta/models/text-embedding-004:embedContent", .embeddings),
            ("/v1/images/generations", .image), ("/language/translate/v2", .translate), ("/v1/user", nil),
        ]
        for (path, expected) in cases { #expect(Modality.inferred(fromPath: path) == expected, "\(path)") }
    }

    /// ``Modality/inferred(fromPath:)`` as it was, building its rules and needles on every call.
    static func referenceModality(_ path: String) -> Modality? {
        let path = path.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
        let rules: [(String, Modality)] = [
            ("/audio/speech", .tts), ("text-to-speech", .tts), ("text:synthesize", .tts), ("/cognitiveservices/v1", .tts),
            ("/audio/transcriptions", .stt), ("/audio/translations", .stt), ("speech-to-text", .stt),
            ("embed", .embeddings),
            ("/images/", .image), ("generation/", .image), ("/generate/", .image),
            ("translate", .translate),
            ("/search", .search),
            ("chat/completions", .chat), ("/messages", .chat), ("generatecontent", .chat), ("/responses", .chat),
            ("/chat", .chat), ("/completions", .chat), ("/api/generate", .chat),
        ]
        return rules.first { rule in
            let needle = Array(rule.0.utf8)
            guard needle.count <= path.count else { return false }
            for start in 0...(path.count - needle.count) where path[start] == needle[0] {
                if path[start..<start + needle.count].elementsEqual(needle) { return true }
            }
            return false
        }?.1
    }

    @Test("the rules built once infer the same modality as rules built per call, for every path of a corpus")
    func modalityAgreesWithReference() {
        let words = ["/", "audio", "/audio/speech", "Text-To-Speech", "text:SYNTHESIZE", "/cognitiveservices/v1", "/audio/transcriptions",
                     "/audio/translations", "speech-to-text", "EMBED", "/images/", "generation/", "/generate/", "translate", "/search",
                     "chat/completions", "/messages", "generateContent", "/responses", "/chat", "/completions", "/api/generate", "?", "é",
                     "\u{301}", "\u{212A}", "ﬁ", "😀", "v1", "x", "-", ":", ""]
        var random = SplitMix(seed: 0xA0D)
        var paths = ["", "/", "e", "embe", "embed"] + words
        for _ in 0..<20_000 {
            paths.append((0..<random.next(below: 6)).map { _ in words[random.next(below: words.count)] }.joined())
        }
        var found = Set<Modality?>()
        for path in paths {
            let expected = Self.referenceModality(path)
            #expect(Modality.inferred(fromPath: path) == expected, "\(path)")
            found.insert(expected)
        }
        #expect(found.count == Modality.allCases.count + 1, "every modality, and none, is inferred somewhere")
    }
}
