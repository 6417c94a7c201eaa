import Foundation
import Testing
@testable import KeywardenCore

@Suite("Provider catalog")
struct ProviderCatalogTests {
    let catalog: ProviderCatalog

    init() throws {
        catalog = try ProviderCatalog.load()
    }

    @Test("the bundled catalog has every provider the product promises, in its category")
    func bundledCatalogHasRequiredProviders() {
        let expected: [String: ProviderCategory] = [
            "openai": .llm, "anthropic": .llm, "gemini": .llm, "mistral": .llm, "deepseek": .llm, "xai": .llm,
            "groq": .llm, "cohere": .llm, "perplexity": .llm, "azure-openai": .llm, "ollama": .llm,
            "openai-compatible": .llm, "elevenlabs": .voice, "google-tts": .voice, "azure-speech": .voice,
            "stability": .image, "midjourney": .image, "exa": .search, "google-translate": .translate, "custom": .other,
        ]
        for (id, category) in expected {
            #expect(catalog.provider(id)?.category == category, "\(id)")
        }
    }

    @Test("providers are sorted by display order")
    func providersSortedByDisplayOrder() {
        let orders = catalog.providers.map(\.displayOrder)
        #expect(orders == orders.sorted())
        #expect(catalog.providers.first?.id == "openai")
    }

    @Test("the first five providers seed today's default models and curated lists")
    func seededDefaultsAndCuratedLists() throws {
        let openai = try #require(catalog.provider("openai"))
        #expect(openai.defaultModel == "gpt-5.4-mini")
        #expect(openai.models.map(\.id) == [
            "gpt-5.5", "gpt-5.5-pro", "gpt-5.4", "gpt-5.4-pro", "gpt-5.4-mini", "gpt-5.4-nano",
            "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4o", "gpt-4o-mini",
        ])
        #expect(openai.models.filter(\.legacy).map(\.id) == ["gpt-4o", "gpt-4o-mini"])

        let anthropic = try #require(catalog.provider("anthropic"))
        #expect(anthropic.defaultModel == "claude-opus-4-7")
        #expect(Set(anthropic.models.map(\.id)) == [
            "claude-opus-4-7", "claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-6", "claude-sonnet-4-5", "claude-opus-4-5",
        ])

        let gemini = try #require(catalog.provider("gemini"))
        #expect(gemini.defaultModel == "gemini-3.5-flash")
        #expect(Set(gemini.models.map(\.id)) == [
            "gemini-3.5-flash", "gemini-3.1-pro-preview", "gemini-3.1-flash-lite",
            "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite",
        ])

        let mistral = try #require(catalog.provider("mistral"))
        #expect(mistral.defaultModel == "mistral-large-latest")
        #expect(mistral.models.count == 8)
        #expect(mistral.model("codestral-latest") != nil && mistral.model("magistral-medium-latest") != nil)

        let elevenlabs = try #require(catalog.provider("elevenlabs"))
        #expect(elevenlabs.defaultModel == "eleven_v3")
        #expect(elevenlabs.models.map(\.id) == ["eleven_v3", "eleven_multilingual_v2", "eleven_turbo_v2_5", "eleven_flash_v2_5"])
    }

    @Test("cards show each provider's own extras")
    func cardsShowProviderExtras() throws {
        #expect(catalog.provider("openai")?.extraFields.map(\.id).contains("organization_id") == true)
        let maxTokens = try #require(catalog.provider("anthropic")?.extraFields.first { $0.id == "default_max_tokens" })
        #expect(maxTokens.placeholder == "4096" && !maxTokens.required)
        #expect(catalog.provider("gemini")?.extraFields.map(\.id) == ["project_id"])
        #expect(catalog.provider("elevenlabs")?.extraFields.map(\.id) == ["default_voice_id"])
        let azure = try #require(catalog.provider("azure-openai"))
        #expect(azure.extraFields.filter(\.required).map(\.id) == ["endpoint", "api_version"])
        #expect(azure.extraFields.first { $0.id == "deployment" }?.required == false)
        #expect(catalog.provider("azure-speech")?.extraFields.first { $0.id == "region" }?.required == true)
        #expect(catalog.provider("custom")?.extraFields.map(\.id) == ["base_url", "auth_header", "auth_prefix"])
    }

    @Test("ollama needs no key; midjourney is stored only, with verification not available")
    func keylessAndUnverifiableProviders() throws {
        let ollama = try #require(catalog.provider("ollama"))
        #expect(!ollama.requiresKey)
        let midjourney = try #require(catalog.provider("midjourney"))
        #expect(!midjourney.verification.available)
        #expect(midjourney.verification.note?.isEmpty == false)
        #expect(midjourney.auth.kind == .none)
    }

    @Test("OpenAI's speech and transcription are modalities of the openai entry")
    func openAIServesSpeechModalities() throws {
        let openai = try #require(catalog.provider("openai"))
        #expect(openai.modalities.contains(.tts) && openai.modalities.contains(.stt))
    }

    @Test("routing by model finds the provider that curates it")
    func providerServingModel() {
        #expect(catalog.provider(servingModel: "claude-sonnet-4-6")?.id == "anthropic")
        #expect(catalog.provider(servingModel: "no-such-model") == nil)
    }

    @Test("KEYWARDEN_UPSTREAM_<ID> replaces base URLs, including the verification host")
    func upstreamOverrides() throws {
        #expect(ProviderCatalog.upstreamVariable(for: "azure-openai") == "KEYWARDEN_UPSTREAM_AZURE_OPENAI")
        let overridden = try catalog.applyingUpstreamOverrides(from: [
            "KEYWARDEN_UPSTREAM_OPENAI": "http://127.0.0.1:9001/",
            "KEYWARDEN_UPSTREAM_AZURE_SPEECH": "http://127.0.0.1:9002",
            "UNRELATED": "x",
        ])
        #expect(overridden.provider("openai")?.baseURL == "http://127.0.0.1:9001")
        #expect(overridden.provider("azure-speech")?.baseURL == "http://127.0.0.1:9002")
        #expect(overridden.provider("azure-speech")?.verification.baseURL == "http://127.0.0.1:9002")
        #expect(overridden.provider("anthropic")?.baseURL == "https://api.anthropic.com")
    }

    @Test("an override that names no provider, or is not a URL, is refused")
    func badUpstreamOverridesAreRefused() {
        #expect(throws: CatalogError.self) {
            try catalog.applyingUpstreamOverrides(from: ["KEYWARDEN_UPSTREAM_OPENAAI": "http://127.0.0.1:1"])
        }
        let error = #expect(throws: CatalogError.self) {
            try catalog.applyingUpstreamOverrides(from: ["KEYWARDEN_UPSTREAM_OPENAI": "not a url"])
        }
        #expect(error?.entry == "openai")
    }
}

