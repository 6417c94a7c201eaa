import KeywardenCore

/// OpenAI's API and every API that speaks it (Mistral, DeepSeek, xAI, Groq, Cohere's compatibility API, Azure OpenAI,
/// Ollama, and the OpenAI-compatible endpoints of Anthropic and Gemini).
struct OpenAIDialect: VendorDialect {
    var id: DialectID { .openai }

    var answerMembers: [String] { ["model", "usage", "response", "x_groq"] }

    static let usageNames = JSONNames("prompt_tokens", "input_tokens", "completion_tokens", "output_tokens", "tokens")
    static let responseNames = JSONNames("usage")
    static let tokensNames = JSONNames("input_tokens", "output_tokens")

    func readUsage(_ answer: JSONObject, into tally: inout UsageTally) {
        tally.name(answer.string("model"))
        Self.readNumbers(answer.object("usage", only: Self.usageNames), into: &tally)
        // The Responses API: `response.usage` (in its stream's `response.completed`).
        Self.readNumbers(answer.object("response", only: Self.responseNames)?.object("usage", only: Self.usageNames), into: &tally)
        // Groq's streams carry their totals in the last event's `x_groq.usage`.
        Self.readNumbers(answer.object("x_groq", only: Self.responseNames)?.object("usage", only: Self.usageNames), into: &tally)
    }

    /// `usage.prompt_tokens` / `completion_tokens` (Chat Completions), `input_tokens` / `output_tokens` (Responses),
    /// Cohere's v2 `tokens.{input,output}_tokens`.
    static func readNumbers(_ usage: JSONObject?, into tally: inout UsageTally) {
        guard let usage else { return }
        tally.raise(\.inputTokens, usage.int("prompt_tokens") ?? usage.int("input_tokens"))
        tally.raise(\.outputTokens, usage.int("completion_tokens") ?? usage.int("output_tokens"))
        let tokens = usage.object("tokens", only: tokensNames)
        tally.raise(\.inputTokens, tokens?.int("input_tokens"))
        tally.raise(\.outputTokens, tokens?.int("output_tokens"))
    }

    var outputLimitMembers: [String] { ["max_completion_tokens", "max_tokens", "max_output_tokens"] }
    var choiceMembers: [String] { ["n"] }

    var quotaCodes: Set<String> { ["insufficient_quota", "billing_hard_limit_reached", "billing_not_active"] }
    var rateLimitCodes: Set<String> { ["rate_limit_exceeded", "requests", "tokens"] }
}
