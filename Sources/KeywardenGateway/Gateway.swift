import AsyncHTTPClient
import Foundation
import KeywardenCore
import KeywardenApp
import KeywardenProviders
import Logging
import NIOCore
import NIOHTTP1

/// Forwards a call to the vendor with the resolved key injected, fails over to the next key on a
/// refusal, rate limit, server error, timeout or connection error before the response head, and meters it.
///
/// After the response head there is no retry: the client sees the vendor's stream as it comes.
public final class Gateway: Sendable {
    let app: any GatewayBackend
    let transport: any VendorTransport
    public let settings: GatewaySettings
    let health: HealthCheckService?
    let ledger: UsageLedger
    let metrics: GatewayMetrics
    let logger: Logger
    let policy: FailoverPolicy
    public let cooldowns = Cooldowns()
    /// What calls leave to be done after them, carried out by one owner (a service of its own: run it beside the server).
    public let effects: GatewayEffects
    let fallbacks = FallbackTracker()
    /// The scrubbers of the keys calls used lately.
    let scrubbers = SecretScrubber.Cache()

    public init(app: any GatewayBackend, transport: any VendorTransport, settings: GatewaySettings, health: HealthCheckService?, ledger: UsageLedger,
                metrics: GatewayMetrics, logger: Logger) {
        self.app = app
        self.transport = transport
        self.settings = settings
        self.policy = FailoverPolicy(settings)
        self.health = health
        self.ledger = ledger
        self.metrics = metrics
        self.logger = logger
        effects = GatewayEffects(app: app, health: health, ledger: ledger, logger: logger)
        // Rests other instances announce are kept here too.
        let cooldowns = self.cooldowns
        // A key given a new secret is tried again at once: its rest was the old secret's refusal. The old secret's
        // scrubber goes too (nothing built from a replaced secret is kept).
        let scrubbers = self.scrubbers
        app.onKeysReplaced { ids in
            cooldowns.lift(ids)
            scrubbers.removeAll()
        }
        let fallbacks = self.fallbacks
        let backend = app
        app.followRests { payload in
            if payload.hasPrefix("fallback|") {
                fallbacks.apply(payload)
            } else if let announcement = Cooldowns.Announcement(payload: payload) {
                // A refusal of a secret this instance already knows replaced (the announcement came late) is not the key's.
                if let refused = announcement.keyTag, let held = backend.heldKeyTag(of: announcement.credentialID), held != refused { return }
                cooldowns.apply(announcement)
            }
        }
    }

    // MARK: Handling a call

    /// Resolves, forwards and meters one call. Never throws: every failure is an answer with a stable code.
    ///
    /// The answer says what the call cost in its `Server-Timing` header: Keywarden's own time until the response head
    /// (`kw`) and the time spent waiting for vendors' response heads (`upstream`); `kw` also goes to the overhead histogram.
    public func handle(_ call: GatewayCall) async -> GatewayResponse {
        var upstream = Duration.zero
        var response = await respond(to: call, upstream: &upstream)
        let own = max(.zero, ContinuousClock.now - call.receivedAt - upstream)
        metrics.overhead(own)
        response.headers.append(("Server-Timing", ServerTiming.header(own: own, upstream: upstream)))
        return response
    }

    /// The call's answer; `upstream` adds up the time spent waiting for vendors (their response heads, failed attempts' bodies).
    private func respond(to call: GatewayCall, upstream: inout Duration) async -> GatewayResponse {
        var meter = Meter(call: call, started: call.receivedAt)
        let plan: CallPlan
        switch await self.plan(call, meter: &meter) {
        case .planned(let planned): plan = planned
        case .answered(let response): return response
        }
        var state = AttemptState(limits: plan.limits)
        for candidate in policy.keysToTry(plan.candidates) {
            guard policy.mayTry(afterAttempts: state.attempts, bodyReplayable: call.body.isReplayable) else { break }
            // A client that left is answered no more: no other key is tried for it.
            if Task.isCancelled, !state.clientLeft {
                state.clientLeft = true
                state.lastFailure = .local(Self.clientClosedStatus, "client_closed", "The client closed its connection before the answer came.")
            }
            if state.clientLeft { break }
            // The workspace's own-keys budget is spent: the platform's keys stand in only where the workspace chose so.
            if state.ownBudgetSpent, candidate.source != .byok, plan.platformFallback != .onFailureOrBudget { continue }
            if case .delivered(let response) = await attempt(candidate, of: call, plan: plan, state: &state, meter: &meter, upstream: &upstream) {
                return response
            }
        }

        return failureResponse(state: state, meter: &meter, call: call)
    }

    /// The answer when every key tried failed (or none could be tried), and the call's usage row.
    func failureResponse(state: AttemptState, meter: inout Meter, call: GatewayCall) -> GatewayResponse {
        switch state.lastFailure {
        case .vendor(let status, let vendorHeaders, let bytes)?:
            meter.status = status
            let scrubber = scrubbers.scrubber(for: state.secrets)
            var headers = Self.scrubbed(Self.forwardedHeaders(vendorHeaders, owned: meter.candidate.map { Self.owns(call, $0) } ?? true), with: scrubber)
            if let candidate = meter.candidate { headers += Self.keywardenHeaders(candidate, attempts: state.attempts, owned: Self.owns(call, candidate)) }
            finish(&meter, counts: UsageCounts(), model: nil)
            var cleaned = Self.errorBody(bytes, status: status, vendorHeaders: vendorHeaders, headers: &headers, scrubber: scrubber)
            if let translation = state.lastTranslation {
                cleaned = translation.error(status: status, body: cleaned)
                if let again = scrubber.scrubbedIfNeeded(cleaned) { cleaned = again }
                headers.removeAll { ["content-type", "content-length"].contains($0.name.lowercased()) }
                headers.append(("Content-Type", "application/json"))
            }
            return GatewayResponse(status: status, headers: headers, body: .complete(ByteBuffer(bytes: cleaned)), contentLength: nil)
        case .local(let status, let code, let message)?:
            var headers: [(name: String, value: String)] = [("X-Keywarden-Attempts", "\(state.attempts)")]
            if let candidate = meter.candidate { headers = Self.keywardenHeaders(candidate, attempts: state.attempts, owned: Self.owns(call, candidate)) }
            return finishWithError(&meter, status: status, code: code, message: message, headers: headers, writesRow: !state.lastAttemptBilled)
        case .limited(let seconds, let message)?:
            return finishWithError(&meter, status: 429, code: "rate_limited", message: message,
                                   headers: [("X-Keywarden-Attempts", "\(state.attempts)"), ("Retry-After", "\(seconds)")])
        case nil:
            return finishWithError(&meter, status: 422, code: "no_key_available", message: "No key could be tried for this call.")
        }
    }

