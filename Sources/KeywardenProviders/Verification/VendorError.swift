import Foundation

/// What a vendor said in an error body, read from the shapes vendors use:
/// OpenAI / Mistral / xAI / Groq / DeepSeek `{"error": {"message", "type", "code"}}`,
/// Anthropic `{"type": "error", "error": {"type", "message"}}`,
/// Google `{"error": {"code", "message", "status", "details": [QuotaFailure, RetryInfo, …]}}`,
/// ElevenLabs `{"detail": {"status", "message"}}`, Azure `{"error": {"code", "message"}}`,
/// Cohere / Ollama `{"message"}` / `{"error": "…"}`.
///
/// Read with ``JSONScan`` (never a JSON object round trip): an error body is a vendor's, and may be hostile.
public struct VendorError: Sendable, Equatable {
    public var message: String?
    /// The vendor's machine-readable kind (`insufficient_quota`, `RESOURCE_EXHAUSTED`, `quota_exceeded`, …).
    public var codes: [String]
    /// Google's `QuotaFailure` violations: the quota ids (or metrics) that were exceeded.
    public var quotaIDs: [String]
    /// The delay the body asks for: Google's `RetryInfo.retryDelay`, or "try again in 1.2s" in the message.
    public var retryDelay: Duration?

    /// The most of an error body parsed.
    public static let maximumParsedBody = 64 * 1024
    /// The longest delay a body may ask for (a day); a longer one is read as a day.
    public static let maximumRetryDelay = Duration.seconds(86_400)

    public init(message: String?, codes: [String], quotaIDs: [String] = [], retryDelay: Duration? = nil) {
        self.message = message
        self.codes = codes
        self.quotaIDs = quotaIDs
        self.retryDelay = retryDelay
    }

    /// Reads an error body; unknown shapes keep a short text excerpt.
    ///
    /// Only the first ``maximumParsedBody`` bytes are read: an error body is small, and a hostile vendor's 4 MiB one
    /// must not cost a 4 MiB parse (a cut body is not JSON, so it is read as a text excerpt).
    public static func parse(_ body: Data) -> VendorError {
        let bytes = Array(body.prefix(maximumParsedBody))
        guard let object = JSONObject.body(bytes) else {
            let text = String(decoding: bytes.prefix(400), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return VendorError(message: text.isEmpty || text.hasPrefix("<") ? nil : text, codes: [])
        }
        var error = VendorError(message: nil, codes: [])
        func collect(_ object: JSONObject) {
            for key in ["type", "code", "status"] {
                if let text = object.string(key) { error.codes.append(text) }
            }
            if error.message == nil, let text = object.string("message") { error.message = text }
        }
        if let inner = object.object("error") {
            collect(inner)
            error.readDetails(inner)
        } else if let text = object.string("error") {
            error.message = text
        }
        if let detail = object.object("detail") { collect(detail) } else if error.message == nil, let text = object.string("detail") { error.message = text }
        collect(object)
        error.codes = error.codes.filter { $0 != "error" }
        if error.retryDelay == nil, let message = error.message { error.retryDelay = Self.delay(inMessage: message) }
        return error
    }

    /// Google's `details`: `QuotaFailure` violations and `RetryInfo`.
    private mutating func readDetails(_ error: JSONObject) {
        guard let details = error.members["details"], let elements = JSONScan.elements(error.bytes, details) else { return }
        for element in elements {
            guard let detail = JSONObject(error.bytes, element), let type = detail.string("@type") else { continue }
            if type.hasSuffix("google.rpc.RetryInfo"), let delay = detail.string("retryDelay") {
                retryDelay = Self.protobufDuration(delay)
            } else if type.hasSuffix("google.rpc.QuotaFailure"), let violations = detail.members["violations"],
                      let each = JSONScan.elements(error.bytes, violations) {
                for range in each {
                    guard let violation = JSONObject(error.bytes, range) else { continue }
                    if let id = violation.string("quotaId") ?? violation.string("quotaMetric") { quotaIDs.append(id) }
                }
            }
        }
    }

    /// A protobuf `Duration` in JSON (`"1.2s"`, `"37s"`, `"0.5s"`); `nil` for anything else.
    static func protobufDuration(_ text: String) -> Duration? {
        guard text.hasSuffix("s") else { return nil }
        return seconds(text.dropLast())
    }

    /// Seconds written as digits with an optional fraction (`"1"`, `"1.25"`), capped at ``maximumRetryDelay``.
    static func seconds(_ text: Substring) -> Duration? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty, whole.count <= 9, whole.allSatisfy(\.isASCIIDigit), let seconds = Int(whole) else { return nil }
        var milliseconds = 0
        if parts.count == 2 {
            let fraction = parts[1]
            guard !fraction.isEmpty, fraction.allSatisfy(\.isASCIIDigit) else { return nil }
            // Rounded up to the millisecond: waiting a hair longer is safe, a hair shorter is another 429.
            let padded = fraction.prefix(3) + String(repeating: "0", count: max(0, 3 - fraction.count))
            milliseconds = Int(padded) ?? 0
            if fraction.dropFirst(3).contains(where: { $0 != "0" }) { milliseconds += 1 }
        }
        return min(.seconds(seconds) + .milliseconds(milliseconds), maximumRetryDelay)
    }

