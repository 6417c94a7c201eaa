import Foundation

/// What a vendor said in an error body, read from the shapes vendors use:
/// OpenAI / Mistral / xAI / Groq / DeepSeek `{"error": {"message", "type", "code"}}`,
/// Anthropic `{"type": "error", "error": {"type", "message"}}`,
/// Google `{"error": {"code", "message", "status"}}`, ElevenLabs `{"detail": {"status", "message"}}`,
/// Azure `{"error": {"code", "message"}}`, Cohere / Ollama `{"message"}` / `{"error": "…"}`.
public struct VendorError: Sendable, Equatable {
    public var message: String?
    /// The vendor's machine-readable kind (`insufficient_quota`, `RESOURCE_EXHAUSTED`, `quota_exceeded`, …).
    public var codes: [String]

    /// The most of an error body parsed.
    public static let maximumParsedBody = 64 * 1024

    public init(message: String?, codes: [String]) {
        self.message = message
        self.codes = codes
    }

    /// Reads an error body; unknown shapes keep a short text excerpt.
    ///
    /// Only the first ``maximumParsedBody`` bytes are read: an error body is small, and a hostile vendor's 4 MiB one
    /// must not cost a 4 MiB parse (a cut body is not JSON, so it is read as a text excerpt).
    public static func parse(_ body: Data) -> VendorError {
        let body = body.prefix(maximumParsedBody)
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            let text = String(decoding: body.prefix(400), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return VendorError(message: text.isEmpty || text.hasPrefix("<") ? nil : text, codes: [])
        }
        var codes: [String] = []
        var message: String?
        func collect(_ dictionary: [String: Any]) {
            for key in ["type", "code", "status"] {
                if let text = dictionary[key] as? String { codes.append(text) }
            }
            if message == nil, let text = dictionary["message"] as? String { message = text }
        }
        if let error = object["error"] as? [String: Any] { collect(error) }
        if let error = object["error"] as? String, message == nil { message = error }
        if let detail = object["detail"] as? [String: Any] { collect(detail) }
        if let detail = object["detail"] as? String, message == nil { message = detail }
        collect(object)
        return VendorError(message: message, codes: codes.filter { $0 != "error" })
    }

    /// Whether the vendor says the account is out of credit or quota (not a passing rate limit).
    public var meansQuotaExhausted: Bool {
        let quotaCodes: Set<String> = ["insufficient_quota", "quota_exceeded", "billing_hard_limit_reached", "billing_not_active", "payment_required"]
        if codes.contains(where: { quotaCodes.contains($0.lowercased()) }) { return true }
        let text = (message ?? "").lowercased()
        return ["exceeded your current quota", "insufficient_quota", "credit balance", "out of credits", "billing", "quota exceeded", "exceeds your quota", "insufficient balance"]
            .contains { text.contains($0) }
    }
}