    /// What a call asks for (provider or model, modality, the body's facts) and the keys that may serve it, in order; or
    /// the answer when none can be tried.
    func plan(_ call: GatewayCall, meter: inout Meter) async -> Planned {
        // What this instance holds serves only while it is confirmed current: past the staleness bound a key another
        // instance deactivated could still be here.
        guard app.isCurrent else {
            let since = app.sinceConfirmed.map { " for \($0.components.seconds) s" } ?? ""
            return .answered(finishWithError(&meter, status: 503, code: "store_unavailable",
                message: "Keywarden has not been able to confirm its keys are current\(since); try again shortly."))
        }
        let snapshot: ResolutionView
        do {
            snapshot = try await app.resolutionView(for: call.workspaceID)
        } catch {
            logger.error("gateway: resolution state unavailable", metadata: ["error": "\(error)"])
            return .answered(finishWithError(&meter, status: 503, code: "store_unavailable", message: "Keywarden cannot read its keys right now; try again."))
        }

        if let workspaceID = call.workspaceID, snapshot.policy(ofWorkspace: workspaceID) == nil {
            return .answered(finishWithError(&meter, status: 404, code: "not_found", message: "The workspace was not found."))
        }

        // What is asked: provider (or a model to route by), modality, and for the OpenAI face the JSON body.
        let bodyBytes = call.body.bytes.map { Array($0.readableBytesView) }
        var facts = RequestFacts.read(body: bodyBytes, path: call.pathAndQuery)
        // A form upload (transcription, an image edit) names its model and whether it streams in form fields.
        // (Read once: the unread-body rule below judges the same reading.)
        let contentType = call.headers.first { $0.name.lowercased() == "content-type" }?.value
        let form = MultipartForm.isForm(contentType) ? bodyBytes.flatMap { body in
            contentType.map { MultipartForm.read(body, contentType: $0, names: Self.formFields) }
        } : nil
        if case .fields(let fields)? = form {
            if facts.model == nil { facts.model = fields["model"] }
            if let stream = fields["stream"] { facts.stream = stream.lowercased() == "true" }
        }
        meter.model = facts.model == Self.defaultModelName ? nil : facts.model
        meter.characters = facts.characters
        var query: ResolutionQuery
        var requestedModel = facts.model
        var routed: Resolver.RouteResolution?
        var routeName: String?
        switch call.face {
        case .native(let providerID):
            meter.providerID = providerID
            let provider = app.catalog.provider(providerID)
            let modality = call.modality ?? Modality.inferred(fromPath: call.pathAndQuery) ?? provider?.modalities.first ?? .chat
            meter.modality = modality
            query = ResolutionQuery(workspaceID: call.workspaceID, providerID: providerID, model: facts.model, modality: modality,
                                    consumer: call.consumer, allowsOtherProvider: false)
        case .chatCompletions(let providerID), .messages(let providerID), .responses(let providerID):
            meter.modality = .chat
            guard bodyBytes != nil, facts.isJSONObject else {
                let api = switch call.face.callerShape {
                case .anthropicMessages?: "Anthropic Messages"
                case .openAIResponses?: "OpenAI Responses"
                default: "OpenAI chat completions"
                }
                return .answered(finishWithError(&meter, status: 400, code: "invalid_request", message: "Send a JSON object body, as the \(api) API expects."))
            }
            // No model (or "default"): the serving key's default model, at the provider named; else the workspace's own
            // chat provider when it has one active (exclusive mode: the one it chose); else the platform's default.
            let named = facts.model.flatMap { $0.isEmpty || $0 == Self.defaultModelName ? nil : $0 }
            // A route: `route:<name>`, or a call naming no model nor provider when a route is named `default`.
            if let name = ChatRoute.name(inModel: named) ?? (named == nil && providerID == nil && snapshot.route(Self.defaultModelName) != nil ? Self.defaultModelName : nil) {
                guard let route = snapshot.route(name) else {
                    return .answered(finishWithError(&meter, status: 404, code: "unknown_route", message: "There is no route '\(name)' for this workspace or the platform."))
                }
                routeName = name
                let resting = cooldowns.resting(for: call.workspaceID, currentTag: { [backend = app] in backend.heldKeyTag(of: $0) })
                switch Resolver.resolve(route: route, workspaceID: call.workspaceID, consumer: call.consumer, in: snapshot, catalog: app.catalog,
                                        coolingDown: resting) {
                case .success(let resolved): routed = resolved
                case .failure(let failure):
                    return .answered(finishWithError(&meter, status: 422, code: failure.code, message: failure.description))
                }
            }
            var providerID = providerID
            if routed == nil, named == nil, providerID == nil {
                providerID = call.workspaceID.flatMap { workspaceChatProvider(snapshot, workspaceID: $0) } ?? snapshot.platform.managedDefault?.providerID
            }
            guard named != nil || providerID != nil || routed != nil else {
                return .answered(finishWithError(&meter, status: 400, code: "model_required",
                                       message: "Name a model, or name the provider in X-Keywarden-Provider to use its key's default model."))
            }
            var provider = providerID
            var routedModel = named
            // "anthropic/claude-sonnet-4-6" names the provider, unless the whole name is a model of the catalog.
            if provider == nil, let model = named, app.catalog.provider(servingModel: model) == nil, let slash = model.firstIndex(of: "/"),
               app.catalog.contains(String(model[..<slash])) {
                provider = String(model[..<slash])
                routedModel = String(model[model.index(after: slash)...])
            }
            requestedModel = routedModel
            meter.model = routedModel
            query = ResolutionQuery(workspaceID: call.workspaceID, providerID: provider, model: routedModel, modality: .chat,
                                    consumer: call.consumer, allowsOtherProvider: true)
            if let routed, let first = routed.candidates.first {
                // Each key serves its step's model; the route's first key stands for the call until one answers.
                requestedModel = nil
                meter.model = first.model
                query = routed.queries.first ?? query
            }
        }

        // A rest of a secret the key no longer holds here is over (its secret was replaced, wherever the rest was met).
        let backend = app
        let resting = cooldowns.resting(for: call.workspaceID, currentTag: { backend.heldKeyTag(of: $0) })
        var candidates: [Candidate]
        switch routed.map({ Result<[Candidate], ResolutionFailure>.success($0.candidates) }) ?? Resolver.resolve(query, in: snapshot, catalog: app.catalog, coolingDown: resting) {
        case .success(let list):
            candidates = list
        case .failure(let failure):
            meter.providerID = failure.providerID ?? meter.providerID
            // When only rate-limit rests stand in the way, say so like a vendor would: 429 with Retry-After.
            if !resting.isEmpty,
               case .success(let waiting) = Resolver.resolve(query, in: snapshot, catalog: app.catalog,
                                                             coolingDown: cooldowns.resting(for: call.workspaceID, refusedOnly: true,
                                                                                            currentTag: { backend.heldKeyTag(of: $0) })),
               let wait = cooldowns.shortestRateLimit(among: waiting.map(\.credentialID), for: call.workspaceID) {
                let seconds = max(1, Int((Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18).rounded(.up)))
                return .answered(finishWithError(&meter, status: 429, code: "keys_cooling_down",
                                       message: failure.description + " (keys are resting after a rate limit; retry in \(seconds) s)",
                                       headers: [("Retry-After", "\(seconds)")]))
            }
            // As POST /api/v1/resolve answers: a call no key can pay for is not something to retry.
            let status = failure.code == "no_key_available" ? 422 : 400
            return .answered(finishWithError(&meter, status: status, code: failure.code, message: failure.description))
        }
        // The workspace's limits (its own, else its plan's, else the platform's default), read once for every attempt.
        let limits = call.workspaceID.flatMap { snapshot.limits(ofWorkspace: $0, defaultPlatformBudget: settings.defaultPlatformBudget) }
        // A body every vendor's parser may not read as Keywarden does serves only keys it may pass to unread (judged
        // only when a candidate reads it: otherwise none would be set aside).
        if candidates.contains(where: { Self.readsBody($0, limits: limits) }),
           let why = Self.unreadBody(call, bodyBytes: bodyBytes, contentType: contentType, form: form) {
            candidates = candidates.filter { !Self.readsBody($0, limits: limits) }
            guard !candidates.isEmpty else {
                meter.providerID = query.providerID ?? meter.providerID
                return .answered(finishWithError(&meter, status: why.status, code: why.code, message: why.message))
            }
        }
        // The provider asked for (directly, or through its model); another one only serves as the managed default.
        // On a route no provider is asked for: each key serves its step's model.
        let requestedProvider = routed != nil ? nil : query.providerID ?? app.catalog.provider(servingModel: query.model ?? "")?.id
        meter.providerID = requestedProvider ?? candidates[0].providerID
        return .planned(CallPlan(snapshot: snapshot, facts: facts, bodyBytes: bodyBytes, query: query, requestedModel: requestedModel,
                                 requestedProvider: requestedProvider, candidates: candidates, limits: limits,
                                 routeQueries: routed?.queries ?? [], routeName: routeName,
                                 platformFallback: call.workspaceID.map { snapshot.platformFallback(ofWorkspace: $0) } ?? .onFailureOrBudget))
    }

