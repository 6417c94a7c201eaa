import KeywardenCore

/// Google's Gemini API (`generateContent`, `streamGenerateContent`).
struct GeminiDialect: VendorDialect {
    var id: DialectID { .gemini }

    var answerMembers: [String] { ["usageMetadata", "modelVersion"] }

    static let metadataNames = JSONNames("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount")

    /// `usageMetadata`: the prompt, and the candidates' tokens with the thinking ones (billed as output).
    func readUsage(_ answer: JSONObject, into tally: inout UsageTally) {
        if let metadata = answer.object("usageMetadata", only: Self.metadataNames) {
            tally.raise(\.inputTokens, metadata.int("promptTokenCount"))
            let candidates = metadata.int("candidatesTokenCount")
            let thoughts = metadata.int("thoughtsTokenCount")
            if candidates != nil || thoughts != nil { tally.raise(\.outputTokens, (candidates ?? 0).saturatingAdding(thoughts ?? 0)) }
        }
        if let version = answer.string("modelVersion") { tally.model = version }
    }

    var outputLimitMembers: [String] { ["maxOutputTokens", "max_output_tokens"] }
    var choiceMembers: [String] { ["candidateCount", "candidate_count"] }
    /// Gemini reads its generation config under either spelling, and each field under either (proto JSON).
    var generationConfigMembers: [String] { ["generationConfig", "generation_config"] }

    // `RESOURCE_EXHAUSTED` is judged by its quota ids (``VendorError/throttle``).
}
