import AsyncHTTPClient
import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenProviders
import KeywardenStore
import KeywardenTestSupport
import Logging
import NIOCore
import NIOHTTP1
import Prometheus
import Synchronization
import Testing
@testable import KeywardenGateway

/// A vendor scripted per API key, in process: what each request carried, and the answer its key gets.
final class ScriptedTransport: VendorTransport {
    struct Sent: Sendable {
        let url: String
        let headers: HTTPHeaders
        let body: [UInt8]
    }

    enum Answer: Sendable {
        case respond(status: Int, headers: [(String, String)], body: String)
        case fail(HTTPClientError)
    }

    private let script: @Sendable (_ key: String) -> Answer
    private let log = Mutex<[Sent]>([])
    /// Whether answers come whole at their head (as the pool hands over one read's answer), not streaming.
    private let whole: Bool

    init(whole: Bool = false, _ script: @escaping @Sendable (_ key: String) -> Answer) {
        self.script = script
        self.whole = whole
    }

    var sent: [Sent] { log.withLock { $0 } }

    /// The API keys the vendor saw, in order.
    var keysSeen: [String] { sent.map { Self.key(in: $0.headers) } }

    static func key(in headers: HTTPHeaders) -> String {
        headers.first(name: "authorization").map { String($0.dropFirst("Bearer ".count)) } ?? ""
    }

    func refusal(forWorkspaceShapedURL url: String) async -> NetworkTargetPolicy.Refusal? { nil }

    func execute(_ request: VendorCall, shapedByWorkspace: Bool, deadline: NIODeadline) async throws -> VendorResponse {
        var body: [UInt8] = []
        if let requestBody = request.clientRequest.body {
            for try await chunk in requestBody { body.append(contentsOf: chunk.readableBytesView) }
        }
        log.withLock { $0.append(Sent(url: request.url, headers: request.headers, body: body)) }
        switch script(Self.key(in: request.headers)) {
        case .fail(let error):
            throw error
        case .respond(let status, let headers, let text):
            var fields = HTTPHeaders(headers)
            fields.replaceOrAdd(name: "content-length", value: "\(text.utf8.count)")
            if whole { return VendorResponse(status: HTTPResponseStatus(statusCode: status), headers: fields, body: .complete(ByteBuffer(string: text))) }
            return VendorResponse(HTTPClientResponse(status: HTTPResponseStatus(statusCode: status), headers: fields, body: .bytes(ByteBuffer(string: text))))
        }
    }
}

/// The gateway's failover, cooldowns and metering, in process: the real store and vault, a scripted vendor.
@Suite("Gateway in process")
struct GatewayInProcessTests {
    static let primaryKey = "sk-primary-0123456789abcdef"
    static let fallbackKey = "sk-fallback-0123456789abcdef"
    static let ok = #"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4.1-mini","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":5,"total_tokens":16}}"#
    static let json = [("Content-Type", "application/json")]

    struct Setup {
        let fixture: StoreFixture
        let app: AppServices
        let gateway: Gateway
        let ledger: UsageLedger
        let workspaceID: String
        let primaryID: String
        let fallbackID: String

        func call(_ body: GatewayRequestBody = .complete(ByteBuffer(string: #"{"model":"gpt-4.1-mini","messages":[]}"#))) -> GatewayCall {
            GatewayCall(face: .native(providerID: "openai"), method: "POST", pathAndQuery: "/v1/chat/completions",
                        headers: [("Content-Type", "application/json")], body: body, workspaceID: workspaceID, consumer: nil, modality: nil)
        }

        func close() async {
            await app.close()
            fixture.remove()
        }
    }

    func setUp(_ transport: ScriptedTransport) async throws -> Setup {
        let fixture = try StoreFixture()
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Failover", byokAllowed: true, exclusive: false, actor: "test").id
        let primary = try await app.keys.create(workspaceID: ws, NewKeyRequest(providerID: "openai", description: "primary",
                                                                              apiKey: Secret(Self.primaryKey), role: .primary), actor: "test")
        let fallback = try await app.keys.create(workspaceID: ws, NewKeyRequest(providerID: "openai", description: "fallback",
                                                                               apiKey: Secret(Self.fallbackKey), role: .fallback), actor: "test")
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry())
        let ledger = UsageLedger(app: app, interval: .seconds(60), metrics: metrics, logger: fixture.logs.logger)
        let gateway = Gateway(app: app, transport: transport, settings: GatewaySettings(), health: nil, ledger: ledger, metrics: metrics,
                              logger: fixture.logs.logger).carryingOutEffects()
        return Setup(fixture: fixture, app: app, gateway: gateway, ledger: ledger, workspaceID: ws,
                     primaryID: primary.credential.id, fallbackID: fallback.credential.id)
    }

