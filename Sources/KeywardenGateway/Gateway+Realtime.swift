import Foundation
import HTTPTypes
import KeywardenCore
import KeywardenProviders
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import WSClient
import WSCore

/// A WebSocket session with a vendor (OpenAI's Realtime API, ElevenLabs' `stream-input`): the key chosen as for any call,
/// its rate limit and budget held, and what to connect to with which headers.
public struct RealtimeSession: Sendable {
    /// The vendor's WebSocket URL (`wss://…`, or `ws://` for a plain-HTTP base such as a test's).
    public let url: String
    /// The headers of the vendor's handshake: the key injected, the catalog's static headers, the caller's own.
    public let headers: [(name: String, value: String)]
    /// The subprotocols to offer the vendor (the caller's, less any that carried a Keywarden token).
    public let subprotocols: [String]
    /// Headers for the client's `101` answer (`X-Keywarden-Source`, …).
    public let answerHeaders: [(name: String, value: String)]
    let meter: Gateway.Meter
    let scrubber: SecretScrubber
    /// Settles the session once: when its relay ends, or, when it never runs (the client went before the upgrade
    /// finished), when the last copy of the session is released (its budget hold and rate admission are given back).
    let settlement: RealtimeSettlement
}

/// Meters a WebSocket session exactly once.
final class RealtimeSettlement: Sendable {
    private let settle: @Sendable (_ counts: UsageCounts, _ model: String?, _ status: Int, _ interrupted: Bool) -> Void
    private let done = Mutex(false)

    init(_ settle: @escaping @Sendable (_ counts: UsageCounts, _ model: String?, _ status: Int, _ interrupted: Bool) -> Void) {
        self.settle = settle
    }

    func callAsFunction(counts: UsageCounts, model: String?, status: Int, interrupted: Bool) {
        guard done.withLock({ done in defer { done = true }; return !done }) else { return }
        settle(counts, model, status, interrupted)
    }

    deinit {
        if !done.withLock({ $0 }) { settle(UsageCounts(), nil, Gateway.clientClosedStatus, false) }
    }
}

/// What opening a WebSocket session came to.
public enum RealtimeOpening: Sendable {
    case ready(RealtimeSession)
    /// No key may serve it: the answer a plain call would have had (its usage row written).
    case refused(GatewayResponse)
}

extension Gateway {
    /// Handshake headers the WebSocket client sets itself, never taken from the caller.
    static let webSocketHandshakeHeaders: Set<String> = [
        "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-accept", "sec-websocket-protocol",
        "upgrade", "connection", "host", "content-length",
    ]

    /// The prefix of a subprotocol that carries an API key (OpenAI's browser clients: `openai-insecure-api-key.<key>`).
    public static let keyInSubprotocol = "openai-insecure-api-key."

