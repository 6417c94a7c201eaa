import Foundation
import Hummingbird
import NIOCore

/// One mocked vendor on its own port.
struct MockVendor: Sendable {
    let name: String
    let family: Family
    /// Whether requests are recorded (off for benchmarks).
    var recording = true
    let recorder = RequestRecorder()

    func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/__mock/requests") { _, _ -> Response in
            let data = await recorder.json()
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.delete("/__mock/requests") { _, _ -> HTTPResponse.Status in
            await recorder.clear()
            return .noContent
        }
        router.post("/__mock/respond") { request, _ -> HTTPResponse.Status in
            await recorder.setForcedStatus(request.uri.queryParameters.get("status").flatMap { Int($0) })
            return .noContent
        }
        for method in [HTTPRequest.Method.get, .head, .options, .post, .put, .patch, .delete] {
            router.on("**", method: method) { request, context in try await handle(request, context: context) }
        }
        return router
    }

    func handle(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let body = try await request.body.collect(upTo: 16 * 1024 * 1024)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
        // HTTP/1.1's Host arrives as the authority.
        if let authority = request.head.authority { headers["host"] = authority }
        var query: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
        let path = request.uri.path
        if recording {
            await recorder.record([
                "method": request.method.rawValue, "path": path, "query": query, "headers": headers,
                "body": String(buffer: body),
            ])
        }

        if let forced = await recorder.forcedStatus {
            return json(forced, forced < 300 ? ["ok": true] : ["error": ["message": "forced \(forced)"]])
        }
        if family == .receiver { return json(200, ["received": true]) }
        // Like Google: an upload session's later legs carry no key; the session URL (its upload_id) is the credential.
        if family == .gemini, request.method == .post, ["/upload/v1beta/files", "/upload/v1/files"].contains(path), query["upload_id"] != nil,
           let answer = geminiUpload(path: path, query: query, headers: headers, body: body) {
            return answer
        }
        guard let key = family.presentedKey(headers, query: query), !key.isEmpty else {
            return error(401, kind: .missingKey)
        }
        if family == .anthropic, headers["anthropic-version"] == nil {
            return json(400, ["type": "error", "error": ["type": "invalid_request_error", "message": "anthropic-version: header is required"]])
        }
        // Like OpenAI: an OpenAI-Organization header the key does not belong to (here: any `org-evil…`) is a 401,
        // whatever the key — so a caller's own header can make a good key look refused.
        if family == .openai, let organization = headers["openai-organization"], organization.hasPrefix("org-evil") {
            return json(401, ["error": ["message": "OpenAI-Organization header should match organization for API key", "type": "invalid_request_error",
                                        "param": NSNull(), "code": "mismatched_organization"]])
        }
        // Like OpenAI, per model and whatever the key: a model the account may not sample from is a 403, and a model
        // with a tiny limit answers 429 — both shaped by the caller's request, not by the key.
        if family == .openai, let model = ((try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any])?["model"] as? String {
            if model.contains("forbidden-model") {
                return json(403, ["error": ["message": "You are not allowed to sample from this model", "type": "invalid_request_error",
                                            "param": NSNull(), "code": "model_not_allowed"]])
            }
            if model.contains("tiny-limit-model") {
                var answer = error(429, kind: .rateLimit("7s"))
                answer.headers[.retryAfter] = "30"
                return answer
            }
        }
        if family == .azureOpenAI, query["api-version"] == nil {
            return json(404, ["error": ["code": "404", "message": "Resource not found"]])
        }
        let method = request.method.rawValue
        // Like the vendors' API front ends: OPTIONS names the methods a path takes, with no body.
        if request.method == .options {
            return Response(status: .noContent, headers: [.allow: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", .init("X-Mock-Options")!: "1"])
        }
        if let hostile = try await hostileAnswer(key: key, ordinary: { try await ordinaryAnswer(key: key, method: method, path: path, query: query, body: body, headers: headers) }) {
            return hostile
        }
        return try await ordinaryAnswer(key: key, method: method, path: path, query: query, body: body, headers: headers)
    }

    /// The answer chosen by the ordinary markers of the key (or success).
    func ordinaryAnswer(key: String, method: String, path: String, query: [String: String], body: ByteBuffer,
                        headers: [String: String] = [:]) async throws -> Response {
        if key.contains("slow") {
            try await Task.sleep(for: .seconds(30))
        }
        if key.contains("revoked") { return error(401, kind: .invalidKey(key)) }
        if key.contains("forbidden") { return error(403, kind: .forbidden) }
        if key.contains("noquota") { return error(429, kind: .quota) }
        if key.contains("ratelimited") {
            // "retry3" in the key: a wait of 3 s instead of the usual 7 (in Retry-After, or Google's body).
            let seconds = key.range(of: "retry").flatMap { Int(key[$0.upperBound...].prefix { $0.isNumber }) }
            var answer = error(429, kind: .rateLimit("\(seconds ?? 7)s"))
            if let seconds, answer.headers[.retryAfter] != nil { answer.headers[.retryAfter] = "\(seconds)" }
            return answer
        }
        if key.contains("servererror") { return error(500, kind: .server) }
        // A spent quota that comes back: refused as out of quota for 2.5 s from the first call (a vendor's day, shrunk).
        if key.contains("dailyquota"), await recorder.windowRefusal(key: key, window: .milliseconds(2500)) != nil {
            return error(429, kind: .quota)
        }
        // A per-minute window: the first call is refused for 1.2 s, then calls pass (Gemini's free tier, shrunk).
        if key.contains("perminute"), let left = await recorder.windowRefusal(key: key, window: .milliseconds(1200)) {
            let seconds = Double(left.components.attoseconds / 1_000_000_000_000_000) / 1000 + Double(left.components.seconds)
            return error(429, kind: .rateLimit(String(format: "%.1fs", seconds)))
        }

        if family == .gemini, method == "POST", ["/upload/v1beta/files", "/upload/v1/files"].contains(path), let answer = geminiUpload(path: path, query: query, headers: headers, body: body) {
            return answer
        }
        if family.isVerification(method: method == "HEAD" ? "GET" : method, path: path) {
            return verificationSuccess()
        }
        if let answer = generation(method: method, path: path, query: query, body: body, key: key) {
            return answer
        }
        return json(404, ["error": ["message": "Unknown path \(path) on the \(name) mock", "type": "invalid_request_error", "code": "not_found"]])
    }

    // MARK: Answers

    /// Google's resumable upload: `start` answers with the session's absolute URL (on this mock's own origin, as Google
    /// answers with its own) in `X-Goog-Upload-URL`; `upload, finalize` at that URL takes the bytes and answers the file.
    func geminiUpload(path: String, query: [String: String], headers: [String: String], body: ByteBuffer) -> Response? {
        let command = headers["x-goog-upload-command"]?.lowercased() ?? ""
        if command == "start", headers["x-goog-upload-protocol"] == "resumable" {
            let host = headers["host"] ?? "127.0.0.1"
            return Response(status: .ok, headers: [
                .init("X-Goog-Upload-URL")!: "http://\(host)\(path)?upload_id=mock-\(body.readableBytes)-\(UInt32.random(in: 1...UInt32.max))&upload_protocol=resumable",
                .init("X-Goog-Upload-Status")!: "active", .init("X-Goog-Upload-Chunk-Granularity")!: "8388608",
            ])
        }
        guard command.contains("upload"), let id = query["upload_id"] else { return nil }
        let file: [String: Any] = [
            "name": "files/\(id)", "mimeType": headers["x-goog-upload-header-content-type"] ?? "application/octet-stream",
            "sizeBytes": "\(body.readableBytes)", "state": "ACTIVE", "uri": "https://generativelanguage.googleapis.com/v1beta/files/\(id)",
            // What arrived, for tests to compare with what was sent.
            "displayName": String(decoding: body.readableBytesView.prefix(64), as: UTF8.self),
        ]
        var answer = json(200, ["file": file])
        answer.headers[.init("X-Goog-Upload-Status")!] = command.contains("finalize") ? "final" : "active"
        return answer
    }

    func verificationSuccess() -> Response {
        switch family {
        case .anthropic:
            return json(200, ["data": family.models.map { ["type": "model", "id": $0, "display_name": $0, "created_at": "2026-01-01T00:00:00Z"] },
                              "has_more": false, "first_id": family.models.first ?? "", "last_id": family.models.last ?? ""])
        case .gemini:
            return json(200, ["models": family.models.map { ["name": "models/\($0)", "displayName": $0] }])
        case .ollama:
            return json(200, ["models": family.models.map { ["name": $0, "model": $0, "size": 1_000_000] }])
        case .cohere:
            return json(200, ["models": family.models.map { ["name": $0, "endpoints": ["chat"]] }])
        case .elevenlabs:
            return json(200, ["user_id": "u_mock", "subscription": ["tier": "creator", "character_count": 1200, "character_limit": 100000]])
        case .googleTTS:
            return json(200, ["voices": [["name": "en-US-Chirp3-HD-Achernar", "languageCodes": ["en-US"]]]])
        case .googleTranslate:
            return json(200, ["data": ["languages": [["language": "en"], ["language": "de"]]]])
        case .azureSpeech:
            return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "eyJhbGciOiJodHRwOi8vbW9jay5leGFtcGxlIn0.mock")))
        case .stability:
            return json(200, ["id": "user-mock", "email": "mock@example.com", "organizations": []])
        default:
            return json(200, ["object": "list", "data": family.models.map { ["id": $0, "object": "model", "created": 1_700_000_000, "owned_by": name] }])
        }
    }

    enum ErrorKind {
        /// `rateLimit`'s delay is the body's (Google's `RetryInfo`); the others send `Retry-After: 7`.
        case missingKey, invalidKey(String), forbidden, quota, rateLimit(String), server
    }

    /// The vendor's own error body for each failure.
    func error(_ status: Int, kind: ErrorKind) -> Response {
        let message: String
        var code = "error"
        var type = "invalid_request_error"
        var extra: HTTPFields = [:]
        switch kind {
        case .missingKey: message = "You didn't provide an API key."; code = "missing_api_key"
        case .invalidKey(let key):
            // Like OpenAI, echo a masked form of the key, so tests see that Keywarden scrubs it.
            message = "Incorrect API key provided: \(key.prefix(6))****\(key.suffix(4)). You can find your API key in your account settings."
            code = "invalid_api_key"
        case .forbidden: message = "You are not allowed to use this resource with this key."; code = "permission_denied"; type = "permission_error"
        case .quota: message = "You exceeded your current quota, please check your plan and billing details."; code = "insufficient_quota"; type = "insufficient_quota"
        case .rateLimit: message = "Rate limit reached for requests. Please try again in 7s."; code = "rate_limit_exceeded"; type = "requests"; extra[.retryAfter] = "7"
        case .server: message = "The server had an error while processing your request."; code = "server_error"; type = "server_error"
        }
        let body: [String: Any]
        var status = status
        switch family {
        case .anthropic:
            let anthropicType: String
            switch kind {
            case .missingKey, .invalidKey: anthropicType = "authentication_error"
            case .forbidden: anthropicType = "permission_error"
            case .quota:
                // Anthropic reports an empty credit balance as a 400.
                status = 400
                anthropicType = "invalid_request_error"
            case .rateLimit: anthropicType = "rate_limit_error"
            case .server: anthropicType = "api_error"
            }
            let text = { if case .quota = kind { return "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits." }; return message }()
            body = ["type": "error", "error": ["type": anthropicType, "message": text]]
        case .gemini, .googleTTS, .googleTranslate:
            let googleStatus: String
            switch kind {
            case .missingKey, .invalidKey: googleStatus = "UNAUTHENTICATED"; status = status == 401 ? 400 : status
            case .forbidden: googleStatus = "PERMISSION_DENIED"
            case .quota, .rateLimit: googleStatus = "RESOURCE_EXHAUSTED"
            case .server: googleStatus = "INTERNAL"
            }
            var text: String = { if case .invalidKey = kind { return "API key not valid. Please pass a valid API key." }; return message }()
            var error: [String: Any] = ["code": status, "status": googleStatus]
            // Like Gemini: both limits say "You exceeded your current quota"; only the quota ids tell a day from a minute,
            // and a per-minute limit gives its delay in the body's RetryInfo, with no Retry-After header.
            switch kind {
            case .quota:
                text = "You exceeded your current quota, please check your plan and billing details. * Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 250"
                error["details"] = [["@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [[
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "quotaValue": "250"]]]]
            case .rateLimit(let delay):
                text = "You exceeded your current quota, please check your plan and billing details. * Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10\nPlease retry in \(delay)."
                error["details"] = [
                    ["@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [[
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "quotaValue": "10"]]],
                    ["@type": "type.googleapis.com/google.rpc.Help", "links": [["description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"]]],
                    ["@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay],
                ]
                extra[.retryAfter] = nil
            default: break
            }
            error["message"] = text
            body = ["error": error]
        case .elevenlabs:
            let detailStatus: String
            switch kind {
            case .missingKey, .invalidKey: detailStatus = "invalid_api_key"
            case .forbidden: detailStatus = "missing_permissions"
            case .quota: detailStatus = "quota_exceeded"; status = 401
            case .rateLimit: detailStatus = "too_many_concurrent_requests"
            case .server: detailStatus = "internal_error"
            }
            let text: String = { if case .quota = kind { return "This request exceeds your quota of 10000. You have 0 credits remaining." }; return message }()
            body = ["detail": ["status": detailStatus, "message": text]]
        case .azureOpenAI, .azureSpeech:
            body = ["error": ["code": status == 401 ? "401" : code, "message": status == 401 ? "Access denied due to invalid subscription key or wrong API endpoint." : message]]
        case .cohere, .ollama:
            body = ["message": message]
        default:
            body = ["error": ["message": message, "type": type, "param": NSNull(), "code": code]]
        }
        // Google's "invalid key" is a 400 with UNAUTHENTICATED; keep the real status for the others.
        if case .invalidKey = kind, [.gemini, .googleTTS, .googleTranslate].contains(family) { status = 400 }
        return json(status, body, headers: extra)
    }

    func json(_ status: Int, _ object: [String: Any], headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// The requests a mock received, for tests to assert on.
actor RequestRecorder {
    private var requests: [Data] = []

    func record(_ request: [String: Any]) {
        if let data = try? JSONSerialization.data(withJSONObject: request, options: [.sortedKeys]) { requests.append(data) }
    }

    /// Every recorded request, oldest first, as one JSON array.
    func json() -> Data {
        Data("[".utf8) + requests.joined(separator: Data(",".utf8)) + Data("]".utf8)
    }

    func clear() { requests.removeAll() }

    /// When set, every non-mock request is answered with this status.
    private(set) var forcedStatus: Int?

    func setForcedStatus(_ status: Int?) { forcedStatus = status }

    /// When each per-minute key's window opened.
    private var windows: [String: ContinuousClock.Instant] = [:]

    /// The time left in `key`'s refusal window (opened by its first call), or `nil` once it has passed.
    func windowRefusal(key: String, window: Duration) -> Duration? {
        let now = ContinuousClock.now
        let opened = windows[key] ?? now
        windows[key] = opened
        let left = opened + window - now
        return left > .zero ? left : nil
    }
}