    /// The one chat provider whose keys the workspace has active (`nil`: none, or several).
    func workspaceChatProvider(_ snapshot: ResolutionView, workspaceID: String) -> String? {
        let providers = Set(snapshot.keys(ofWorkspace: workspaceID).filter { key in
            key.active && app.catalog.provider(key.providerID).map { ChatTranslation.shape(of: $0.dialect) != nil } == true
        }.map(\.providerID))
        return providers.count == 1 ? providers.first : nil
    }

    /// The form fields a call's metering reads.
    static let formFields: Set<String> = ["model", "stream"]

    /// Whether a key serves a call only with a body Keywarden read as every vendor reads it: the platform pays for the call
    /// (its keys, the managed default), or a budget or rate limit applies to it. A workspace's own key with no budget
    /// may take a body unread: the workspace pays its own vendor, whatever the body asks for.
    static func readsBody(_ candidate: Candidate, limits: EffectiveLimits?) -> Bool {
        candidate.source != .byok || limits?.budget[.byok] != nil
    }

    /// Why a call's body cannot be read as every vendor would read it (`nil`: it can, or it is not JSON to a vendor);
    /// `form` is the reading of a form upload's fields (`nil` for any other body).
    static func unreadBody(_ call: GatewayCall, bodyBytes: [UInt8]?, contentType: String?,
                           form: MultipartForm.Reading?) -> (status: Int, code: String, message: String)? {
        func unreadable(_ why: String) -> (status: Int, code: String, message: String) {
            (400, "unreadable_body", "Keywarden reads the body of a call the platform pays for, or under a budget, as every vendor would, and this one reads differently to some: \(why). Send it without that.")
        }
        // A compressed body is read by no meter (and by some vendors): it serves only keys that may take it unread.
        if case .empty = call.body {} else if let encoding = call.headers.first(where: { $0.name.lowercased() == "content-encoding" })?.value,
                                               encoding.lowercased().trimmingCharacters(in: .whitespaces) != "identity" {
            return unreadable("a compressed body (Content-Encoding: \(RequestBodyCheck.shown(encoding)))")
        }
        switch call.body {
        case .empty:
            return nil
        case .stream:
            // Too large to be kept and read (past the read limit, or the replay limit for a binary type): a body that may be
            // JSON to a vendor, or a form whose fields name the model, serves only keys that may take it unread.
            guard !GatewayRequestBody.isBinary(contentType: contentType) || MultipartForm.isForm(contentType) else { return nil }
            return (413, "body_too_large",
                    "A body sent on the platform's key or under a budget is read before it is sent, so it may be at most \(GatewayRequestBody.readLimit / 1024 / 1024) MiB unless it is media; larger ones only on the workspace's own key without a budget.")
        case .complete:
            guard let body = bodyBytes else { return nil }
            // A form label does not hide JSON: a body that opens as JSON is judged as JSON whatever its type says.
            if let form, !RequestBodyCheck.looksLikeJSON(body, contentType: nil) {
                guard case .unreadable(let why) = form else { return nil }
                return unreadable(why)
            }
            // UTF-16 or UTF-32 (a byte-order mark, or NUL bytes around the first characters) is JSON to a parser that
            // detects the encoding (Python's json.loads of bytes) and to none of Keywarden's readers.
            if !GatewayRequestBody.isBinary(contentType: contentType), RequestBodyCheck.isWideText(body) {
                return unreadable("a body in UTF-16 or UTF-32")
            }
            guard RequestBodyCheck.looksLikeJSON(body, contentType: contentType) else { return nil }
            guard case .unreadable(let why) = RequestBodyCheck.check(body) else { return nil }
            return unreadable(why)
        }
    }