    /// Chooses the key for a WebSocket session and holds its admission, as ``handle(_:)`` does for a call; the session
    /// is then relayed by ``relay(_:client:clientWriter:logger:)``. No other key is tried once a session is opened.
    public func openRealtime(_ call: GatewayCall, subprotocols: [String]) async -> RealtimeOpening {
        var meter = Meter(call: call, started: call.receivedAt)
        let plan: CallPlan
        switch await self.plan(call, meter: &meter) {
        case .planned(let planned): plan = planned
        case .answered(let response): return .refused(response)
        }
        var state = AttemptState(limits: plan.limits)
        for candidate in policy.keysToTry(plan.candidates) {
            // The same gate as every call: a later key only while it still serves, an old secret only in its grace.
            guard let (credential, provider, opened) = await open(candidate, of: call, plan: plan, state: &state, meter: &meter) else { continue }
            let owned = credential.scope.workspaceID == call.workspaceID
            guard let prepared = await prepare(candidate, credential: credential, provider: provider, opened: opened, owned: owned, of: call,
                                               plan: plan, state: &state, meter: &meter) else { continue }
            switch await admitRate(for: candidate, meter: meter, limits: state.limits) {
            case .admitted(let admission): meter.rateAdmission = admission
            case .refused(let failure):
                state.lastFailure = failure
                continue
            }
            switch await reserveBudget(for: candidate, meter: meter, limits: state.limits) {
            case .held(let held): meter.reservation = held
            case .refused(let failure):
                refundTokens(&meter)
                state.lastFailure = failure
                continue
            }
            meter.status = 101
            noteSource(candidate, call: call, snapshot: plan.snapshot, query: plan.query, customerKeyRevoked: state.customerKeyRevoked)
            let headers = prepared.request.headers.filter { !Self.webSocketHandshakeHeaders.contains($0.name.lowercased()) && $0.name.lowercased() != "accept-encoding" }
                .map { (name: $0.name, value: $0.value) }
            let url = Self.webSocketURL(prepared.vendorRequest.url)
            let openedMeter = meter
            let settlement = RealtimeSettlement { [self] counts, model, status, interrupted in
                var meter = openedMeter
                meter.status = status
                meter.interrupted = interrupted
                finish(&meter, counts: counts, model: model ?? meter.model)
            }
            return .ready(RealtimeSession(
                url: url, headers: headers, subprotocols: subprotocols.filter { !$0.hasPrefix(Self.keyInSubprotocol) },
                answerHeaders: Self.keywardenHeaders(candidate, attempts: state.attempts, owned: owned, model: meter.model),
                meter: meter, scrubber: scrubbers.scrubber(for: state.secrets), settlement: settlement))
        }
        return .refused(failureResponse(state: state, meter: &meter, call: call))
    }

    /// `https://…` as `wss://…`, `http://…` as `ws://…`.
    static func webSocketURL(_ url: String) -> String {
        if url.hasPrefix("https://") { return "wss://" + url.dropFirst("https://".count) }
        if url.hasPrefix("http://") { return "ws://" + url.dropFirst("http://".count) }
        return url
    }

    /// The largest message relayed either way (a second of 24 kHz PCM audio in base64 is ~64 KiB).
    public static let maximumRealtimeMessage = 16 * 1024 * 1024
    /// The longest a session lasts (OpenAI's own limit for a Realtime session is an hour).
    static let maximumRealtimeSession = Duration.seconds(3600)
    /// How long the vendor's side is still read for usage after the client left mid-response.
    static let realtimeUsageGrace = Duration.seconds(2)

    /// Why a session's relay ended.
    enum RelayEnd: Sendable { case client, vendor, timeLimit }