    /// The delay a message asks for: "Please retry in 1.2s", "Please try again in 20ms", "try again in 1m5.3s".
    static func delay(inMessage message: String) -> Duration? {
        let lower = message.lowercased()
        for phrase in ["retry in ", "try again in "] {
            guard let found = lower.range(of: phrase) else { continue }
            var rest = lower[found.upperBound...]
            var total = Duration.zero
            var read = false
            // Minutes, then seconds or milliseconds.
            let minutes = rest.prefix { $0.isASCIIDigit }
            if !minutes.isEmpty, minutes.count <= 6, rest.dropFirst(minutes.count).first == "m", rest.dropFirst(minutes.count + 1).first != "s",
               let value = Int(minutes) {
                total += .seconds(value * 60)
                rest = rest.dropFirst(minutes.count + 1)
                read = true
            }
            let number = rest.prefix { $0.isASCIIDigit || $0 == "." }
            let unit = rest.dropFirst(number.count)
            if !number.isEmpty, let value = seconds(number) {
                if unit.hasPrefix("ms") {
                    total += value / 1000
                    read = true
                } else if unit.hasPrefix("s") {
                    total += value
                    read = true
                }
            }
            if read { return min(total, maximumRetryDelay) }
        }
        return nil
    }

    /// What the vendor says of its limits, from its structured fields first and its words only when they say nothing.
    public enum Throttle: Sendable, Equatable {
        /// A passing rate limit (per minute, per second, tokens per minute): the key comes back by itself.
        case rateLimit
        /// The account's credit or quota is spent (billing, a daily quota): the key is off until it is checked again.
        case quotaExhausted
        /// The vendor is overloaded (Anthropic's `overloaded_error`): nothing is wrong with the key.
        case overloaded
    }

    /// The throttle this error names; `nil` when it names none.
    public var throttle: Throttle? {
        let lowered = Set(codes.map { $0.lowercased() })
        if !lowered.isDisjoint(with: Dialects.quotaCodes) { return .quotaExhausted }
        if !lowered.isDisjoint(with: Dialects.rateLimitCodes) { return .rateLimit }
        if !lowered.isDisjoint(with: Dialects.overloadCodes) { return .overloaded }
        // Google: the quotas exceeded say which limit it is. A daily quota lasts until the vendor's day ends; any
        // shorter window (per minute, per second), a RetryInfo, or no detail at all, is a rate limit.
        if lowered.contains("resource_exhausted") {
            let daily = !quotaIDs.isEmpty && quotaIDs.allSatisfy { Self.isDaily($0) }
            return daily ? .quotaExhausted : .rateLimit
        }
        let text = (message ?? "").lowercased()
        return Self.quotaPhrases.contains { text.contains($0) } ? .quotaExhausted : nil
    }

    /// Whether the vendor refuses the model the request named, not the key (OpenAI's 403 `model_not_allowed`, "not
    /// allowed to sample from this model"): the key serves other calls as before.
    public var refusesModel: Bool {
        let lowered = Set(codes.map { $0.lowercased() })
        if !lowered.isDisjoint(with: ["model_not_allowed", "model_not_found", "model_access_denied"]) { return true }
        let text = (message ?? "").lowercased()
        return ["not allowed to sample from this model", "does not have access to model", "do not have access to the model"].contains { text.contains($0) }
    }

    /// Whether the vendor says the account is out of credit or quota (not a passing rate limit).
    public var meansQuotaExhausted: Bool { throttle == .quotaExhausted }

    static let quotaPhrases = ["exceeded your current quota", "insufficient_quota", "credit balance", "out of credits", "billing", "quota exceeded",
                               "exceeds your quota", "insufficient balance"]

    /// Whether a quota id names a daily window (`GenerateRequestsPerDayPerProjectPerModel-FreeTier`).
    static func isDaily(_ quotaID: String) -> Bool {
        let lower = quotaID.lowercased()
        return lower.contains("perday") || lower.contains("per_day") || lower.contains("daily")
    }
}

extension Character {
    /// `0`–`9` only (not every Unicode digit `isNumber` takes).
    fileprivate var isASCIIDigit: Bool { isASCII && isWholeNumber }
}