    /// A candidate's key, opened, when it may be tried for this call: a later candidate only while this instance is current
    /// and the key still serves the call; a rotated key's old secret only within its grace period and where the new one
    /// cannot serve. `nil` otherwise (why, when it is a failure, is in `state`). Every kind of call (``handle(_:)``,
    /// ``openRealtime(_:subprotocols:)``) chooses its keys through this one gate.
    func open(_ candidate: Candidate, of call: GatewayCall, plan: CallPlan, state: inout AttemptState, meter: inout Meter) async
        -> (credential: Credential, provider: ProviderDefinition, opened: (key: Secret?, extras: [String: Secret], version: KeyVersion))? {
        guard let credential = plan.snapshot.credential(candidate.credentialID), let provider = app.catalog.provider(candidate.providerID) else { return nil }
        state.lastAttemptBilled = false
        if state.attempts > 0 {
            // A later key of the call (the earlier ones may have taken up to the first-byte deadline): used only if this
            // instance is still current and the key still serves the call as it now holds it (not deactivated, deleted or
            // turned bad meanwhile, here or on another instance).
            guard app.isCurrent else {
                state.lastFailure = .local(503, "store_unavailable", "Keywarden has not been able to confirm its keys are current; try again shortly.")
                return nil
            }
            guard let live = try? await app.resolutionView(for: call.workspaceID),
                  plan.servingQueries.contains(where: { query in
                      guard case .success(let serving) = Resolver.resolve(query, in: live, catalog: app.catalog, coolingDown: []) else { return false }
                      return serving.contains { $0.credentialID == candidate.credentialID && $0.slot == candidate.slot }
                  }) else { return nil }
        }
        // A rotated key's old secret serves until its grace period ends (the sweep then removes it), and only where the
        // new one cannot: it was refused in this call, or it is known bad (then the old one comes alone).
        if candidate.slot == .previous {
            guard credential.lifecycle.previousServes(at: Date()) else { return nil }
            let newSecretTried = plan.candidates.contains { $0.credentialID == candidate.credentialID && $0.slot == .current }
            guard !newSecretTried || state.refusedCurrent.contains(candidate.credentialID) else { return nil }
        }

        do {
            let opened = try await app.openSecrets(of: credential, slot: candidate.slot)
            // A use of the workspace's own secret, for its custody log (counted when the call's row is written).
            if candidate.source == .byok, credential.scope.workspaceID == call.workspaceID, !meter.ownKeysOpened.contains(credential.id) {
                meter.ownKeysOpened.append(credential.id)
            }
            return (credential, provider, opened)
        } catch {
            if candidate.slot == .current { state.refusedCurrent.insert(candidate.credentialID) }
            state.attempts += 1
            meter.attempts = state.attempts
            meter.candidate = candidate
            // An instance that lacks a master key the others have (a rotation not yet distributed) says which.
            let unreadable = error as? UnreadableSecret
            // A device away is an outage (warned), not a damaged key (an error).
            logger.log(level: unreadable?.isCustodyUnavailable == true ? .warning : .error, "gateway: key does not open; skipped", metadata: [
                "key": "\(credential.id)", "reason": "\(unreadable?.reason.description ?? "unreadable")",
                "wrapping_key": "\(unreadable?.wrappingKeyID ?? "?")",
            ])
            if unreadable?.reason.isCustomerKeyRevoked == true {
                // The customer took Keywarden's access to the workspace's own KMS key away: its keys are passed over and
                // the call follows the fallback rules (the platform's keys where the workspace's settings allow).
                metrics.failover(provider: provider.id, reason: "customer_key_revoked")
                state.customerKeyRevoked = true
                state.lastFailure = .local(403, "customer_key_revoked",
                                           "This workspace's keys are sealed under its own KMS key, and access to that key has been revoked by the customer.")
            } else if unreadable?.isCustodyUnavailable == true {
                metrics.failover(provider: provider.id, reason: "custody_unavailable")
                state.lastFailure = .local(503, "key_custody_unavailable", "The device holding the master key cannot be used now; try again shortly.")
            } else {
                metrics.failover(provider: provider.id, reason: "unreadable")
                state.lastFailure = .local(502, "key_unreadable", "A key of \(provider.displayName) could not be opened.")
            }
            return nil
        }
    }

