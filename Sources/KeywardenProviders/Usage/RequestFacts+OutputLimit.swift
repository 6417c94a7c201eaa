import KeywardenCore

extension RequestFacts {
    /// What a JSON request body says about how much it may write: the most output tokens per choice and the number of
    /// choices.
    public struct OutputLimit: Sendable, Equatable {
        /// OpenAI's `max_completion_tokens` / `max_tokens` / `max_output_tokens` (Responses), Anthropic's `max_tokens`,
        /// Gemini's `generationConfig.maxOutputTokens` (either spelling of each); the largest when several are set; `nil`
        /// when none is.
        public var perChoice: Int?
        /// OpenAI's `n`, Gemini's `generationConfig.candidateCount`: 1 to 128 (1 when unset or not a positive number).
        public var choices: Int

        /// All choices together, when the request sets a limit (saturating).
        public var total: Int? {
            perChoice.map { $0.multipliedReportingOverflow(by: choices).overflow ? Int.max : $0 * choices }
        }
    }

    /// The request's output limit and choices, for estimating its cost before it is sent; `nil` when the body is not a
    /// JSON object. A negative limit is ignored.
    ///
    /// Read only when a budget holds the call's estimate (one more scan of the body), not on every call.
    public static func outputLimit(body: [UInt8]) -> OutputLimit? {
        guard let request = JSONObject.body(body) else { return nil }
        // Every dialect's members are read where it puts them (the largest wins): a body is judged as the most generous
        // vendor would read it.
        var limits: [Int?] = []
        var choices: [Int?] = []
        for dialect in Dialects.all {
            let scopes = dialect.generationConfigMembers.isEmpty ? [request] : dialect.generationConfigMembers.compactMap { request.object($0) }
            for scope in scopes {
                limits += dialect.outputLimitMembers.map { scope.int($0) }
                choices += dialect.choiceMembers.map { scope.int($0) }
            }
        }
        let choiceCount = choices.compactMap { $0 }.max() ?? 1
        return OutputLimit(perChoice: limits.compactMap { $0 }.filter { $0 >= 0 }.max(),
                           choices: min(max(choiceCount, 1), PriceTable.maximumChoices))
    }

    /// The most output tokens a JSON request body allows, all choices together (``OutputLimit/total``).
    public static func maxOutputTokens(body: [UInt8]) -> Int? {
        outputLimit(body: body)?.total
    }
}
