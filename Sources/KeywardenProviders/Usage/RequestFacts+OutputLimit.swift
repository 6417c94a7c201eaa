import KeywardenCore

extension RequestFacts {
    /// The most output tokens a JSON request body allows, for estimating its cost before it is sent: OpenAI's
    /// `max_completion_tokens` / `max_tokens` / `max_output_tokens` (Responses), Anthropic's `max_tokens`, Gemini's
    /// `generationConfig.maxOutputTokens`; the largest when several are set. `nil` when the body is not a JSON object or
    /// sets none; a negative value is ignored.
    ///
    /// Read only when a budget holds the call's estimate (one more scan of the body), not on every call.
    public static func maxOutputTokens(body: [UInt8]) -> Int? {
        guard let request = JSONObject.body(body) else { return nil }
        let limits = [request.int("max_completion_tokens"), request.int("max_tokens"), request.int("max_output_tokens"),
                      request.object("generationConfig")?.int("maxOutputTokens"), request.object("generation_config")?.int("max_output_tokens")]
        guard let most = limits.compactMap({ $0 }).filter({ $0 >= 0 }).max() else { return nil }
        // Several choices (`n`) each write up to the limit.
        let choices = min(max(request.int("n") ?? 1, 1), 128)
        return most.multipliedReportingOverflow(by: choices).overflow ? Int.max : most * choices
    }
}