    /// One key's attempt at a call: its request, the vendor's answer, and the policy's decision on it (`next`: try the
    /// next key, what failed is in `state`).
    private func attempt(_ candidate: Candidate, of call: GatewayCall, plan: CallPlan, state: inout AttemptState, meter: inout Meter,
                         upstream: inout Duration) async -> AttemptOutcome {
        guard let (credential, provider, opened) = await open(candidate, of: call, plan: plan, state: &state, meter: &meter) else { return .next }
        let owned = credential.scope.workspaceID == call.workspaceID
        guard let prepared = await prepare(candidate, credential: credential, provider: provider, opened: opened, owned: owned, of: call,
                                           plan: plan, state: &state, meter: &meter) else { return .next }
        let (request, vendorRequest, hidesUsageEvents, shapedByWorkspace, translation) =
            (prepared.request, prepared.vendorRequest, prepared.hidesUsageEvents, prepared.shapedByWorkspace, prepared.translation)
        state.lastTranslation = translation
        // The workspace's rate limit on the platform's keys counts the call, then the budget holds its cost.
        switch await admitRate(for: candidate, meter: meter, limits: state.limits) {
        case .admitted(let admission): meter.rateAdmission = admission
        case .refused(let failure):
            state.lastFailure = failure
            return .next
        }
        let reservation: BudgetReservation?
        switch await reserveBudget(for: candidate, meter: meter, limits: state.limits) {
        case .held(let held): reservation = held
        case .refused(let failure):
            refundTokens(&meter)
            if candidate.source == .byok { state.ownBudgetSpent = true }
            state.lastFailure = failure
            return .next
        }
        meter.reservation = reservation
        let response: VendorResponse
        let sent = ContinuousClock.now
        do {
            response = try await transport.execute(request, shapedByWorkspace: shapedByWorkspace,
                                                   deadline: .now() + TimeAmount(settings.firstByteTimeout))
            upstream += ContinuousClock.now - sent
        } catch {
            upstream += ContinuousClock.now - sent
            if Self.clientLeft(error) {
                // The client closed its connection: the vendor's was closed with it, and no other key is tried. A request
                // the vendor had whole is billed by it: the attempt is charged its estimate, as a timed-out one is.
                state.clientLeft = true
                state.lastAttemptBilled = (error as? VendorCallCancelled)?.requestSent ?? false
                if state.lastAttemptBilled {
                    chargeUnansweredAttempt(candidate, meter: &meter, reservation: reservation, status: Self.clientClosedStatus)
                } else {
                    release(reservation)
                    refundTokens(&meter)
                }
                meter.reservation = nil
                meter.rateAdmission = nil
                state.lastFailure = .local(Self.clientClosedStatus, "client_closed", "The client closed its connection before the answer came.")
                return .next
            }
            let why: FailoverPolicy.Unreachable = EgressRefusal.isRefusal(error) ? .targetRefused : Self.isTimeout(error) ? .timedOut : .connectionFailed
            state.lastAttemptBilled = Self.vendorReceived(error)
            if state.lastAttemptBilled {
                // The vendor got the request and was working on it when the deadline ended the attempt: it bills it. The
                // attempt is charged its estimate (a row of its own), against the budget and the tokens-per-minute limit.
                chargeUnansweredAttempt(candidate, meter: &meter, reservation: reservation, status: 504)
            } else {
                release(reservation)
                refundTokens(&meter)
            }
            meter.reservation = nil
            meter.rateAdmission = nil
            if case .failover(let failover) = policy.decide(.unreachable(why), owned: owned) {
                metrics.failover(provider: provider.id, reason: failover.reason)
            }
            logger.warning("gateway: vendor unreachable", metadata: ["provider": "\(provider.id)", "key": "\(credential.id)", "reason": "\(why.rawValue)"])
            switch why {
            case .targetRefused:
                state.lastFailure = .local(502, "target_not_allowed", "\(provider.displayName)'s endpoint points at an address Keywarden may not call for a workspace (loopback, private or metadata).")
            case .timedOut:
                state.lastFailure = .local(504, "upstream_timeout", "\(provider.displayName) did not answer in time.")
            case .connectionFailed:
                state.lastFailure = .local(502, "upstream_unreachable", "\(provider.displayName) could not be reached.")
            }
            return .next
        }
        let status = Int(response.status.code)
        // Only a status HTTP knows is passed on (a vendor's `000` or `099` is no answer): the next key is tried.
        guard (200...599).contains(status) else {
            release(reservation)
            meter.reservation = nil
            refundTokens(&meter)
            metrics.failover(provider: provider.id, reason: "upstream_invalid")
            logger.warning("gateway: vendor answered an invalid status", metadata: ["provider": "\(provider.id)", "status": "\(status)"])
            state.lastFailure = .local(502, "upstream_invalid", "\(provider.displayName) answered with an invalid HTTP status (\(status)).")
            return .next
        }
        if FailoverPolicy.triggersFailover(status) {
            let errorBody = await Self.collect(response.body, limit: Self.errorBodyLimit, waited: &upstream)
            let classification = ResponseClassifier.classify(
                httpStatus: status, body: Data(errorBody), retryAfterHeader: response.headers.first(name: "retry-after"),
                scrubber: scrubbers.scrubber(for: vendorRequest.secretsForScrubbing), maximumRetryAfter: policy.maximumRetryAfterSeconds
            )
            let message = classification.message
            if case .failover(var failover) = policy.decide(.answered(status: status, verdict: classification.status, retryAfter: classification.retryAfter),
                                                            owned: owned) {
                if credential.lifecycle.previous != nil {
                    failover = FailoverPolicy.duringRotation(failover, slot: candidate.slot)
                    if candidate.slot == .current, status == 401 || status == 403 { state.refusedCurrent.insert(candidate.credentialID) }
                }
                carryOut(failover, credential: credential, workspaceID: call.workspaceID, keyVersion: opened.version, message: message)
                metrics.failover(provider: provider.id, reason: failover.reason)
            }
            state.lastFailure = .vendor(status, response.headers, errorBody)
            release(reservation)
            meter.reservation = nil
            refundTokens(&meter)
            return .next
        }

        // This key answers: pass the response on, every secret sent in this call removed from its head and its body.
        meter.status = status
        noteSource(candidate, call: call, snapshot: plan.snapshot, query: plan.query, customerKeyRevoked: state.customerKeyRevoked)
        let scrubber = scrubbers.scrubber(for: state.secrets)
        var headers = Self.scrubbed(Self.forwardedHeaders(response.headers, owned: owned), with: scrubber)
        if let translation {
            // The caller gets its own shape: the vendor's type and length describe another body.
            headers.removeAll { ["content-type", "content-length"].contains($0.name.lowercased()) }
            headers.append(("Content-Type", status >= 400 ? "application/json" : translation.contentType))
        }
        if case .native = call.face {
            headers = Self.rewritingVendorURLs(headers, base: vendorRequest.base, faceURL: call.faceURL) { path, uploadID in
                uploadGrant(providerID: provider.id, workspaceID: call.workspaceID, path: path, uploadID: uploadID)
            }
        }
        headers += Self.keywardenHeaders(candidate, attempts: state.attempts, owned: owned, model: meter.model)
        let contentType = response.headers.first(name: "content-type")
        if status >= 400 {
            // A 400 and the like go back as the vendor sent them, with any echo of the key removed.
            let bytes = await Self.collect(response.body, limit: Self.errorBodyLimit, waited: &upstream)
            var cleaned = Self.errorBody(bytes, status: status, vendorHeaders: response.headers, headers: &headers, scrubber: scrubber)
            if let translation {
                cleaned = translation.error(status: status, body: cleaned)
                if let again = scrubber.scrubbedIfNeeded(cleaned) { cleaned = again }
            }
            finish(&meter, counts: UsageCounts(), model: nil)
            return .delivered(GatewayResponse(status: status, headers: headers, body: .complete(ByteBuffer(bytes: cleaned)), contentLength: nil))
        }
        // An answer in a coding Keywarden did not ask for (it asks for `identity`), or text in UTF-16 or UTF-32 (which a
        // client may decode, and a byte scan cannot read), can be neither scrubbed nor metered.
        let hasBody = call.method != "HEAD" && status != 204 && status != 304
        let wholeBody: ByteBuffer? = if case .complete(let whole) = response.body { whole } else { nil }
        if hasBody, let why = Self.unreadableAnswer(response.headers, whole: wholeBody) {
            finish(&meter, counts: UsageCounts(), model: nil)
            logger.warning("gateway: vendor's answer cannot be read", metadata: ["provider": "\(provider.id)", "why": "\(scrubber.scrub(String(why.prefix(80))))"])
            return .delivered(GatewayResponse(
                status: 502, headers: Self.keywardenHeaders(candidate, attempts: state.attempts, owned: owned, model: meter.model)
                    + [("Content-Type", "application/json; charset=utf-8")],
                body: .complete(ByteBuffer(bytes: Array(#"{"error":{"code":"upstream_invalid","message":"\#(provider.displayName) answered in an encoding Keywarden cannot read, so it cannot be checked for an echoed key."}}"#.utf8))),
                contentLength: nil))
        }
        let scrubbing = scrubber.isEmpty ? nil : scrubber
        // A scrubbed body may change length: only a HEAD's (no body) is passed on.
        let length = contentType?.contains("text/event-stream") == true || (scrubbing != nil && call.method != "HEAD") || translation != nil
            ? nil : response.headers.first(name: "content-length").flatMap(Int.init)
        var vendorBody = response.body
        if let translation, !translation.stream, case .stream = vendorBody {
            // A whole answer is translated whole: it is read first (up to the usage reader's limit).
            vendorBody = .complete(ByteBuffer(bytes: await Self.collect(vendorBody, limit: UsageReader.maximumBodySize, waited: &upstream)))
        }
        let upstreamBody: HTTPClientResponse.Body
        switch vendorBody {
        case .complete(let whole) where call.method != "HEAD" && status != 204 && status != 304:
            // The whole answer came with its head: read, metered and passed on in one piece.
            let passed = UpstreamStream.passWhole(whole, contentType: contentType, hidesUsageOnlyEvents: hidesUsageEvents, scrubber: scrubbing)
            finish(&meter, counts: passed.result.counts, model: passed.result.model)
            guard let translation else {
                return .delivered(GatewayResponse(status: status, headers: headers, body: .complete(passed.bytes), contentLength: nil))
            }
            let vendorBytes = Array(passed.bytes.readableBytesView)
            var translated: [UInt8]? = if translation.stream {
                { var translator = translation.streamTranslator(); return translator.feed(vendorBytes) + translator.finish() }()
            } else {
                translation.answer(vendorBytes)
            }
            // What the translation wrote is scrubbed again (pieces it joined, escapes it decoded).
            if let written = translated, let cleaned = scrubbing?.scrubbedIfNeeded(written) { translated = cleaned }
            guard let translated else {
                logger.warning("gateway: vendor's answer cannot be translated", metadata: ["provider": "\(provider.id)"])
                return .delivered(GatewayResponse(
                    status: 502, headers: Self.keywardenHeaders(candidate, attempts: state.attempts, owned: owned, model: meter.model)
                        + [("Content-Type", "application/json")],
                    body: .complete(ByteBuffer(bytes: ChatTranslation.error(translation.caller, status: 502,
                        message: "\(provider.displayName) answered in a shape Keywarden cannot translate.", code: "upstream_invalid"))),
                    contentLength: nil))
            }
            return .delivered(GatewayResponse(status: status, headers: headers, body: .complete(ByteBuffer(bytes: translated)), contentLength: nil))
        case .complete(let whole): upstreamBody = .bytes(whole)
        case .stream(let parts): upstreamBody = parts
        }
        let finalMeter = meter
        let stream = UpstreamStream(body: upstreamBody, contentType: contentType, hidesUsageOnlyEvents: hidesUsageEvents,
                                    scrubber: scrubbing, translator: translation?.streamTranslator()) { [self] result, error in
            var meter = finalMeter
            if error != nil { meter.interrupted = true }
            finish(&meter, counts: result.counts, model: result.model)
        }
        return .delivered(GatewayResponse(status: status, headers: headers, body: .stream(stream), contentLength: length))
    }

    /// The request one key sends for a call: path, body and model for this key's provider (the OpenAI face's endpoint, a
    /// body rewritten for its model or for stream usage, what the key fills in), the key injected, the caller's headers
    /// that may travel; `nil` when this key may not serve it (the reason is in `state`).
    func prepare(_ candidate: Candidate, credential: Credential, provider: ProviderDefinition,
                         opened: (key: Secret?, extras: [String: Secret], version: KeyVersion), owned: Bool, of call: GatewayCall,
                         plan: CallPlan, state: inout AttemptState, meter: inout Meter) async -> PreparedCall? {
        var path = call.pathAndQuery
        var auth: AuthScheme?
        var body = call.body
        var sendModel: String?
        var translation: ChatTranslation?
        if let callerShape = call.face.callerShape {
            // The unified face: the key's vendor speaks the caller's shape (its body passes, the model set), or another
            // chat dialect (the body is translated to it, and the answer back).
            guard var vendorShape = ChatTranslation.shape(of: provider.dialect) else {
                state.lastFailure = .local(400, "not_chat_provider", "\(provider.displayName) has no chat API Keywarden can serve this call with.")
                return nil
            }
            // A vendor with the Responses API (OpenAI's own) takes a Responses call as it is.
            if callerShape == .openAIResponses, provider.responsesPath != nil { vendorShape = .openAIResponses }
            // The managed default (or another provider) answers with its own model; a "provider/" prefix is dropped.
            let model = candidate.providerID == plan.requestedProvider ? (plan.requestedModel ?? candidate.model) : candidate.model
            meter.model = model ?? meter.model
            if vendorShape == callerShape {
                switch callerShape {
                case .openAIChat:
                    guard let endpoint = provider.chatCompletions else {
                        state.lastFailure = .local(400, "not_openai_compatible", "\(provider.displayName) has no OpenAI-compatible chat completions endpoint.")
                        return nil
                    }
                    path = endpoint.path
                    auth = endpoint.auth
                case .openAIResponses:
                    path = provider.responsesPath ?? "/v1/responses"
                case .anthropicMessages, .geminiGenerate:
                    path = "/v1/messages"
                }
                if let model, model != plan.facts.model { sendModel = model }
            } else {
                guard let model, let bytes = plan.bodyBytes else {
                    state.lastFailure = .local(400, "model_required", "Name a model, or give \(provider.displayName)'s key a default model.")
                    return nil
                }
                let maxTokens = opened.extras["default_max_tokens"].flatMap { UntrustedNumber.integer($0.unprotectedString) } ?? 4096
                do {
                    let translated = try ChatTranslation.request(
                        bytes, from: callerShape, to: vendorShape, model: model, target: provider.displayName,
                        outputLimitMember: provider.chatCompletions?.outputLimitMember ?? "max_tokens", defaultMaxTokens: maxTokens)
                    translation = translated.translation
                    path = translated.path ?? provider.chatCompletions?.path ?? "/v1/chat/completions"
                    body = .complete(ByteBuffer(bytes: translated.body))
                    meter.sentBody = settings.prices.isEmpty ? nil : translated.body
                } catch {
                    state.lastFailure = .local(400, error.code, error.message)
                    return nil
                }
            }
        }
        // One rewrite of the JSON body, when the model changes or the stream should carry usage.
        var hidesUsageEvents = false
        var sentBytes = plan.bodyBytes
        let asksUsage = translation == nil && Self.asksForStreamUsage(plan.facts, provider: provider, path: path)
        if translation == nil, sendModel != nil || asksUsage {
            // A body that must carry another model, or ask its stream for usage, and cannot be edited byte for byte (not
            // one JSON object, a member named twice) is refused rather than sent with the caller's model or unmetered.
            guard let bytes = plan.bodyBytes, let rewritten = Self.rewritingBody(bytes, model: sendModel, includeUsage: asksUsage) else {
                let what = sendModel.map { "the model \(Self.isHeaderSafe($0) ? $0 : "this key serves")" } ?? "a request for the stream's usage"
                state.lastFailure = .local(400, "unreadable_body", "Keywarden must set \(what) in this body, and cannot read it as one JSON object naming each member once.")
                return nil
            }
            body = .complete(ByteBuffer(bytes: rewritten))
            sentBytes = rewritten
            hidesUsageEvents = asksUsage
        }
        // What the call left out, from this key: its default model, Anthropic's max tokens, ElevenLabs' voice.
        let defaults = Self.planDefaults(for: call, provider: provider, path: path, body: translation == nil ? sentBytes : body.bytes.map { Array($0.readableBytesView) },
                                         facts: plan.facts, model: candidate.model, extras: opened.extras)
        path = defaults.plan.pathAndQuery
        if let filled = defaults.body {
            body = .complete(ByteBuffer(bytes: filled))
        }
        if let model = defaults.plan.model { meter.model = model }
        // What an edit made is judged as the caller's body was (an added max_tokens beside a caller's Max_Tokens would make
        // a pair some parser takes for one): a key that needs its body read never gets one that does not read alike.
        if defaults.body != nil || sentBytes != plan.bodyBytes, let edited = defaults.body ?? sentBytes,
           Self.readsBody(candidate, limits: state.limits), case .unreadable(let why) = RequestBodyCheck.check(edited) {
            state.lastFailure = .local(400, "unreadable_body", "Keywarden's own additions to this body would make it read differently to some vendors: \(why).")
            return nil
        }
        // The cost estimate reads the body as the vendor gets it (a filled-in max_tokens counts); only when a price needs it.
        if translation == nil { meter.sentBody = settings.prices.isEmpty ? nil : (defaults.body ?? sentBytes) }
        // A key the calling workspace does not own (the platform's, the managed default) serves only the provider's
        // inference endpoints through the native face, unless the operator allows more.
        if case .native = call.face, !owned, !sharedKeyAllows(provider, method: call.method, pathAndQuery: path) {
            state.lastFailure = .local(403, "endpoint_not_allowed",
                "\(provider.displayName)'s \(call.method) \(EndpointRule.plainPath(path).map(String.init) ?? "path") is not one the platform's key may be used for; use your own key for it, or ask the operator to allow it.")
            return nil
        }
        state.attempts += 1
        meter.attempts = state.attempts
        meter.candidate = candidate
        let callerHeaders = Self.forwardedRequestHeaders(call.headers, owned: owned)
        // A credential the caller put in the query (its Keywarden token as `?key=`, the provider's own key parameter) never travels.
        let scheme = auth ?? provider.auth
        path = Self.strippingCredentials(fromQuery: path, authParameter: scheme.kind == .query ? (scheme.name ?? "key") : nil)
        let vendorRequest: VendorRequest
        do {
            vendorRequest = try VendorRequestBuilder.forward(
                for: provider, credentials: VendorCredentials(key: opened.key, extras: opened.extras), method: call.method,
                pathAndQuery: path, auth: auth, callerHeaders: Set(callerHeaders.map { $0.name.lowercased() })
            )
        } catch {
            state.lastFailure = .local(502, error.code, error.message)
            return nil
        }
        state.secrets.append(contentsOf: vendorRequest.secretsForScrubbing)

        var request = VendorCall(method: HTTPMethod(rawValue: call.method), url: vendorRequest.url, body: body)
        for (name, value) in callerHeaders {
            request.headers.add(name: name, value: value)
        }
        for (name, value) in vendorRequest.headers {
            request.headers.replaceOrAdd(name: name, value: value)
        }
        // The answer must be readable, to be metered and scrubbed: never compressed.
        request.headers.replaceOrAdd(name: "accept-encoding", value: "identity")

        // Send, and decide on the response head.
        let shapedByWorkspace = credential.scope != .platform && vendorRequest.hostFromFields
        if shapedByWorkspace, let refusal = await transport.refusal(forWorkspaceShapedURL: vendorRequest.url) {
            metrics.failover(provider: provider.id, reason: "target_not_allowed")
            state.lastFailure = .local(502, "target_not_allowed",
                "\(provider.displayName)'s endpoint points at \(refusal.explanation); Keywarden may not call it for a workspace.")
            return nil
        }
        return PreparedCall(request: request, vendorRequest: vendorRequest, hidesUsageEvents: hidesUsageEvents,
                            shapedByWorkspace: shapedByWorkspace, translation: translation)
    }

    /// A key's request, ready to send.
    struct PreparedCall {
        let request: VendorCall
        let vendorRequest: VendorRequest
        /// Whether the usage-only event the gateway asked for is kept from the caller.
        let hidesUsageEvents: Bool
        /// Whether a workspace shaped the target (it goes through the egress guard).
        let shapedByWorkspace: Bool
        /// How the call is translated between the caller's chat shape and the vendor's (`nil`: it is not).
        let translation: ChatTranslation?
    }

    /// What a call asks for, and the keys that may serve it, in order.
    struct CallPlan {
        let snapshot: ResolutionView
        let facts: RequestFacts
        let bodyBytes: [UInt8]?
        let query: ResolutionQuery
        /// The model asked for (after the OpenAI face's "provider/" prefix is read).
        let requestedModel: String?
        /// The provider asked for (directly, or through its model); another one only serves as the managed default.
        let requestedProvider: String?
        let candidates: [Candidate]
        /// The workspace's limits (`nil`: no workspace, or none known).
        let limits: EffectiveLimits?
        /// A route's step queries (empty: the call is not routed): a later key must still serve its step.
        var routeQueries: [ResolutionQuery] = []
        /// The route serving the call, by name.
        var routeName: String?
        /// When the platform's keys stand in for the workspace's own (no workspace: they always may).
        var platformFallback: PlatformFallback = .onFailureOrBudget

        /// The queries a key of this call must still be resolved by.
        var servingQueries: [ResolutionQuery] { routeQueries.isEmpty ? [query] : routeQueries }
    }

    enum Planned {
        case planned(CallPlan)
        /// No key can be tried: the answer (an error) is ready.
        case answered(GatewayResponse)
    }

    /// What the attempts of one call have learnt so far.
    struct AttemptState {
        var attempts = 0
        var lastFailure: AttemptFailure?
        /// Every secret sent to a vendor in this call (scrubbed from the answers that go back).
        var secrets: [String] = []
        /// Keys whose new secret (of a rotation) the vendor refused, or that did not open, in this call: their old secret is tried.
        var refusedCurrent: Set<String> = []
        /// Whether the last attempt was billed in a row of its own (a timeout after the vendor had the request): the
        /// call's failure then writes no second row for it.
        var lastAttemptBilled = false
        /// Whether the client closed its connection: the call ends with no other key tried.
        var clientLeft = false
        /// The last attempt's translation (its vendor's error goes back in the caller's shape).
        var lastTranslation: ChatTranslation?
        /// Whether a key of the workspace's own was refused for its own-keys budget in this call.
        var ownBudgetSpent = false
        /// Whether a key of the workspace's own did not open because its customer revoked access to their KMS key.
        var customerKeyRevoked = false
        let limits: EffectiveLimits?

        init(limits: EffectiveLimits?) {
            self.limits = limits
        }
    }

    enum AttemptOutcome {
        /// This key did not serve; try the next.
        case next
        case delivered(GatewayResponse)
    }

    enum AttemptFailure {
        case vendor(Int, HTTPHeaders, [UInt8])
        case local(Int, String, String)
        /// The workspace's rate limit on the platform's keys: 429 with `Retry-After` (seconds).
        case limited(Int, String)
    }
}