    /// Relays a session both ways until either side closes, then closes the other with the same code; meters it.
    ///
    /// Each direction writes a message before it reads the next, so a slow side holds the other back (back-pressure).
    /// Text from the vendor is scrubbed of the key like any answer.
    public func relay(_ session: RealtimeSession, client: WebSocketInboundStream, clientWriter: WebSocketOutboundWriter, logger: Logger) async {
        var fields = HTTPFields()
        for (name, value) in session.headers {
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
        }
        if !session.subprotocols.isEmpty, let field = HTTPField.Name("Sec-WebSocket-Protocol") {
            fields.append(HTTPField(name: field, value: session.subprotocols.joined(separator: ", ")))
        }
        let usage = RealtimeUsage(modality: session.meter.modality)
        let scrubber = session.scrubber
        var status = 200
        var interrupted = false
        let limit = Self.maximumRealtimeMessage
        do {
            let configuration = WebSocketClientConfiguration(maxFrameSize: limit, additionalHeaders: fields, closeTimeout: .seconds(5))
            let closing = try await WebSocketClient.connect(url: session.url, configuration: configuration, logger: logger) { vendor, vendorWriter, _ in
                try await withThrowingTaskGroup(of: RelayEnd.self) { group in
                    group.addTask {
                        for try await message in client.messages(maxSize: limit) {
                            usage.clientSent(message)
                            try await vendorWriter.write(message.outbound)
                        }
                        return .client
                    }
                    group.addTask {
                        // A client that has gone is written to no more, but the vendor's usage is still read.
                        var clientGone = false
                        for try await message in vendor.messages(maxSize: limit) {
                            usage.vendorSent(message)
                            guard !clientGone else { continue }
                            do {
                                switch message {
                                case .text(let text): try await clientWriter.write(.text(scrubber.isEmpty ? text : scrubber.scrub(text)))
                                case .binary(let bytes): try await clientWriter.write(.binary(bytes))
                                }
                            } catch {
                                clientGone = true
                            }
                        }
                        return .vendor
                    }
                    group.addTask {
                        try await Task.sleep(for: Self.maximumRealtimeSession)
                        return .timeLimit
                    }
                    // Whichever side ends first ends the session; a client that leaves mid-response leaves the vendor a
                    // moment to report what that response used (it bills it).
                    if try await group.next() == .client, usage.unfinishedResponses > 0 {
                        group.addTask {
                            try await Task.sleep(for: Self.realtimeUsageGrace)
                            return .timeLimit
                        }
                        _ = try await group.next()
                    }
                    group.cancelAll()
                }
            }
            try? await clientWriter.close(closing?.closeCode ?? .normalClosure, reason: closing?.reason.map { scrubber.scrub($0) })
            // A response asked for and never reported done is billed by the vendor all the same: at least its estimate.
            interrupted = usage.unfinishedResponses > 0
        } catch {
            logger.warning("gateway: realtime session with the vendor failed",
                           metadata: ["provider": "\(session.meter.providerID)", "error": "\(scrubber.scrub(String(describing: error)))"])
            try? await clientWriter.close(.unexpectedServerError, reason: "The vendor's WebSocket could not be opened or failed.")
            status = usage.anything ? 200 : 502
            interrupted = usage.anything
        }
        session.settlement(counts: usage.counts, model: usage.model, status: status, interrupted: interrupted)
    }
}

extension WebSocketMessage {
    /// The message as a frame to write on.
    var outbound: WebSocketOutboundWriter.OutboundFrame {
        switch self {
        case .text(let text): .text(text)
        case .binary(let bytes): .binary(bytes)
        }
    }
}

/// What a WebSocket session used, read from its messages as they pass: a Realtime session's `response.done` events
/// carry their response's tokens; a text-to-speech session is billed by the characters of the text sent.
final class RealtimeUsage: Sendable {
    private struct State {
        var counts = UsageCounts()
        var model: String?
        var anything = false
        /// `response.create` messages the client sent, and `response.done` events the vendor sent.
        var created = 0
        var done = 0
    }

    private let state = Mutex(State())
    private let modality: Modality

    init(modality: Modality) {
        self.modality = modality
    }

    var counts: UsageCounts { state.withLock { $0.counts } }
    var model: String? { state.withLock { $0.model } }
    /// Whether any message passed (a session that relayed is billed by the vendor, however it ended).
    var anything: Bool { state.withLock { $0.anything } }
    /// Responses the client asked for that the vendor has not reported done.
    var unfinishedResponses: Int { state.withLock { max(0, $0.created - $0.done) } }

    func clientSent(_ message: WebSocketMessage) {
        state.withLock { $0.anything = true }
        guard case .text(let text) = message else { return }
        if modality == .tts {
            let characters = RealtimeEvents.ttsCharacters(text)
            state.withLock { $0.counts.characters = ($0.counts.characters ?? 0).saturatingAdding(characters) }
        } else if RealtimeEvents.asksForResponse(text) {
            state.withLock { $0.created += 1 }
        }
    }

    func vendorSent(_ message: WebSocketMessage) {
        state.withLock { $0.anything = true }
        guard modality != .tts, case .text(let text) = message, let done = RealtimeEvents.responseUsage(text) else { return }
        state.withLock { state in
            state.done += 1
            state.counts.inputTokens = (state.counts.inputTokens ?? 0).saturatingAdding(done.input)
            state.counts.outputTokens = (state.counts.outputTokens ?? 0).saturatingAdding(done.output)
            if let model = done.model { state.model = model }
        }
    }
}
