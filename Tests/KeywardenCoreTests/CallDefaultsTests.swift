import Foundation
import Testing
@testable import KeywardenCore

/// What a call leaves out and the serving key fills in (seed 000), planned from the catalog's data.
@Suite("Call defaults")
struct CallDefaultsTests {
    let catalog: ProviderCatalog

    init() throws {
        catalog = try ProviderCatalog.load()
    }

    func plan(_ providerID: String, _ path: String, method: String = "POST", absent: Set<String> = ["model", "max_tokens", "model_id"],
              model: String? = "key-model", fields: [String: String] = [:]) throws -> CallDefaultsPlan {
        let provider = try #require(catalog.provider(providerID))
        return provider.planDefaults(method: method, pathAndQuery: path, leftOut: { absent.contains($0) }, model: model, field: { fields[$0] })
    }

    @Test("an Anthropic Messages call without max_tokens gets the key's value, else the catalog's 4096")
    func anthropicMaxTokens() throws {
        let fromKey = try plan("anthropic", "/v1/messages", fields: ["default_max_tokens": " 8000 "])
        #expect(fromKey.members == [.init(name: "model", json: #""key-model""#), .init(name: "max_tokens", json: "8000")])
        let fromCatalog = try plan("anthropic", "/v1/messages")
        #expect(fromCatalog.members.last == .init(name: "max_tokens", json: "4096"))
        #expect(fromCatalog.model == "key-model")
    }

    @Test("nothing the caller sent is overridden")
    func callerValuesWin() throws {
        let plan = try plan("anthropic", "/v1/messages", absent: [], fields: ["default_max_tokens": "8000"])
        #expect(plan.members.isEmpty && plan.model == nil && plan.pathAndQuery == "/v1/messages")
    }

    @Test("a field value that is not a whole number in range is not used, in any spelling: the catalog's value is")
    func badIntegerFieldsAreSkipped() throws {
        for bad in ["0", "-1", "1e3", "12.5", "9223372036854775807", "99999999999999999999", "4096 tokens", "0x10", "١٢", "10000001"] {
            let plan = try plan("anthropic", "/v1/messages", absent: ["max_tokens"], fields: ["default_max_tokens": bad])
            #expect(plan.members == [.init(name: "max_tokens", json: "4096")], "\(bad) was used")
        }
    }

    @Test("an ElevenLabs text-to-speech call naming no voice calls the default voice, keeping the query")
    func elevenLabsVoice() throws {
        let plain = try plan("elevenlabs", "/v1/text-to-speech?output_format=mp3_44100_128", absent: [], fields: ["default_voice_id": "VoiceOfKey1"])
        #expect(plain.pathAndQuery == "/v1/text-to-speech/VoiceOfKey1?output_format=mp3_44100_128")
        let streamed = try plan("elevenlabs", "/v1/text-to-speech/stream", absent: [])
        #expect(streamed.pathAndQuery == "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream")
        let named = try plan("elevenlabs", "/v1/text-to-speech/CallerVoice", absent: [], fields: ["default_voice_id": "VoiceOfKey1"])
        #expect(named.pathAndQuery == "/v1/text-to-speech/CallerVoice")
    }

    @Test("a voice that could leave its path segment is never put into the path")
    func voiceCannotEscapeThePath() throws {
        for bad in ["../v1/user", "a/b", "a?b", "a#b", "a%2fb", "..", "a b", "ä", "a\r\nb", String(repeating: "a", count: 65)] {
            let plan = try plan("elevenlabs", "/v1/text-to-speech", absent: [], fields: ["default_voice_id": bad])
            #expect(plan.pathAndQuery == "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM", "\(bad) went into the path")
        }
    }

    @Test("OpenAI-shaped chat completions get the key's model on every provider that has them; other endpoints nothing")
    func chatCompletionsModel() throws {
        for provider in catalog.providers {
            guard let endpoint = provider.chatCompletions else { continue }
            let plan = provider.planDefaults(method: "POST", pathAndQuery: endpoint.path, leftOut: { $0 == "model" }, model: "m1", field: { _ in nil })
            #expect(plan.members.first == .init(name: "model", json: #""m1""#), "\(provider.id)")
        }
        #expect(try plan("openai", "/v1/embeddings").members.isEmpty)
        #expect(try plan("openai", "/v1/chat/completions", method: "GET").members.isEmpty)
        #expect(try plan("openai", "/v1/chat/completions/../embeddings").members.isEmpty)
    }

    @Test("Azure OpenAI's v1 chat completions use the key's deployment when the call names no model")
    func azureDeployment() throws {
        let plan = try plan("azure-openai", "/openai/v1/chat/completions?api-version=preview", model: nil, fields: ["deployment": "gpt-prod"])
        #expect(plan.members == [.init(name: "model", json: #""gpt-prod""#)])
    }

    @Test("a model is written as a JSON string, whatever it holds")
    func modelsAreEscaped() {
        #expect(CallDefaultsPlan.jsonString("a\"b\\c\nd\u{1}\u{2028}é") == #""a\"b\\c\nd\u0001\u2028é""#)
    }

    @Test("the catalog refuses a call default from a field it lacks, or into a path from a field without a pattern")
    func catalogValidation() throws {
        let anthropic = try #require(catalog.provider("anthropic"))
        func with(_ rules: String) throws -> ProviderDefinition {
            var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(anthropic)) as! [String: Any]
            json["call_defaults"] = try JSONSerialization.jsonObject(with: Data(rules.utf8))
            return try JSONDecoder().decode(ProviderDefinition.self, from: JSONSerialization.data(withJSONObject: json))
        }
        let missing = try with(#"[{"endpoint": "POST /v1/messages", "member": "x", "from": "nope"}]"#)
        #expect(throws: (any Error).self) { try ProviderCatalog(providers: [missing]) }
        let unpatterned = try with(#"[{"endpoint": "POST /v1/x", "path": "/v1/x/{value}", "from": "default_max_tokens"}]"#)
        #expect(throws: (any Error).self) { try ProviderCatalog(providers: [unpatterned]) }
        #expect(throws: (any Error).self) { try with(#"[{"endpoint": "POST /v1/x", "path": "/v1/x", "from": "default_model"}]"#) }
        #expect(throws: (any Error).self) { try with(#"[{"endpoint": "*", "member": "model", "from": "default_model"}]"#) }
        // Encoded and decoded again, a catalog keeps its call defaults.
        let again = try JSONDecoder().decode(ProviderDefinition.self, from: JSONEncoder().encode(anthropic))
        #expect(again.callDefaults == anthropic.callDefaults && !again.callDefaults.isEmpty)
    }
}
