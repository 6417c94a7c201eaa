import AsyncHTTPClient
import Foundation
import KeywardenCore
import KeywardenProviders
import KeywardenStore
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
