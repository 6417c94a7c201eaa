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
}
