import Foundation
import KeywardenCore
import Testing
@testable import KeywardenProviders

@Suite("Vendor requests from catalog data")
struct RequestBuilderTests {
    let catalog: ProviderCatalog

    init() throws { catalog = try ProviderCatalog.load() }

    func headers(_ request: VendorRequest) -> [String: String] {
        Dictionary(request.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { $1 })
    }

    @Test("each auth scheme puts the key where the vendor expects it")
    func authSchemes() throws {
        let openai = try VendorRequestBuilder.verification(for: try #require(catalog.provider("openai")), credentials: .init(key: Secret("sk-a")))
        #expect(openai.url == "https://api.openai.com/v1/models" && headers(openai)["authorization"] == "Bearer sk-a")
        let anthropic = try VendorRequestBuilder.verification(for: try #require(catalog.provider("anthropic")), credentials: .init(key: Secret("sk-ant")))
        #expect(headers(anthropic)["x-api-key"] == "sk-ant" && headers(anthropic)["anthropic-version"] == "2023-06-01" && headers(anthropic)["authorization"] == nil)
        let gemini = try VendorRequestBuilder.verification(for: try #require(catalog.provider("gemini")), credentials: .init(key: Secret("AIza1")))
        #expect(headers(gemini)["x-goog-api-key"] == "AIza1")
        let eleven = try VendorRequestBuilder.verification(for: try #require(catalog.provider("elevenlabs")), credentials: .init(key: Secret("sk_e")))
        #expect(eleven.url == "https://api.elevenlabs.io/v1/user" && headers(eleven)["xi-api-key"] == "sk_e")

        // A query-parameter scheme (the custom provider can be one; here a hand-made entry).
        let query = ProviderDefinition(
            id: "q", displayName: "Q", category: .other, fields: [ProviderField(id: "api_key", label: "Key", kind: .secret, required: true)],
            auth: AuthScheme(kind: .query, name: "key"), baseURL: "https://q.example", verification: VerificationCall(available: true, method: "GET", path: "/v1/list?x=1"),
            models: [], defaultModel: nil, modalities: [.chat], displayOrder: 1
        )
        let request = try VendorRequestBuilder.verification(for: query, credentials: .init(key: Secret("a b&c")))
        #expect(request.url == "https://q.example/v1/list?x=1&key=a%20b%26c")
        #expect(!request.description.contains("a%20b%26c") && !request.description.contains("a b&c"))
    }

    @Test("extras travel as headers only when filled")
    func extrasOnlyWhenFilled() throws {
        let openai = try #require(catalog.provider("openai"))
        let filled = try VendorRequestBuilder.verification(for: openai, credentials: .init(key: Secret("sk"), extras: ["organization_id": Secret("org-1"), "project_id": Secret("  ")]))
        #expect(headers(filled)["openai-organization"] == "org-1")
        #expect(headers(filled)["openai-project"] == nil)
        let none = try VendorRequestBuilder.verification(for: openai, credentials: .init(key: Secret("sk")))
        #expect(headers(none)["openai-organization"] == nil)
    }

    @Test("templated base URLs and paths are filled from the card; a missing field is named")
    func templates() throws {
        let azure = try #require(catalog.provider("azure-openai"))
        let request = try VendorRequestBuilder.verification(for: azure, credentials: .init(key: Secret("k"), extras: [
            "endpoint": Secret("https://acme.openai.azure.com/"), "api_version": Secret("2024-10-21"),
        ]))
        #expect(request.url == "https://acme.openai.azure.com/openai/models?api-version=2024-10-21")
        #expect(headers(request)["api-key"] == "k")
        let missing = #expect(throws: KeywardenError.self) {
            try VendorRequestBuilder.verification(for: azure, credentials: .init(key: Secret("k"), extras: ["endpoint": Secret("https://a.example")]))
        }
        #expect(missing?.field == "extras.api_version" && missing?.message.contains("API version") == true)

        let speech = try #require(catalog.provider("azure-speech"))
        let token = try VendorRequestBuilder.verification(for: speech, credentials: .init(key: Secret("k"), extras: ["region": Secret("westeurope")]))
        #expect(token.method == "POST" && token.url == "https://westeurope.api.cognitive.microsoft.com/sts/v1.0/issueToken")
        #expect(headers(token)["ocp-apim-subscription-key"] == "k")

        let custom = try #require(catalog.provider("custom"))
        let customRequest = try VendorRequestBuilder.forward(for: custom, credentials: .init(key: Secret("tok"), extras: [
            "base_url": Secret("https://support.example/api"), "auth_header": Secret("X-Api-Token"),
        ]), method: "GET", pathAndQuery: "/tickets")
        #expect(customRequest.url == "https://support.example/api/tickets" && headers(customRequest)["x-api-token"] == "tok")
        // A prefix keeps its trailing space: "Bearer tok", not "Bearertok".
        let bearer = try VendorRequestBuilder.forward(for: custom, credentials: .init(key: Secret("tok"), extras: [
            "base_url": Secret("https://support.example/api"), "auth_header": Secret("Authorization"), "auth_prefix": Secret("Bearer "),
        ]), method: "GET", pathAndQuery: "/tickets")
        #expect(headers(bearer)["authorization"] == "Bearer tok")
    }

    @Test("forwarding keeps the caller's path and overridable headers, and adds extras as headers or query parameters")
    func forwarding() throws {
        let anthropic = try #require(catalog.provider("anthropic"))
        let own = try VendorRequestBuilder.forward(for: anthropic, credentials: .init(key: Secret("sk-ant-x")), method: "POST",
                                                   pathAndQuery: "/v1/messages?beta={api_key}", callerHeaders: ["anthropic-version"])
        #expect(own.url == "https://api.anthropic.com/v1/messages?beta={api_key}", "a caller's path is never rendered as a template")
        #expect(headers(own)["anthropic-version"] == nil && headers(own)["x-api-key"] == "sk-ant-x" && headers(own)["user-agent"] == nil)
        let defaulted = try VendorRequestBuilder.forward(for: anthropic, credentials: .init(key: Secret("sk-ant-x")), method: "POST", pathAndQuery: "/v1/messages")
        #expect(headers(defaulted)["anthropic-version"] == "2023-06-01")
        let compat = try VendorRequestBuilder.forward(for: anthropic, credentials: .init(key: Secret("sk-ant-x")), method: "POST",
                                                      pathAndQuery: "/v1/chat/completions", auth: anthropic.chatCompletions?.auth)
        #expect(headers(compat)["authorization"] == "Bearer sk-ant-x" && headers(compat)["x-api-key"] == nil)

        let azure = try #require(catalog.provider("azure-openai"))
        let extras = ["endpoint": Secret("https://res.openai.azure.com"), "api_version": Secret("2024-10-21")]
        let added = try VendorRequestBuilder.forward(for: azure, credentials: .init(key: Secret("k"), extras: extras), method: "POST",
                                                     pathAndQuery: "/openai/deployments/d/chat/completions")
        #expect(added.url == "https://res.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21")
        let kept = try VendorRequestBuilder.forward(for: azure, credentials: .init(key: Secret("k"), extras: extras), method: "POST",
                                                    pathAndQuery: "/openai/x?api-version=2025-01-01")
        #expect(kept.url == "https://res.openai.azure.com/openai/x?api-version=2025-01-01")
    }

    @Test("a provider without verification says why")
    func unavailable() throws {
        let error = #expect(throws: KeywardenError.self) {
            try VendorRequestBuilder.verification(for: try #require(catalog.provider("midjourney")), credentials: .init(key: Secret("x")))
        }
        #expect(error?.code == "verification_unavailable")
    }
}

@Suite("Classifying vendor answers")
struct ClassifierTests {
    let scrubber = SecretScrubber(secrets: ["sk-proj-abcdefghijklmnop1234"])

    func classify(_ status: Int, _ body: String, retryAfter: String? = nil) -> (VerificationStatus, String, Int?) {
        let classification = ResponseClassifier.classify(httpStatus: status, body: Data(body.utf8), retryAfterHeader: retryAfter, scrubber: scrubber)
        return (classification.status, classification.message, classification.retryAfterSeconds)
    }

    @Test("each vendor's error shape is read, and statuses follow the rules")
    func shapes() {
        #expect(classify(200, #"{"data":[]}"#).0 == .valid)
        let openai = classify(401, #"{"error":{"message":"Incorrect API key provided: sk-proj-****1234.","type":"invalid_request_error","code":"invalid_api_key"}}"#)
        #expect(openai.0 == .invalid && openai.1.hasPrefix("Incorrect API key provided"))
        #expect(classify(403, #"{"error":{"message":"nope","type":"permission_error"}}"#).0 == .noPermission)
        #expect(classify(429, #"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#).0 == .quotaExceeded)
        let limited = classify(429, #"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#, retryAfter: "7")
        #expect(limited.0 == .rateLimited && limited.2 == 7)
        #expect(classify(400, #"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}"#).0 == .quotaExceeded)
        #expect(classify(401, #"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#).1 == "invalid x-api-key")
        // Google's RESOURCE_EXHAUSTED with no quota ids names no day: a rate limit, which passes by itself.
        #expect(classify(429, #"{"error":{"code":429,"message":"Quota exceeded for quota metric","status":"RESOURCE_EXHAUSTED"}}"#).0 == .rateLimited)
        #expect(classify(401, #"{"detail":{"status":"quota_exceeded","message":"This request exceeds your quota."}}"#).0 == .quotaExceeded)
        #expect(classify(401, #"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#).0 == .invalid)
        #expect(classify(503, "<html>down</html>").0 == .unreachable)
        #expect(classify(404, #"{"error":{"code":"404","message":"Resource not found"}}"#).0 == .unreachable)
        #expect(classify(401, #"{"message":"invalid api token"}"#).1 == "invalid api token")
    }

    /// Gemini's 429 as it is sent: the same words for a minute's limit and a day's; only the quota ids differ.
    static func gemini(quotaID: String?, retryDelay: String?, message: String = "You exceeded your current quota, please check your plan and billing details. Please retry in 1.2s.") -> String {
        var details: [String] = []
        if let quotaID {
            details.append(#"{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"\#(quotaID)","quotaDimensions":{"location":"global","model":"gemini-2.5-flash"},"quotaValue":"10"}]}"#)
        }
        details.append(#"{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]}"#)
        if let retryDelay { details.append(#"{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"\#(retryDelay)"}"#) }
        return #"{"error":{"code":429,"message":"\#(message)","status":"RESOURCE_EXHAUSTED","details":[\#(details.joined(separator: ","))]}}"#
    }

    @Test("each vendor's throttle is read from its structured fields first: a Gemini per-minute limit is a rate limit with its body's delay, a daily one a spent quota; OpenAI, Anthropic, Groq and ElevenLabs alike")
    func throttlesByStructuredFields() {
        func wait(_ status: Int, _ body: String, header: String? = nil) -> (VerificationStatus, Duration?) {
            let classified = ResponseClassifier.classify(httpStatus: status, body: Data(body.utf8), retryAfterHeader: header, scrubber: scrubber)
            return (classified.status, classified.retryAfter)
        }
        // Gemini: per minute (and per second) → rate limited, for RetryInfo's delay to the millisecond; per day → quota.
        for id in ["GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "GenerateContentInputTokensPerModelPerMinute-FreeTier", "RequestsPerSecondPerProject"] {
            #expect(wait(429, Self.gemini(quotaID: id, retryDelay: "1.2s")) == (.rateLimited, .milliseconds(1200)), "\(id)")
        }
        #expect(wait(429, Self.gemini(quotaID: "GenerateRequestsPerDayPerProjectPerModel-FreeTier", retryDelay: nil)).0 == .quotaExceeded)
        // A minute's and a day's limit together: a rate limit for RetryInfo's delay (a quota only when every exceeded
        // quota is a day's; if the day's holds, the next answer names it alone).
        let both = Self.gemini(quotaID: "GenerateRequestsPerDayPerProjectPerModel-FreeTier", retryDelay: "30s")
            .replacingOccurrences(of: #""violations":[{"#, with: #""violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel"},{"#)
        #expect(wait(429, both) == (.rateLimited, .seconds(30)))
        // RetryInfo alone, the message's delay alone, a header over the body, and odd delays.
        #expect(wait(429, Self.gemini(quotaID: nil, retryDelay: "37s")) == (.rateLimited, .seconds(37)))
        #expect(wait(429, Self.gemini(quotaID: nil, retryDelay: nil)) == (.rateLimited, .milliseconds(1200)))
        #expect(wait(429, Self.gemini(quotaID: nil, retryDelay: "2s"), header: "5") == (.rateLimited, .seconds(5)))
        for odd in ["-1s", "1e9s", "s", "1.s", "abc", "1.2", "９s", "99999999999s"] {
            let classified = wait(429, Self.gemini(quotaID: nil, retryDelay: odd, message: "Too many."))
            #expect(classified.0 == .rateLimited && (classified.1 == nil || classified.1! <= .seconds(3600)), "\(odd): \(String(describing: classified.1))")
        }
        #expect(wait(429, Self.gemini(quotaID: nil, retryDelay: "1.0001s")).1 == .milliseconds(1001), "rounded up, never down")
        // OpenAI: the same words, told apart by code.
        #expect(wait(429, #"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#).0 == .quotaExceeded)
        #expect(wait(429, #"{"error":{"message":"Rate limit reached for gpt-5.4-mini on tokens per min (TPM): Limit 30000, Used 29000. Please try again in 1.054s.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#)
                == (.rateLimited, .milliseconds(1054)))
        #expect(wait(429, #"{"error":{"message":"Rate limit reached. Please try again in 20ms.","type":"requests","code":"rate_limit_exceeded"}}"#) == (.rateLimited, .milliseconds(20)))
        #expect(wait(429, #"{"error":{"message":"Rate limit reached. Please try again in 1m30.5s.","type":"requests","code":"rate_limit_exceeded"}}"#) == (.rateLimited, .milliseconds(90_500)))
        // Groq's words, and a code that is rate_limit_exceeded whatever the message says of quotas.
        #expect(wait(429, #"{"error":{"message":"Rate limit reached for model on tokens per day (TPD): quota exceeded. Please try again in 7m12s.","type":"tokens","code":"rate_limit_exceeded"}}"#)
                == (.rateLimited, .seconds(432)))
        // Anthropic: rate_limit_error rests; 529 overloaded_error is the vendor's, not the key's; a spent balance is quota.
        #expect(wait(429, #"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#, header: "12")
                == (.rateLimited, .seconds(12)))
        let overloaded = ResponseClassifier.classify(httpStatus: 529, body: Data(#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#.utf8), retryAfterHeader: nil, scrubber: scrubber)
        #expect(overloaded.status == .unreachable && overloaded.message.contains("overloaded"))
        #expect(wait(400, #"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}"#).0 == .quotaExceeded)
        // ElevenLabs: quota_exceeded as its detail's status.
        #expect(wait(401, #"{"detail":{"status":"quota_exceeded","message":"This request exceeds your quota of 10000."}}"#).0 == .quotaExceeded)
        // A 403 for the request's model refuses the model, not the key.
        #expect(wait(403, #"{"error":{"message":"You are not allowed to sample from this model","type":"invalid_request_error","param":null,"code":"model_not_allowed"}}"#).0 == .modelNotFound)
        #expect(wait(403, #"{"error":{"message":"Project `proj_x` does not have access to model `gpt-5.4`","type":"invalid_request_error","code":null}}"#).0 == .modelNotFound)
        #expect(wait(403, #"{"error":{"message":"nope","type":"permission_error"}}"#).0 == .noPermission)
        // A body naming a member twice, or not JSON, is no structure: its words alone count.
        #expect(wait(429, #"{"error":{"code":"insufficient_quota","code":"rate_limit_exceeded"}}"#).0 == .rateLimited)
    }

    @Test("WebSocket messages are metered from their events: Realtime responses asked for and done, TTS text spoken, unreadable text charged whole")
    func realtimeEvents() {
        #expect(RealtimeEvents.responseUsage(#"{"type":"response.done","response":{"usage":{"input_tokens":12,"output_tokens":5}}}"#)?.input == 12)
        #expect(RealtimeEvents.responseUsage(#"{"type":"response.output_text.delta","delta":"response.done"}"#) == nil)
        #expect(RealtimeEvents.responseUsage(#"{"type":"response.done","type":"x","response":{"usage":{"input_tokens":1}}}"#) == nil)
        #expect(RealtimeEvents.asksForResponse(#"{"type":"response.create"}"#) && RealtimeEvents.asksForResponse(#" {"type": "response.create", "response": {}} "#))
        #expect(!RealtimeEvents.asksForResponse(#"{"type":"session.update","note":"response.create"}"#))
        #expect(RealtimeEvents.ttsCharacters(#"{"text":"Hello "}"#) == 6 && RealtimeEvents.ttsCharacters(#"{"flush":true}"#) == 0)
        let twice = #"{"text":"a","text":"a very long text the vendor may speak"}"#
        #expect(RealtimeEvents.ttsCharacters(twice) == twice.count, "a message the meter cannot read is charged whole")
        #expect(RealtimeEvents.ttsCharacters("not json at all") == 15)
    }

    @Test("a Retry-After date is turned into seconds")
    func retryAfterDate() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        #expect(RetryAfter.seconds(formatter.string(from: now.addingTimeInterval(42)), now: now, maximum: 3600) == 42)
        #expect(RetryAfter.seconds("3", maximum: 3600) == 3 && RetryAfter.seconds("soon", maximum: 3600) == nil)
    }

    @Test("vendor messages lose the key, even echoed in part, and are cut short")
    func scrubbing() {
        let message = "Key sk-proj-abcdefghijklmnop1234 and fragment abcdefghijkl are wrong"
        let cleaned = ResponseClassifier.clean(message, scrubber: scrubber)
        #expect(!cleaned.contains("sk-proj-abcdefghijklmnop1234") && !cleaned.contains("abcdefghijkl"))
        #expect(cleaned.contains("[redacted]"))
        let long = ResponseClassifier.clean(String(repeating: "x", count: 1000) + "\nline", scrubber: scrubber)
        #expect(long.count == ResponseClassifier.maximumMessageLength && !long.contains("\n"))
    }

    @Test("events are raised on transitions only")
    func transitions() {
        #expect(EventKind.transition(from: .valid, to: .invalid) == .keyInvalid)
        #expect(EventKind.transition(from: .unverified, to: .quotaExceeded) == .keyQuotaExceeded)
        #expect(EventKind.transition(from: .invalid, to: .invalid) == nil)
        #expect(EventKind.transition(from: .invalid, to: .valid) == .keyRecovered)
        #expect(EventKind.transition(from: .rateLimited, to: .valid) == nil)
        #expect(EventKind.transition(from: .valid, to: .rateLimited) == nil)
        #expect(EventKind.transition(from: .invalid, to: .quotaExceeded) == .keyQuotaExceeded)
    }
}
