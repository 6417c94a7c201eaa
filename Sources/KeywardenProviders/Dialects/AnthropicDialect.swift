import KeywardenCore

/// Anthropic's Messages API.
struct AnthropicDialect: VendorDialect {
    var id: DialectID { .anthropic }

    var answerMembers: [String] { ["model", "usage", "message"] }

    static let usageNames = JSONNames("cache_creation_input_tokens", "cache_read_input_tokens", "input_tokens", "output_tokens")
    static let messageNames = JSONNames("usage", "model")

    /// A whole answer's `usage`; in a stream, `message_start`'s `message.usage` and the cumulative `message_delta`'s `usage`.
    func readUsage(_ answer: JSONObject, into tally: inout UsageTally) {
        tally.name(answer.string("model"))
        Self.readNumbers(answer.object("usage", only: Self.usageNames), into: &tally)
        if let message = answer.object("message", only: Self.messageNames) {
            Self.readNumbers(message.object("usage", only: Self.usageNames), into: &tally)
            tally.name(message.string("model"))
        }
    }

    /// Anthropic counts cached prompt tokens apart from `input_tokens`: the prompt is all three.
    static func readNumbers(_ usage: JSONObject?, into tally: inout UsageTally) {
        guard let usage else { return }
        let range = 0...UsageTally.maximumCount
        let cached = [usage.int("cache_creation_input_tokens"), usage.int("cache_read_input_tokens")]
            .compactMap { $0 }.filter { range.contains($0) }.reduce(0) { $0.saturatingAdding($1) }
        if let input = usage.int("input_tokens"), range.contains(input) {
            tally.raise(\.inputTokens, min(input.saturatingAdding(cached), UsageTally.maximumCount))
        } else if cached > 0 {
            tally.raise(\.inputTokens, min(cached, UsageTally.maximumCount))
        }
        tally.raise(\.outputTokens, usage.int("output_tokens"))
    }

    var outputLimitMembers: [String] { ["max_tokens"] }

    var rateLimitCodes: Set<String> { ["rate_limit_error"] }
    var overloadCodes: Set<String> { ["overloaded_error"] }
}
