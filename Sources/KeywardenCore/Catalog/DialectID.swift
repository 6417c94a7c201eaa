/// The wire shape a provider's API speaks, named by each catalog entry's `dialect`.
///
/// Many providers share one (Mistral, Groq, DeepSeek and the rest speak OpenAI's); the code of each shape lives in
/// KeywardenProviders' dialects, and nothing branches on a provider's id.
public enum DialectID: String, Codable, Sendable, CaseIterable {
    /// OpenAI's API: Chat Completions, Responses, embeddings, audio, images (and every OpenAI-compatible API).
    case openai
    /// Anthropic's Messages API.
    case anthropic
    /// Google's Gemini API (`generateContent`, `streamGenerateContent`).
    case gemini
    /// ElevenLabs' voice API.
    case elevenlabs
    /// Google Cloud's REST APIs (Text-to-Speech, Translation).
    case google
    /// Azure's Cognitive Services (Speech).
    case azure
    /// A shape Keywarden knows nothing particular of (a custom endpoint, a search or image API).
    case generic

    /// Whether the dialect speaks a chat API Keywarden can translate to and from.
    public var isChat: Bool { self == .openai || self == .anthropic || self == .gemini }
}