    func header(_ response: GatewayResponse, _ name: String) -> String? {
        response.headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    func bodyText(_ response: GatewayResponse) async throws -> String {
        switch response.body {
        case .complete(let buffer):
            return String(buffer: buffer)
        case .stream(let stream):
            var bytes: [UInt8] = []
            try await stream.pump { chunk in bytes.append(contentsOf: chunk.readableBytesView) }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    @Test("an answer whole at its head is passed on in one piece and metered exactly as the same answer streamed: a JSON answer, and an event stream whose usage-only event the caller did not ask for")
    func wholeAnswersMatchStreamedOnes() async throws {
        let events = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
            + "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}\n\n"
            + "data: [DONE]\n\n"
        let streamed = #"{"model":"gpt-4.1-mini","messages":[],"stream":true}"#
        var outcomes: [[String]] = []
        for whole in [false, true] {
            let transport = ScriptedTransport(whole: whole) { _ in .respond(status: 200, headers: Self.json, body: Self.ok) }
            let setup = try await setUp(transport)
            let plain = await setup.gateway.handle(setup.call())
            if case .complete = plain.body { #expect(whole) } else { #expect(!whole) }
            let plainText = try await bodyText(plain)

            let sse = ScriptedTransport(whole: whole) { _ in .respond(status: 200, headers: [("Content-Type", "text/event-stream")], body: events) }
            let sseSetup = try await setUp(sse)
            let stream = await sseSetup.gateway.handle(sseSetup.call(.complete(ByteBuffer(string: streamed))))
            let streamText = try await bodyText(stream)
            #expect(!streamText.contains("usage"), "the usage-only event the gateway asked for is left out")
            #expect(String(decoding: sse.sent[0].body, as: UTF8.self).contains("include_usage"))

            var totals: [String] = []
            for used in [setup, sseSetup] {
                await used.ledger.flush()
                let report = try await used.app.usage.report(UsageQuery(workspaceID: used.workspaceID, from: nil, to: nil, groupBy: .key))
                totals.append("\(report.totals.requests) \(report.totals.errors) \(report.totals.inputTokens) \(report.totals.outputTokens)")
            }
            #expect(totals == ["1 0 11 5", "1 0 7 3"])
            outcomes.append([plainText, streamText] + totals + ["\(header(plain, "X-Keywarden-Key") == setup.primaryID)", "\(plain.status)"])
            await setup.close()
            await sseSetup.close()
        }
        #expect(outcomes[0] == outcomes[1])
    }

    @Test("a 429 on the primary key fails over to the fallback before the first byte, rests the primary for its Retry-After, and meters one call")
    func rateLimitFailsOver() async throws {
        let transport = ScriptedTransport { key in
            key == Self.primaryKey
                ? .respond(status: 429, headers: Self.json + [("Retry-After", "120")],
                           body: #"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#)
                : .respond(status: 200, headers: Self.json, body: Self.ok)
        }
        let setup = try await setUp(transport)
        let first = await setup.gateway.handle(setup.call())
        #expect(first.status == 200)
        #expect(header(first, "X-Keywarden-Key") == setup.fallbackID && header(first, "X-Keywarden-Attempts") == "2")
        #expect(try await bodyText(first) == Self.ok)
        #expect(transport.keysSeen == [Self.primaryKey, Self.fallbackKey])
        #expect(setup.gateway.cooldowns.resting(for: setup.workspaceID) == [setup.primaryID])
        #expect(try #require(setup.gateway.cooldowns.shortestRateLimit(among: [setup.primaryID], for: setup.workspaceID)) > .seconds(100))

        // The resting primary is not tried again: the next call goes straight to the fallback.
        let second = await setup.gateway.handle(setup.call())
        _ = try await bodyText(second)
        #expect(transport.keysSeen == [Self.primaryKey, Self.fallbackKey, Self.fallbackKey])

        await setup.ledger.flush()
        let report = try await setup.app.usage.report(UsageQuery(workspaceID: setup.workspaceID, from: nil, to: nil, groupBy: .key))
        #expect(report.totals.requests == 2 && report.totals.errors == 0 && report.totals.inputTokens == 22 && report.totals.outputTokens == 10)
        #expect(report.groups.map(\.key) == [setup.fallbackID], "each call is metered once, on the key that served")
        await setup.close()
    }

    @Test("the workspace's own key refused with 401 is recorded invalid; when every key is refused the last answer goes back without the keys it echoed")
    func refusalsRecordedAndScrubbed() async throws {
        let transport = ScriptedTransport { key in
            .respond(status: 401, headers: Self.json,
                     body: #"{"error":{"message":"Incorrect API key provided: \#(key). You can find your API key at https://platform.openai.com.","type":"invalid_request_error","code":"invalid_api_key"}}"#)
        }
        let setup = try await setUp(transport)
        let answer = await setup.gateway.handle(setup.call())
        #expect(answer.status == 401 && header(answer, "X-Keywarden-Attempts") == "2")
        let text = try await bodyText(answer)
        #expect(text.contains("Incorrect API key provided"))
        #expect(!text.contains(Self.primaryKey) && !text.contains(Self.fallbackKey) && !text.contains("0123456789abcdef"))
        #expect(Set(setup.gateway.cooldowns.resting(for: "another-workspace")) == [setup.primaryID, setup.fallbackID],
                "the caller's own refused key rests for everyone")

        // The verdict is recorded off the call's path.
        var statuses: [VerificationStatus] = []
        for _ in 0..<100 {
            statuses = [try await setup.app.keys.get(workspaceID: setup.workspaceID, keyID: setup.primaryID).status,
                        try await setup.app.keys.get(workspaceID: setup.workspaceID, keyID: setup.fallbackID).status]
            if statuses == [.invalid, .invalid] { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(statuses == [.invalid, .invalid])
        #expect(!setup.fixture.logs.text.contains(Self.primaryKey))
        await setup.close()
    }

    @Test("a body streamed to the first key is not sent again: that key's 503 is the answer")
    func streamedBodyNotReplayed() async throws {
        let transport = ScriptedTransport { _ in
            .respond(status: 503, headers: Self.json, body: #"{"error":{"message":"overloaded","type":"server_error"}}"#)
        }
        let setup = try await setUp(transport)
        let payload = ByteBuffer(string: #"{"model":"gpt-4.1-mini","messages":[]}"#)
        let answer = await setup.gateway.handle(setup.call(.stream(length: payload.readableBytes) { .bytes(payload) }))
        #expect(answer.status == 503 && header(answer, "X-Keywarden-Attempts") == "1")
        #expect(transport.keysSeen == [Self.primaryKey])
        #expect(setup.gateway.cooldowns.resting(for: setup.workspaceID).isEmpty, "a server error rests no key")
        await setup.close()
    }

    @Test("the custody log counts every own key a call opened: a key refused with 429 and the one that answered; a key failed over before an attempt that timed out, whose own row is the only one written")
    func custodyCountsEveryOwnKeyOpened() async throws {
        let timesOut = Mutex(false)
        let transport = ScriptedTransport { key in
            if key == Self.primaryKey {
                return .respond(status: 429, headers: Self.json + [("Retry-After", "1")],
                                body: #"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#)
            }
            return timesOut.withLock { $0 } ? .fail(.deadlineExceeded) : .respond(status: 200, headers: Self.json, body: Self.ok)
        }
        let setup = try await setUp(transport)
        let owner = Principal(tokenID: "tok_owner", kind: .member, workspaceID: setup.workspaceID, role: .owner, permissions: [.auditRead], name: "test")
        func counts() async throws -> [String: Int] {
            await setup.ledger.flush()
            try await setup.app.custody.appendTallied(everything: true)
            let (entries, _, _) = try await setup.app.custody.page(workspaceID: setup.workspaceID, pagination: try Pagination(page: 1, perPage: 100), principal: owner)
            return Dictionary(entries.filter { $0.use == .gatewayCall }.map { ($0.credentialID, $0.count) }) { $0 + $1 }
        }
        let served = await setup.gateway.handle(setup.call())
        _ = try await bodyText(served)
        #expect(served.status == 200 && transport.keysSeen == [Self.primaryKey, Self.fallbackKey])
        #expect(try await counts() == [setup.primaryID: 1, setup.fallbackID: 1])

        // The primary rests a second; then it is refused again and the fallback times out: the call's own row is not
        // written (its last attempt billed in a row of its own), and both keys are counted there, once.
        try await Task.sleep(for: .milliseconds(1100))
        timesOut.withLock { $0 = true }
        let timedOut = await setup.gateway.handle(setup.call())
        _ = try await bodyText(timedOut)
        #expect(timedOut.status == 504 && transport.keysSeen == [Self.primaryKey, Self.fallbackKey, Self.primaryKey, Self.fallbackKey])
        #expect(try await counts() == [setup.primaryID: 2, setup.fallbackID: 2])
        await setup.close()
    }

    @Test("a vendor that sends no response head in time is left for the next key; when none answers, 504 upstream_timeout; each attempt the vendors had is billed its estimate in a row of its own")
    func timeoutsMoveOn() async throws {
        let transport = ScriptedTransport { _ in .fail(.deadlineExceeded) }
        let setup = try await setUp(transport)
        let answer = await setup.gateway.handle(setup.call())
        #expect(answer.status == 504)
        #expect(try await bodyText(answer).contains("upstream_timeout"))
        #expect(transport.keysSeen == [Self.primaryKey, Self.fallbackKey])
        await setup.ledger.flush()
        let report = try await setup.app.usage.report(UsageQuery(workspaceID: setup.workspaceID, from: nil, to: nil, groupBy: .key))
        #expect(report.totals.requests == 2 && report.totals.errors == 2 && report.totals.milliCredits == 2000, "\(report.totals)")
        await setup.close()
    }
}