@Suite("Catalog validation")
struct CatalogValidationTests {
    func document(_ providers: String) -> Data {
        Data(#"{"version": 1, "providers": [\#(providers)]}"#.utf8)
    }

    let valid = #"{"id": "acme", "display_name": "Acme", "category": "llm", "display_order": 1, "fields": [{"id": "api_key", "label": "Key", "kind": "secret", "required": true}], "auth": {"kind": "header", "name": "Authorization", "prefix": "Bearer "}, "base_url": "https://api.acme.test", "shared_key_endpoints": ["POST /v1/chat/completions"], "verification": {"method": "GET", "path": "/v1/models"}, "modalities": ["chat"], "default_model": "a1", "models": [{"id": "a1", "label": "A1"}]}"#

    @Test("a valid entry loads")
    func validEntryLoads() throws {
        let catalog = try ProviderCatalog(json: document(valid))
        #expect(catalog.provider("acme")?.defaultModel == "a1")
    }

    @Test("a default model missing from the list names the entry")
    func defaultModelNotInList() {
        let broken = valid.replacingOccurrences(of: #""default_model": "a1""#, with: #""default_model": "zz""#)
        let error = #expect(throws: CatalogError.self) { try ProviderCatalog(json: document(broken)) }
        #expect(error?.entry == "acme")
        #expect(error?.description.contains("zz") == true)
    }

    @Test("a missing field names the entry by its id")
    func missingFieldNamesEntry() {
        let broken = valid.replacingOccurrences(of: #""category": "llm", "#, with: "")
        let error = #expect(throws: CatalogError.self) { try ProviderCatalog(json: document(broken)) }
        #expect(error?.entry == "acme")
        #expect(error?.problem.contains("category") == true)
    }

    @Test("an unknown category names the entry")
    func unknownCategory() {
        let broken = valid.replacingOccurrences(of: #""category": "llm""#, with: #""category": "robots""#)
        let error = #expect(throws: CatalogError.self) { try ProviderCatalog(json: document(broken)) }
        #expect(error?.entry == "acme")
    }

    @Test("a placeholder that names no field is refused")
    func unknownPlaceholder() {
        let broken = valid.replacingOccurrences(of: "https://api.acme.test", with: "{endpoint}")
        let error = #expect(throws: CatalogError.self) { try ProviderCatalog(json: document(broken)) }
        #expect(error?.problem.contains("{endpoint}") == true)
    }

    @Test("duplicate ids are refused")
    func duplicateIDs() {
        let error = #expect(throws: CatalogError.self) { try ProviderCatalog(json: document(valid + "," + valid)) }
        #expect(error?.entry == "acme")
    }

    @Test("unavailable verification must say why")
    func unavailableVerificationNeedsNote() {
        let broken = valid.replacingOccurrences(of: #"{"method": "GET", "path": "/v1/models"}"#, with: #"{"available": false}"#)
        #expect(throws: CatalogError.self) { try ProviderCatalog(json: document(broken)) }
    }

    @Test("text that is not JSON is a clear error")
    func notJSON() {
        let error = #expect(throws: CatalogError.self) { try ProviderCatalog(json: Data("{oops".utf8)) }
        #expect(error?.description.contains("provider catalog") == true)
    }

    @Test("another format version is refused")
    func wrongVersion() {
        #expect(throws: CatalogError.self) {
            try ProviderCatalog(json: Data(#"{"version": 2, "providers": []}"#.utf8))
        }
    }
}
