import AsyncHTTPClient
import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenProviders
import NIOCore
import NIOHTTP1

extension Gateway {
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
        /// The budget held for the attempt that answers, settled with the call's cost when it ends.
        var reservation: BudgetReservation?
        /// The rate-limit minute the answering attempt was counted in; its tokens are added when the call ends.
        var rateAdmission: RateAdmission?
        /// The body as sent to the vendor (with the model and the defaults filled in), for the cost estimate.
        var sentBody: [UInt8]?
        /// The workspace's own keys whose secrets were opened for this call (each a use in its custody log).
        var ownKeysOpened: [String] = []

        init(call: GatewayCall, started: ContinuousClock.Instant) {
            self.call = call
            self.started = started
            if case .native(let id) = call.face { providerID = id }
            if let id = call.face.namedProvider { providerID = id }
        }
    }

    func finishWithError(_ meter: inout Meter, status: Int, code: String, message: String, headers: [(name: String, value: String)] = [],
                         writesRow: Bool = true) -> GatewayResponse {
        meter.status = status
        var headers = headers
        // Keywarden's own unavailability says when to come back.
        if status == 503, !headers.contains(where: { $0.name.lowercased() == "retry-after" }) { headers.append(("Retry-After", "\(app.unavailableRetryAfter)")) }
        finish(&meter, counts: UsageCounts(), model: nil, writesRow: writesRow)
        let json = #"{"error":{"code":"# + CallDefaultsPlan.jsonString(code) + #","message":"# + CallDefaultsPlan.jsonString(message) + #","type":"keywarden_error"}}"#
        let body = Array(json.utf8)
        return GatewayResponse(status: status, headers: headers + [("Content-Type", "application/json; charset=utf-8")],
                               body: .complete(ByteBuffer(bytes: body)), contentLength: body.count)
    }

    /// Settles what the call holds, writes its usage row (unless its last attempt wrote its own: a billed timeout) and
    /// its metrics.
    func finish(_ meter: inout Meter, counts: UsageCounts, model: String?, writesRow: Bool = true) {
        let elapsed = ContinuousClock.now - meter.started
        var counts = counts
        if meter.modality == .tts, counts.characters == nil { counts.characters = meter.characters }
        let source = meter.candidate?.source
        // A call the vendor answered with success costs its credits even when the client left before its end: the
        // vendor bills the stream it started (and a budget must not be dodged by closing the socket early).
        let succeeded = (200..<400).contains(meter.status)
        let credits = succeeded && source != nil ? cost(meter, source: source ?? .platform, counts: counts, model: model ?? meter.model) : 0
        // A hold in this process's memory is settled at once; a shared one (PostgreSQL) by the usage row below, written at
        // once off the call's path: the row and the settle commit together, so the budget's spending and the ledger
        // agree after any fault.
        var settling: BudgetReservation?
        if let reservation = meter.reservation {
            meter.reservation = nil
            if reservation.holdID == nil { settle(reservation, cost: credits) } else { settling = reservation }
        }
        if let admission = meter.rateAdmission {
            meter.rateAdmission = nil
            var tokens = max(0, (counts.inputTokens ?? 0)).saturatingAdding(max(0, counts.outputTokens ?? 0))
            // A call the vendor served whose answer reported no counts (a stream without usage) counts its estimate, and so
            // does one the client left early (the vendor goes on writing, and billing, what the final counts would say).
            if succeeded, Self.hasBody(meter.call),
               (counts.inputTokens == nil && counts.outputTokens == nil) || meter.interrupted {
                tokens = max(tokens, estimatedTokens(meter))
            }
            settleTokens(admission, used: tokens)
        }
        var record = UsageRecord(
            at: Date(), workspaceID: meter.call.workspaceID, providerID: meter.candidate?.providerID ?? meter.providerID,
            model: model ?? meter.model, credentialID: meter.candidate?.credentialID, source: source, modality: meter.modality,
            consumer: meter.call.consumer, status: meter.interrupted ? 499 : meter.status, latencyMilliseconds: Self.milliseconds(elapsed), counts: counts,
            milliCredits: credits, attempts: meter.attempts, holdID: settling?.holdID
        )
        record.ownKeysUsed = meter.ownKeysOpened
        if let settling { ledger.appendSettlingNow(record, settling: settling) } else if writesRow { ledger.append(record) }
        let providerLabel = meter.candidate?.providerID ?? (meter.providerID.isEmpty ? "unknown" : meter.providerID)
        metrics.call(provider: providerLabel, source: source?.rawValue ?? "none", status: meter.status, duration: elapsed)
        metrics.tokens(provider: providerLabel, source: source?.rawValue ?? "none", input: counts.inputTokens, output: counts.outputTokens)
    }

    /// The tokens a call is estimated to use (as its budget hold estimates them): input from its body's size, output
    /// from its own limit, or else its price entry's most (or the table's default) for each choice.
    func estimatedTokens(_ meter: Meter) -> Int {
        // A call without a body (a listing) writes nothing to be counted.
        guard Self.hasBody(meter.call) else { return 0 }
        let price = settings.prices.price(provider: meter.candidate?.providerID ?? meter.providerID, model: meter.model,
                                          source: meter.candidate?.source ?? .platform)
        let counts = settings.prices.estimatedCounts(requestSize(meter), price: price)
        return max(0, counts.inputTokens ?? 0).saturatingAdding(max(0, counts.outputTokens ?? 0))
    }

    /// Charges an attempt that ended without an answer after its request was sent (the first-byte deadline, a read
    /// timeout: status 504; the client leaving: 499): the vendor bills it. Its own usage row carries its estimate, which
    /// settles its budget hold; its estimated tokens count against the tokens-per-minute limit at once.
    /// The own keys opened so far in the call (this attempt's and those failed over before it) are counted by this row,
    /// and leave the call's list: the call's own row may not be written (its last attempt billed here).
    func chargeUnansweredAttempt(_ candidate: Candidate, meter: inout Meter, reservation: BudgetReservation?, status: Int) {
        let ownKeys = meter.ownKeysOpened
        meter.ownKeysOpened = []
        var attempt = meter
        attempt.candidate = candidate
        attempt.status = status
        let credits = estimate(attempt, source: candidate.source)
        if let admission = meter.rateAdmission { settleTokens(admission, used: estimatedTokens(attempt)) }
        var record = UsageRecord(
            at: Date(), workspaceID: meter.call.workspaceID, providerID: candidate.providerID, model: meter.model, credentialID: candidate.credentialID,
            source: candidate.source, modality: meter.modality, consumer: meter.call.consumer, status: status,
            latencyMilliseconds: Self.milliseconds(ContinuousClock.now - meter.started),
            counts: settings.prices.estimatedCounts(requestSize(attempt)), milliCredits: credits, attempts: 1,
            holdID: reservation?.holdID
        )
        record.ownKeysUsed = ownKeys
        if let reservation, reservation.holdID != nil {
            ledger.appendSettlingNow(record, settling: reservation)
        } else {
            if let reservation { settle(reservation, cost: credits) }
            ledger.append(record)
        }
    }

    /// Gives back the tokens an attempt's admission reserved: an attempt that failed over used none.
    func refundTokens(_ meter: inout Meter) {
        guard let admission = meter.rateAdmission else { return }
        meter.rateAdmission = nil
        settleTokens(admission, used: 0)
    }

    /// Settles an admission with the tokens the call used (0: an attempt that failed over gives its reservation back): at
    /// once when the windows live in memory, else off the call's path.
    func settleTokens(_ admission: RateAdmission, used tokens: Int) {
        guard !app.settleHeld(admission, used: tokens) else { return }
        guard RateLimitService.settlement(admission, used: tokens, at: Date()).tokens != 0 else { return }
        effects.submit(.settleTokens(admission, used: tokens))
    }

    /// Whole milliseconds of a duration, as a usage row records its latency.
    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
    }

    // MARK: Budgets

    /// What the budget said of an attempt: the share it holds (none when no limit applies), or the refusal.
    enum BudgetDecision {
        case held(BudgetReservation?)
        case refused(AttemptFailure)
    }

    /// Holds the call's cost in the budget the candidate's calls count against: the platform's for its keys and the
    /// managed default, the workspace's own for its keys; refused (`budget_exceeded`, 402) when it would pass the limit.
    /// `limits` are the calling workspace's (`nil`: no workspace, or none known).
    func reserveBudget(for candidate: Candidate, meter: Meter, limits: EffectiveLimits?) async -> BudgetDecision {
        guard let workspaceID = meter.call.workspaceID else { return .held(nil) }
        let scope = BudgetScope(candidate.source)
        guard let limits, let limit = limits.budget[scope] else {
            return .held(nil)
        }
        var priced = meter
        priced.candidate = candidate
        let estimate = estimate(priced, source: candidate.source)
        do {
            if let held = try await app.reserve(workspaceID: workspaceID, scope: scope, amount: estimate, limit: limit, cycle: limits.cycle) {
                return .held(held)
            }
        } catch {
            // A hold that may have been written is given back (on the ledger's rounds while the database refuses).
            if let uncertain = error as? UncertainHold { ledger.releaseLater(uncertain.reservation) }
            // A limit that cannot be checked is not spent past: the call waits for the store.
            logger.error("gateway: budget unavailable", metadata: ["error": "\(error)"])
            return .refused(.local(503, "store_unavailable", "Keywarden cannot check the workspace's budget right now; try again."))
        }
        metrics.failover(provider: candidate.providerID, reason: "budget_exceeded")
        let period = BudgetPeriod(containing: Date(), cycle: limits.cycle)
        let whose = scope == .platform ? "The workspace's budget for calls the platform pays" : "The workspace's budget for its own keys"
        let rest = scope == .platform ? "; its own keys still serve." : "."
        return .refused(.local(402, "budget_exceeded",
            "\(whose) (\(BudgetService.credits(limit)) credits \(limits.cycle.currentPeriodName)) is used up until \(Timestamp.string(period.end))\(rest)"))
    }

    /// What the rate limit said of an attempt: counted (nil when no limit applies), or refused.
    enum RateDecision {
        case admitted(RateAdmission?)
        case refused(AttemptFailure)
    }

    /// Counts an attempt on the platform's keys (or the managed default) in the workspace's minute; refused with 429
    /// `rate_limited` and `Retry-After` when the minute's requests or tokens are used up. A workspace's own keys are not limited here.
    func admitRate(for candidate: Candidate, meter: Meter, limits effective: EffectiveLimits?) async -> RateDecision {
        guard let workspaceID = meter.call.workspaceID, candidate.source != .byok,
              let limits = effective?.rateLimits, !limits.isEmpty else { return .admitted(nil) }
        do {
            // Calls in flight count against the tokens per minute with their estimates, settled when they end.
            let estimate = limits.tokensPerMinute == nil ? 0 : estimatedTokens(meter)
            switch try await app.admit(workspaceID: workspaceID, limits: limits, estimatedTokens: estimate) {
            case .admitted(let admission):
                return .admitted(admission)
            case .limited(let retryAfter):
                metrics.failover(provider: candidate.providerID, reason: "rate_limited")
                let described = [limits.requestsPerMinute.map { "\($0) requests" }, limits.tokensPerMinute.map { "\($0) tokens" }]
                    .compactMap { $0 }.joined(separator: " and ")
                return .refused(.limited(retryAfter, "The workspace's limit on the platform's keys (\(described) a minute) is reached; retry in \(retryAfter) s, or use its own key."))
            case .tooLarge(let estimate):
                metrics.failover(provider: candidate.providerID, reason: "rate_limited")
                return .refused(.local(429, "request_too_large",
                    "This call is estimated at \(estimate) tokens (its input, and its output limit or the default), more than the workspace's limit on the platform's keys of \(limits.tokensPerMinute ?? 0) tokens a minute; lower max_tokens, or use its own key."))
            }
        } catch {
            logger.error("gateway: rate limit unavailable", metadata: ["error": "\(error)"])
            return .refused(.local(503, "store_unavailable", "Keywarden cannot check the workspace's rate limit right now; try again."))
        }
    }

    /// A successful call's credits: the price table's entry for the provider that serves it (the managed default's own,
    /// not the one asked for) and the model that answered, applied to the counts its answer reported; else the provider's
    /// `KEYWARDEN_CREDITS` figure. An answer without token counts (a stream that carried no usage) is charged the
    /// estimate's tokens when its request had a body; a listing (no body) is not expected to report any.
    ///
    /// The entry is the dearer of the model asked for and the model the answer names (a vendor's answer does not choose its
    /// own price). A call the client left before its end costs at least its estimate per priced field (the vendor bills
    /// what it generated; the counts that would say so never came).
    func cost(_ meter: Meter, source: KeySource, counts: UsageCounts, model: String?) -> Int {
        let provider = meter.candidate?.providerID ?? meter.providerID
        // The request's size is read (a copy and a scan of the body) only when a price entry asks for it.
        func price(_ model: String?) -> Int {
            settings.prices.milliCredits(provider: provider, model: model, source: source, counts: counts,
                                         unreported: Self.hasBody(meter.call) ? requestSize(meter) : nil,
                                         atLeastEstimate: meter.interrupted, fallback: settings.credits)
        }
        let served = price(model)
        guard let asked = meter.model, asked != model else { return served }
        return max(served, price(asked))
    }

    /// The cost a budget holds before a call: its price entry applied to an estimate of the request (`PriceTable.estimate`),
    /// else the provider's `KEYWARDEN_CREDITS` figure (exact: per call).
    func estimate(_ meter: Meter, source: KeySource) -> Int {
        settings.prices.estimate(provider: meter.candidate?.providerID ?? meter.providerID, model: meter.model, source: source,
                                 request: requestSize(meter), fallback: settings.credits)
    }

    /// What the request tells of its size: the body's length, its output limit (`max_tokens` and the like; one more
    /// scan of the body, made only when a price entry needs it), the characters a text-to-speech call speaks.
    func requestSize(_ meter: Meter) -> PriceTable.RequestSize {
        func size(_ body: [UInt8]) -> PriceTable.RequestSize {
            let limit = RequestFacts.outputLimit(body: body)
            return PriceTable.RequestSize(bodyBytes: body.count, maxOutputTokens: limit?.total, choices: limit?.choices ?? 1,
                                          characters: meter.characters)
        }
        if let sent = meter.sentBody { return size(sent) }
        switch meter.call.body {
        case .empty:
            return PriceTable.RequestSize(bodyBytes: 0, characters: meter.characters)
        case .complete(let buffer):
            return size(Array(buffer.readableBytesView))
        case .stream(let length, _):
            return PriceTable.RequestSize(bodyBytes: length ?? 0, characters: meter.characters)
        }
    }

    static func hasBody(_ call: GatewayCall) -> Bool {
        if case .empty = call.body { return false }
        return true
    }

    /// Gives a reservation back (an attempt that failed over costs nothing): at once, or, when the database refuses, on
    /// the ledger's next rounds (giving back twice is harmless).
    func release(_ reservation: BudgetReservation?) {
        guard let reservation else { return }
        guard reservation.holdID != nil else {
            settle(reservation, cost: 0)
            return
        }
        effects.submit(.releaseBudget(reservation))
    }

    /// Settles a reservation held in this process's memory (a single-process store) at once; only the thresholds it
    /// reached need the store, off the call's path.
    func settle(_ reservation: BudgetReservation, cost: Int) {
        guard let (spent, reached) = app.settleHeld(reservation, cost: cost), !reached.isEmpty else { return }
        effects.submit(.announceThresholds(reached, reservation: reservation, spent: spent))
    }
}
