import Foundation

/// How a vendor authenticates, shapes its errors, and which read-only call it verifies with.
enum Family: String, CaseIterable, Sendable {
    case openai, anthropic, gemini, mistral, deepseek, xai, groq, cohere, perplexity
    case azureOpenAI = "azure-openai"
    case ollama
    case openaiCompatible = "openai-compatible"
    case elevenlabs
    case googleTTS = "google-tts"
    case azureSpeech = "azure-speech"
    case stability
    case googleTranslate = "google-translate"
    /// Not a vendor: a webhook receiver that records what it is sent.
    case receiver

    /// The key the request carries, read from the header this vendor's SDK sends.
    func presentedKey(_ headers: [String: String], query: [String: String]) -> String? {
        func bearer() -> String? {
            guard let value = headers["authorization"], value.lowercased().hasPrefix("bearer ") else { return nil }
            return String(value.dropFirst(7))
        }
        switch self {
        // Anthropic's and Gemini's OpenAI-compatible endpoints take a bearer token.
        case .anthropic: return headers["x-api-key"] ?? bearer()
        case .gemini: return headers["x-goog-api-key"] ?? query["key"] ?? bearer()
        case .googleTTS, .googleTranslate: return headers["x-goog-api-key"] ?? query["key"]
        case .elevenlabs: return headers["xi-api-key"]
        case .azureOpenAI: return headers["api-key"]
        case .azureSpeech: return headers["ocp-apim-subscription-key"]
        case .ollama: return bearer() ?? "local"
        case .receiver: return "receiver"
        default: return bearer()
        }
    }

    /// Whether `method path` is this vendor's verification call.
    func isVerification(method: String, path: String) -> Bool {
        switch self {
        case .openai, .mistral, .xai, .groq, .cohere, .openaiCompatible:
            return method == "GET" && (path == "/v1/models" || path == "/openai/v1/models" || path == "/models")
        case .deepseek: return method == "GET" && path == "/models"
        case .perplexity: return method == "GET" && path == "/router/v1/models"
        case .anthropic: return method == "GET" && path == "/v1/models"
        case .gemini: return method == "GET" && path == "/v1beta/models"
        case .azureOpenAI: return method == "GET" && path == "/openai/models"
        case .ollama: return method == "GET" && path == "/api/tags"
        case .elevenlabs: return method == "GET" && path == "/v1/user"
        case .googleTTS: return method == "GET" && path == "/v1/voices"
        case .googleTranslate: return method == "GET" && path == "/language/translate/v2/languages"
        case .azureSpeech: return method == "POST" && path == "/sts/v1.0/issueToken"
        case .stability: return method == "GET" && path == "/v1/user/account"
        case .receiver: return false
        }
    }

    /// The models this mock's key can use.
    var models: [String] {
        switch self {
        case .openai, .azureOpenAI, .openaiCompatible: return ["gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "gpt-5.4-nano", "gpt-4.1", "gpt-4o-mini"]
        case .anthropic: return ["claude-opus-4-7", "claude-sonnet-4-6", "claude-haiku-4-5"]
        case .gemini: return ["gemini-3.5-flash", "gemini-3.1-pro-preview", "gemini-2.5-flash"]
        case .mistral: return ["mistral-large-latest", "mistral-small-latest", "codestral-latest"]
        case .deepseek: return ["deepseek-chat", "deepseek-reasoner"]
        case .xai: return ["grok-4", "grok-3-mini"]
        case .groq: return ["llama-3.3-70b-versatile", "openai/gpt-oss-120b"]
        case .cohere: return ["command-a-03-2025", "embed-v4.0"]
        case .perplexity: return ["sonar", "sonar-pro"]
        case .ollama: return ["llama3.2:latest", "qwen2.5:7b"]
        case .elevenlabs, .googleTTS, .azureSpeech, .stability, .googleTranslate, .receiver: return []
        }
    }
}
