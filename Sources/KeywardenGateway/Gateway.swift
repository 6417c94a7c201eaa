import AsyncHTTPClient
import Foundation
import KeywardenCore
import KeywardenProviders
import KeywardenStore
import Logging
import NIOCore
import NIOHTTP1

/// Forwards a call to the vendor with the resolved key injected, fails over to the next key on a
/// refusal, rate limit, server error, timeout or connection error before the response head, and meters it.
///
/// After the response head there is no retry: the client sees the vendor's stream as it comes.
public final class Gateway: Sendable {
    let store: Store
    let client: HTTPClient
    let settings: GatewaySettings
    let health: HealthCheckService?
    let ledger: UsageLedger
    let metrics: GatewayMetrics
    let logger: Logger
    public let cooldowns = Cooldowns()
    let fallbacks = FallbackTracker()

    public init(store: Store, client: HTTPClient, settings: GatewaySettings, health: HealthCheckService?, ledger: UsageLedger,
                metrics: GatewayMetrics, logger: Logger) {
        self.store = store
        self.client = client
        self.settings = settings
        self.health = health
        self.ledger = ledger
        self.metrics = metrics
        self.logger = logger
    }

    /// Headers a proxy never forwards (RFC 9110 §7.6.1), plus the ones Keywarden sets or removes itself.
    static let requestHeadersNotForwarded: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length", "accept-encoding", "cookie",
    ]
    static let responseHeadersNotForwarded: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade",
        "content-length", "set-cookie", "openai-organization", "openai-project",
    ]
    /// The most of a failed attempt's body read (to classify it, and to pass the last one on).
    static let errorBodyLimit = 64 * 1024

    // MARK: Handling a call

    /// Resolves, forwards and meters one call. Never throws: every failure is an answer with a stable code.
    public func handle(_ call: GatewayCall) async -> GatewayResponse {
        let started = ContinuousClock.now
        var meter = Meter(call: call, started: started)
        let snapshot: ResolutionSnapshot
        do {
            snapshot = try await store.resolution.snapshot()
        } catch {
            logger.error("gateway: resolution snapshot unavailable", metadata: ["error": "\(error)"])
            return finishWithError(&meter, status: 503, code: "store_unavailable", message: "Keywarden cannot read its keys right now; try again.")
        }

        if let workspaceID = call.workspaceID, snapshot.workspaces[workspaceID] == nil {
            return finishWithError(&meter, status: 404, code: "not_found", message: "The workspace was not found.")
        }

        // What is asked: provider (or a model to route by), modality, and for the OpenAI face the JSON body.
        let bodyBytes = call.body.bytes.map { Array($0.readableBytesView) }
        let facts = RequestFacts.read(body: bodyBytes, path: call.pathAndQuery)
        meter.model = facts.model
        meter.characters = facts.characters
        var query: ResolutionQuery
        var requestedModel = facts.model
        switch call.face {
        case .native(let providerID):
            meter.providerID = providerID
            let provider = store.catalog.provider(providerID)
            let modality = call.modality ?? Modality.inferred(fromPath: call.pathAndQuery) ?? provider?.modalities.first ?? .chat
            meter.modality = modality
            query = ResolutionQuery(workspaceID: call.workspaceID, providerID: providerID, model: facts.model, modality: modality,
                                    consumer: call.consumer, allowsOtherProvider: false)
        case .chatCompletions(let providerID):
            meter.modality = .chat
            guard bodyBytes != nil, let model = facts.model, !model.isEmpty else {
                return finishWithError(&meter, status: 400, code: "invalid_request", message: "Send a JSON body with a model, as the OpenAI chat completions API expects.")
            }
            var provider = providerID
            var routedModel = model
            // "anthropic/claude-sonnet-4-6" names the provider, unless the whole name is a model of the catalog.
            if provider == nil, store.catalog.provider(servingModel: model) == nil, let slash = model.firstIndex(of: "/"),
               store.catalog.contains(String(model[..<slash])) {
                provider = String(model[..<slash])
                routedModel = String(model[model.index(after: slash)...])
            }
            requestedModel = routedModel
            meter.model = routedModel
            query = ResolutionQuery(workspaceID: call.workspaceID, providerID: provider, model: routedModel, modality: .chat,
                                    consumer: call.consumer, allowsOtherProvider: true)
        }

        let resting = cooldowns.resting()
        let candidates: [Candidate]
        switch Resolver.resolve(query, in: snapshot, catalog: store.catalog, coolingDown: resting) {
        case .success(let list):
            candidates = list
        case .failure(let failure):
            meter.providerID = failure.providerID ?? meter.providerID
            // When only rate-limit rests stand in the way, say so like a vendor would: 429 with Retry-After.
            if !resting.isEmpty,
               case .success(let waiting) = Resolver.resolve(query, in: snapshot, catalog: store.catalog, coolingDown: cooldowns.resting(refusedOnly: true)),
               let wait = cooldowns.shortestRateLimit(among: waiting.map(\.credentialID)) {
                let seconds = max(1, Int((Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18).rounded(.up)))
                return finishWithError(&meter, status: 429, code: "keys_cooling_down",
                                       message: failure.description + " (keys are resting after a rate limit; retry in \(seconds) s)",
                                       headers: [("Retry-After", "\(seconds)")])
            }
            // As POST /api/v1/resolve answers: a call no key can pay for is not something to retry.
            let status = failure.code == "no_key_available" ? 422 : 400
            return finishWithError(&meter, status: status, code: failure.code, message: failure.description)
        }
        // The provider asked for (directly, or through its model); another one only serves as the managed default.
        let requestedProvider = query.providerID ?? store.catalog.provider(servingModel: query.model ?? "")?.id
        meter.providerID = requestedProvider ?? candidates[0].providerID

        // Headers the caller's Connection header names are hop-by-hop too.
        let hopByHop = Set(call.headers.filter { $0.name.lowercased() == "connection" }
            .flatMap { $0.value.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
        var attempts = 0
        var lastFailure: AttemptFailure?
        var secrets: [String] = []
        for candidate in candidates.prefix(max(1, settings.maxAttempts)) {
            guard attempts == 0 || call.body.isReplayable else { break }
            guard let credential = snapshot.credential(candidate.credentialID), let provider = store.catalog.provider(candidate.providerID) else { continue }
            attempts += 1
            meter.attempts = attempts
            meter.candidate = candidate

            // The request for this key.
            let opened: (key: Secret?, extras: [String: Secret])
            do {
                opened = try await store.resolution.openSecrets(of: credential)
            } catch {
                logger.error("gateway: key does not open; skipped", metadata: ["key": "\(credential.id)"])
                metrics.failover(provider: provider.id, reason: "unreadable")
                lastFailure = .local(502, "key_unreadable", "A key of \(provider.displayName) could not be opened.")
                continue
            }
            var path = call.pathAndQuery
            var auth: AuthScheme?
            var body = call.body
            if case .chatCompletions = call.face {
                guard let endpoint = provider.chatCompletions else {
                    lastFailure = .local(400, "not_openai_compatible", "\(provider.displayName) has no OpenAI-compatible chat completions endpoint.")
                    continue
                }
                path = endpoint.path
                auth = endpoint.auth
                // The managed default (or another provider) answers with its own model; a "provider/" prefix is dropped.
                let sendModel = candidate.providerID == requestedProvider ? (requestedModel ?? candidate.model) : candidate.model
                if let sendModel, sendModel != facts.model, let bytes = bodyBytes, let rewritten = Self.replacingModel(in: bytes, with: sendModel) {
                    body = .complete(ByteBuffer(bytes: rewritten))
                }
                meter.model = sendModel ?? meter.model
            }
            let vendorRequest: VendorRequest
            do {
                vendorRequest = try VendorRequestBuilder.forward(
                    for: provider, credentials: VendorCredentials(key: opened.key, extras: opened.extras), method: call.method,
                    pathAndQuery: path, auth: auth, callerHeaders: Set(call.headers.map { $0.name.lowercased() })
                )
            } catch {
                lastFailure = .local(502, error.code, error.message)
                continue
            }
            secrets.append(contentsOf: vendorRequest.secretsForScrubbing)

            var request = HTTPClientRequest(url: vendorRequest.url)
            request.method = HTTPMethod(rawValue: call.method)
            for (name, value) in call.headers where !Self.requestHeadersNotForwarded.contains(name.lowercased()) && !hopByHop.contains(name.lowercased()) {
                request.headers.add(name: name, value: value)
            }
            for (name, value) in vendorRequest.headers {
                request.headers.replaceOrAdd(name: name, value: value)
            }
            switch body {
            case .empty: break
            case .complete(let buffer): request.body = .bytes(buffer)
            case .stream(_, let make): request.body = make()
            }

            // Send, and decide on the response head.
            let response: HTTPClientResponse
            do {
                response = try await client.execute(request, deadline: .now() + TimeAmount(settings.firstByteTimeout))
            } catch {
                let timedOut = Self.isTimeout(error)
                metrics.failover(provider: provider.id, reason: timedOut ? "timeout" : "connect")
                logger.warning("gateway: vendor unreachable", metadata: ["provider": "\(provider.id)", "key": "\(credential.id)", "timeout": "\(timedOut)"])
                lastFailure = timedOut
                    ? .local(504, "upstream_timeout", "\(provider.displayName) did not answer in time.")
                    : .local(502, "upstream_unreachable", "\(provider.displayName) could not be reached.")
                continue
            }
            let status = Int(response.status.code)
            if Self.triggersFailover(status) {
                let errorBody = await Self.collect(response.body, limit: Self.errorBodyLimit)
                let reason = react(to: status, body: errorBody, headers: response.headers, credential: credential, scrubber: vendorRequest.scrubber)
                metrics.failover(provider: provider.id, reason: reason)
                lastFailure = .vendor(status, response.headers, errorBody)
                continue
            }

            // This key answers: pass the response on.
            meter.status = status
            noteSource(candidate, call: call, snapshot: snapshot, query: query)
            var headers = Self.forwardedHeaders(response.headers)
            headers += Self.keywardenHeaders(candidate, attempts: attempts)
            let contentType = response.headers.first(name: "content-type")
            if status >= 400 {
                // A 400 and the like go back as the vendor sent them, with any echo of the key removed.
                let bytes = await Self.collect(response.body, limit: Self.errorBodyLimit)
                let cleaned = Self.scrub(bytes, secrets: secrets)
                finish(&meter, counts: UsageCounts(), model: nil)
                return GatewayResponse(status: status, headers: headers, body: .complete(ByteBuffer(bytes: cleaned)), contentLength: nil)
            }
            let length = contentType?.contains("text/event-stream") == true ? nil : response.headers.first(name: "content-length").flatMap(Int.init)
            let finalMeter = meter
            let stream = UpstreamStream(body: response.body, contentType: contentType) { [self] result, error in
                var meter = finalMeter
                if error != nil { meter.interrupted = true }
                finish(&meter, counts: result.counts, model: result.model)
            }
            return GatewayResponse(status: status, headers: headers, body: .stream(stream), contentLength: length)
        }

        // Every key tried failed (or none could be tried).
        switch lastFailure {
        case .vendor(let status, let vendorHeaders, let bytes)?:
            meter.status = status
            var headers = Self.forwardedHeaders(vendorHeaders)
            if let candidate = meter.candidate { headers += Self.keywardenHeaders(candidate, attempts: attempts) }
            finish(&meter, counts: UsageCounts(), model: nil)
            return GatewayResponse(status: status, headers: headers, body: .complete(ByteBuffer(bytes: Self.scrub(bytes, secrets: secrets))), contentLength: nil)
        case .local(let status, let code, let message)?:
            var headers: [(name: String, value: String)] = [("X-Keywarden-Attempts", "\(attempts)")]
            if let candidate = meter.candidate { headers = Self.keywardenHeaders(candidate, attempts: attempts) }
            return finishWithError(&meter, status: status, code: code, message: message, headers: headers)
        case nil:
            return finishWithError(&meter, status: 422, code: "no_key_available", message: "No key could be tried for this call.")
        }
    }

    enum AttemptFailure {
        case vendor(Int, HTTPHeaders, [UInt8])
        case local(Int, String, String)
    }

    // MARK: Failover decisions

    /// Statuses that send the call to the next key: the key was refused, rate limited, or the vendor failed.
    static func triggersFailover(_ status: Int) -> Bool {
        status == 401 || status == 403 || status == 429 || (500...599).contains(status)
    }

    /// Takes a failing key out of rotation for this instance at once, and records what the vendor said
    /// (a refused key is marked invalid and re-checked; a spent quota is recorded) without delaying the call.
    func react(to status: Int, body: [UInt8], headers: HTTPHeaders, credential: Credential, scrubber: SecretScrubber) -> String {
        let (verdict, message, retryAfter) = ResponseClassifier.classify(
            httpStatus: status, body: Data(body), retryAfterHeader: headers.first(name: "retry-after"), scrubber: scrubber
        )
        let reason: String
        var record: VerificationStatus?
        switch verdict {
        case .rateLimited:
            cooldowns.rest(credential.id, for: retryAfter.map { .seconds($0) } ?? settings.defaultCooldown, rateLimited: true)
            reason = "rate_limited"
        case .quotaExceeded:
            cooldowns.rest(credential.id, for: settings.rejectedCooldown, rateLimited: false)
            record = .quotaExceeded
            reason = "quota_exceeded"
        case .invalid where status == 401:
            cooldowns.rest(credential.id, for: settings.rejectedCooldown, rateLimited: false)
            record = .invalid
            reason = "invalid"
        case .noPermission:
            cooldowns.rest(credential.id, for: settings.rejectedCooldown, rateLimited: false)
            reason = "forbidden"
            health?.requestCheck(credentialID: credential.id)
        default:
            reason = "server_error"
        }
        if let record {
            let (store, health, logger) = (self.store, self.health, self.logger)
            Task {
                do {
                    try await store.notifications.recordStatus(credentialID: credential.id, status: record, message: message, checkedAt: Date(), actor: "gateway")
                } catch {
                    logger.error("gateway: key status not recorded", metadata: ["key": "\(credential.id)", "error": "\(error)"])
                }
                if record == .invalid { health?.requestCheck(credentialID: credential.id) }
            }
        }
        return reason
    }

    /// Raises `fallback.engaged` when a workspace that has its own keys for the provider is served by the
    /// platform's or the managed key, once per move; the workspace's own key serving again re-arms it.
    func noteSource(_ candidate: Candidate, call: GatewayCall, snapshot: ResolutionSnapshot, query: ResolutionQuery) {
        guard let workspaceID = call.workspaceID else { return }
        let providerID = query.providerID ?? store.catalog.provider(servingModel: query.model ?? "")?.id ?? candidate.providerID
        if candidate.source == .byok {
            fallbacks.release(workspaceID: workspaceID, providerID: providerID)
            return
        }
        guard snapshot.workspaces[workspaceID]?.byokAllowed == true,
              let own = snapshot.workspaceKeys[workspaceID]?.filter({ $0.providerID == providerID && $0.active && !$0.hint.isEmpty }), !own.isEmpty,
              fallbacks.engage(workspaceID: workspaceID, providerID: providerID)
        else { return }
        let reason = "the workspace's \(providerID) keys could not serve the call; \(candidate.source.rawValue) key used"
        let (store, logger) = (self.store, self.logger)
        Task {
            do {
                try await store.notifications.recordFallback(workspaceID: workspaceID, providerID: providerID, source: candidate.source,
                                                             credentialID: candidate.credentialID, reason: reason)
            } catch {
                logger.error("gateway: fallback event not recorded", metadata: ["error": "\(error)"])
            }
        }
    }

    static func isTimeout(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError {
            return error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout
        }
        return false
    }

    // MARK: Headers and bodies

    static func forwardedHeaders(_ headers: HTTPHeaders) -> [(name: String, value: String)] {
        headers.filter { !responseHeadersNotForwarded.contains($0.name.lowercased()) }.map { ($0.name, $0.value) }
    }

    static func keywardenHeaders(_ candidate: Candidate, attempts: Int) -> [(name: String, value: String)] {
        [("X-Keywarden-Source", candidate.source.rawValue), ("X-Keywarden-Key", candidate.credentialID),
         ("X-Keywarden-Provider", candidate.providerID), ("X-Keywarden-Attempts", "\(attempts)")]
    }

    /// Reads a body up to `limit` bytes (the rest is read and dropped, so the connection can be reused).
    static func collect(_ body: HTTPClientResponse.Body, limit: Int) async -> [UInt8] {
        var bytes: [UInt8] = []
        do {
            for try await chunk in body where bytes.count < limit {
                bytes.append(contentsOf: chunk.readableBytesView.prefix(limit - bytes.count))
            }
        } catch {}
        return bytes
    }

    /// A vendor's body with every secret sent to it, and long fragments of them, removed.
    static func scrub(_ bytes: [UInt8], secrets: [String]) -> [UInt8] {
        guard !secrets.isEmpty, let text = String(validating: bytes, as: UTF8.self) else { return bytes }
        return Array(SecretScrubber(secrets: secrets).scrub(text).utf8)
    }

    /// The JSON body with its `model` replaced, or `nil` when it is not a JSON object.
    static func replacingModel(in body: [UInt8], with model: String) -> [UInt8]? {
        guard var object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        object["model"] = model
        return (try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])).map(Array.init)
    }

    // MARK: Metering

    /// What is known of a call as it goes, turned into a usage row at the end.
    struct Meter: Sendable {
        let call: GatewayCall
        let started: ContinuousClock.Instant
        var providerID = ""
        var model: String?
        var modality: Modality = .chat
        var characters: Int?
        var candidate: Candidate?
        var attempts = 0
        var status = 0
        var interrupted = false

        init(call: GatewayCall, started: ContinuousClock.Instant) {
            self.call = call
            self.started = started
            if case .native(let id) = call.face { providerID = id }
            if case .chatCompletions(let id?) = call.face { providerID = id }
        }
    }

    func finishWithError(_ meter: inout Meter, status: Int, code: String, message: String, headers: [(name: String, value: String)] = []) -> GatewayResponse {
        meter.status = status
        finish(&meter, counts: UsageCounts(), model: nil)
        let body = (try? JSONSerialization.data(withJSONObject: ["error": ["code": code, "message": message, "type": "keywarden_error"]], options: [.sortedKeys])) ?? Data()
        return GatewayResponse(status: status, headers: headers + [("Content-Type", "application/json; charset=utf-8")],
                               body: .complete(ByteBuffer(bytes: body)), contentLength: body.count)
    }

    func finish(_ meter: inout Meter, counts: UsageCounts, model: String?) {
        let elapsed = ContinuousClock.now - meter.started
        var counts = counts
        if meter.modality == .tts, counts.characters == nil { counts.characters = meter.characters }
        let source = meter.candidate?.source
        let succeeded = (200..<400).contains(meter.status) && !meter.interrupted
        let credits = succeeded && source != nil ? settings.credits.milliCredits(provider: meter.providerID, source: source ?? .platform) : 0
        let milliseconds = Int(elapsed.components.seconds) * 1000 + Int(elapsed.components.attoseconds / 1_000_000_000_000_000)
        ledger.append(UsageRecord(
            at: Date(), workspaceID: meter.call.workspaceID, providerID: meter.candidate?.providerID ?? meter.providerID,
            model: model ?? meter.model, credentialID: meter.candidate?.credentialID, source: source, modality: meter.modality,
            consumer: meter.call.consumer, status: meter.interrupted ? 499 : meter.status, latencyMilliseconds: milliseconds, counts: counts,
            milliCredits: credits, attempts: meter.attempts
        ))
        let providerLabel = meter.candidate?.providerID ?? (meter.providerID.isEmpty ? "unknown" : meter.providerID)
        metrics.call(provider: providerLabel, source: source?.rawValue ?? "none", status: meter.status, duration: elapsed)
        metrics.tokens(provider: providerLabel, source: source?.rawValue ?? "none", input: counts.inputTokens, output: counts.outputTokens)
    }
}
