import AsyncHTTPClient
import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenProviders
import KeywardenStore
import KeywardenTestSupport
import NIOCore
import Prometheus
import Testing
@testable import KeywardenGateway

/// Budgets on the gateway's path: the platform's key stops serving a workspace at its limit (402 budget_exceeded), its
/// own keys go on, concurrent calls cannot pass the limit, and 80 / 95 / 100 % are announced once each.
@Suite("Gateway budgets")
struct BudgetGatewayTests {
    static let ok = #"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-5.4-mini","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#

    struct Setup {
        let fixture: StoreFixture
        let app: AppServices
        let gateway: Gateway
        let ledger: UsageLedger
        let workspaceID: String

        func call(_ providerID: String = "openai") -> GatewayCall {
            GatewayCall(face: .native(providerID: providerID), method: "POST", pathAndQuery: "/v1/chat/completions",
                        headers: [("Content-Type", "application/json")],
                        body: .complete(ByteBuffer(string: #"{"model":"gpt-5.4-mini","messages":[]}"#)), workspaceID: workspaceID, consumer: nil, modality: nil)
        }

        func close() async {
            await app.close()
            fixture.remove()
        }
    }

    /// A workspace served by the platform's OpenAI key, with a platform budget of `credits` (one credit a call).
    func setUp(credits: Int, transport: ScriptedTransport = ScriptedTransport { _ in .respond(status: 200, headers: [("Content-Type", "application/json")], body: BudgetGatewayTests.ok) }) async throws -> Setup {
        let fixture = try StoreFixture()
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Capped", byokAllowed: true, exclusive: false, actor: "test").id
        _ = try await app.platformCards.save("openai", PlatformCardUpdate(apiKey: Secret("sk-platform-0123456789abcdef")), actor: "test")
        _ = try await app.platformCards.activate("openai", actor: "test")
        _ = try await app.budgets.setLimits(workspaceID: ws, BudgetLimits(platform: credits * 1000), actor: "test")
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry())
        let ledger = UsageLedger(app: app, interval: .seconds(60), metrics: metrics, logger: fixture.logs.logger)
        let gateway = Gateway(app: app, transport: transport, settings: GatewaySettings(), health: nil, ledger: ledger, metrics: metrics,
                              logger: fixture.logs.logger).carryingOutEffects()
        return Setup(fixture: fixture, app: app, gateway: gateway, ledger: ledger, workspaceID: ws)
    }

    func body(_ response: GatewayResponse) async throws -> String {
        switch response.body {
        case .complete(let buffer): return String(buffer: buffer)
        case .stream(let stream):
            var bytes: [UInt8] = []
            try await stream.pump { bytes.append(contentsOf: $0.readableBytesView) }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Waits until every reservation is settled (settling runs off the call's path).
    func settled(_ setup: Setup) async throws -> BudgetStatus {
        for _ in 0..<200 {
            // A shared hold (PostgreSQL) is settled by its call's usage row, when the ledger writes it.
            await setup.ledger.flush()
            let status = try await setup.app.budgets.status(workspaceID: setup.workspaceID, defaultPlatformLimit: nil)[0]
            if status.reserved == 0 { return status }
            try await Task.sleep(for: .milliseconds(10))
        }
        return try await setup.app.budgets.status(workspaceID: setup.workspaceID, defaultPlatformLimit: nil)[0]
    }

    @Test("at the limit the platform's key is not used: 402 budget_exceeded naming the limit and the period's end")
    func platformKeyStopsAtTheLimit() async throws {
        let setup = try await setUp(credits: 3)
        var statuses: [Int] = []
        for _ in 0..<5 {
            let answer = await setup.gateway.handle(setup.call())
            let text = try await body(answer)
            statuses.append(answer.status)
            if answer.status == 402 {
                #expect(text.contains("budget_exceeded") && text.contains("3 credits") && text.contains("its own keys still serve"), "\(text)")
            }
            _ = try await settled(setup)
        }
        #expect(statuses == [200, 200, 200, 402, 402])
        let status = try await settled(setup)
        #expect(status.spent == 3000 && status.reserved == 0)
        await setup.close()
    }

    @Test("the workspace's own key still serves over the platform budget, and never counts against it")
    func byokUntouched() async throws {
        let setup = try await setUp(credits: 1)
        let first = await setup.gateway.handle(setup.call())
        _ = try await body(first)
        #expect(first.status == 200)
        _ = try await settled(setup)
        #expect(await setup.gateway.handle(setup.call()).status == 402)
        _ = try await setup.app.keys.create(workspaceID: setup.workspaceID, NewKeyRequest(
            providerID: "openai", description: "own", apiKey: Secret("sk-own-0123456789abcdef"), role: .primary, active: true), actor: "test")
        for _ in 0..<3 {
            let answer = await setup.gateway.handle(setup.call())
            #expect(answer.status == 200 && answer.headers.contains { $0.name == "X-Keywarden-Source" && $0.value == "byok" })
            _ = try await body(answer)
        }
        let status = try await settled(setup)
        #expect(status.spent == 1000, "BYOK calls are not counted against the platform budget")
        await setup.close()
    }

    @Test("a failed call costs nothing: its reservation is given back")
    func failuresReleaseTheReservation() async throws {
        let setup = try await setUp(credits: 2, transport: ScriptedTransport { _ in
            .respond(status: 500, headers: [("Content-Type", "application/json")], body: #"{"error":{"message":"boom","type":"server_error"}}"#)
        })
        for _ in 0..<4 { _ = try await body(await setup.gateway.handle(setup.call())) }
        let status = try await settled(setup)
        #expect(status.spent == 0 && status.reserved == 0)
        await setup.close()
    }

    @Test("two clients hammering one workspace at once cannot pass its limit, as the ledger shows; 80, 95 and 100 % are each announced once")
    func concurrentCallsHoldTheLimit() async throws {
        let setup = try await setUp(credits: 20)
        // A second gateway over the same store stands for another instance.
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry())
        let other = Gateway(app: setup.app, transport: ScriptedTransport { _ in .respond(status: 200, headers: [("Content-Type", "application/json")], body: Self.ok) },
                            settings: GatewaySettings(), health: nil, ledger: setup.ledger, metrics: metrics, logger: setup.fixture.logs.logger).carryingOutEffects()
        let served = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<60 {
                let gateway = index % 2 == 0 ? setup.gateway : other
                group.addTask {
                    let answer = await gateway.handle(setup.call())
                    _ = try await self.body(answer)
                    return answer.status
                }
            }
            var statuses: [Int] = []
            for try await status in group { statuses.append(status) }
            return statuses
        }
        #expect(served.filter { $0 == 200 }.count == 20 && served.filter { $0 == 402 }.count == 40)
        let status = try await settled(setup)
        #expect(status.spent == 20_000 && status.reserved == 0)
        await setup.ledger.flush()
        let report = try await setup.app.usage.report(UsageQuery(workspaceID: setup.workspaceID, from: nil, to: nil, groupBy: .source))
        let platform = report.groups.first { $0.key == "platform" }
        #expect(platform?.totals.milliCredits == 20_000, "the ledger's platform credits equal the limit: no overshoot")
        // The events are recorded off the call's path, after the settle: wait for them (and for any duplicate) a while.
        var percents: [String] = []
        for _ in 0..<100 {
            let events = try await setup.app.store.engine.read { db in
                try await setup.app.store.events.list(workspaceID: setup.workspaceID, kind: .budgetThreshold, on: db)
            }
            percents = events.compactMap { try? JSONDecoder().decode([String: String].self, from: Data($0.payload.utf8))["percent"] }.sorted()
            if percents.count >= 3 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(200))
        let events = try await setup.app.store.engine.read { db in
            try await setup.app.store.events.list(workspaceID: setup.workspaceID, kind: .budgetThreshold, on: db)
        }
        percents = events.compactMap { try? JSONDecoder().decode([String: String].self, from: Data($0.payload.utf8))["percent"] }.sorted()
        #expect(percents == ["100", "80", "95"], "each threshold once: \(percents)")
        await setup.close()
    }

    @Test("a rate limit on the platform's keys answers 429 rate_limited with Retry-After past its requests a minute; the workspace's own key is not limited")
    func requestsPerMinute() async throws {
        let setup = try await setUp(credits: 1_000)
        _ = try await setup.app.rateLimits.setLimits(workspaceID: setup.workspaceID, RateLimits(requestsPerMinute: 3), actor: "test")
        let minuteBefore = RateWindow(containing: Date()).key
        var statuses: [Int] = []
        var retryAfter: String?
        for _ in 0..<5 {
            let answer = await setup.gateway.handle(setup.call())
            let text = try await body(answer)
            statuses.append(answer.status)
            if answer.status == 429 {
                #expect(text.contains("rate_limited") && text.contains("3 requests a minute"))
                retryAfter = answer.headers.first { $0.name == "Retry-After" }?.value
            }
        }
        // Across a minute's turn the count starts again; within one minute exactly three pass.
        if RateWindow(containing: Date()).key == minuteBefore {
            #expect(statuses == [200, 200, 200, 429, 429])
            #expect(retryAfter.flatMap(Int.init).map { (1...60).contains($0) } == true, "\(retryAfter ?? "none")")
        }
        _ = try await setup.app.keys.create(workspaceID: setup.workspaceID, NewKeyRequest(
            providerID: "openai", description: "own", apiKey: Secret("sk-own-0123456789abcdef"), role: .primary, active: true), actor: "test")
        for _ in 0..<4 {
            let answer = await setup.gateway.handle(setup.call())
            _ = try await body(answer)
            #expect(answer.status == 200, "the workspace's own key is not rate limited")
        }
        await setup.close()
    }

    @Test("the token limit counts a call in flight by its estimate, settles it with the tokens it used, and refuses a call that alone could never fit")
    func tokensPerMinute() async throws {
        let setup = try await setUp(credits: 1_000)
        // A call's estimate: its body's 39 bytes / 4 = 10 input tokens and 1,000 output tokens (it sets no limit): 1,010.
        _ = try await setup.app.rateLimits.setLimits(workspaceID: setup.workspaceID, RateLimits(tokensPerMinute: 2_000), actor: "test")
        let minuteBefore = RateWindow(containing: Date()).key
        let inFlight = await setup.gateway.handle(setup.call())
        #expect(inFlight.status == 200)
        // The first call has not ended (its answer is not read): its 1,010 and the second's 1,010 pass the 2,000.
        let second = await setup.gateway.handle(setup.call())
        _ = try await body(second)
        if RateWindow(containing: Date()).key == minuteBefore { #expect(second.status == 429, "a call in flight did not count") }
        // The first ends having used 5 tokens: its reservation gives way to them, and a call fits again (on PostgreSQL
        // the settlement is written off the call's path, so it may take a moment).
        _ = try await body(inFlight)
        var admitted = false
        for _ in 0..<50 where !admitted {
            let answer = await setup.gateway.handle(setup.call())
            _ = try await body(answer)
            admitted = answer.status == 200
            if !admitted { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(admitted, "the settled call kept its whole estimate")
        // A call whose own limit alone passes the minute's tokens never fits: refused at once, without the vendor.
        let huge = GatewayCall(face: .native(providerID: "openai"), method: "POST", pathAndQuery: "/v1/chat/completions",
                               headers: [("Content-Type", "application/json")],
                               body: .complete(ByteBuffer(string: #"{"model":"gpt-5.4-mini","max_tokens":5000,"messages":[]}"#)),
                               workspaceID: setup.workspaceID, consumer: nil, modality: nil)
        let refused = await setup.gateway.handle(huge)
        let text = try await body(refused)
        #expect(refused.status == 429 && text.contains("request_too_large"), "\(refused.status) \(text)")
        await setup.close()
    }

    @Test("two gateways over one store admit at most the limit per minute between them")
    func rateLimitAcrossInstances() async throws {
        let setup = try await setUp(credits: 1_000)
        _ = try await setup.app.rateLimits.setLimits(workspaceID: setup.workspaceID, RateLimits(requestsPerMinute: 10), actor: "test")
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry())
        let other = Gateway(app: setup.app, transport: ScriptedTransport { _ in .respond(status: 200, headers: [("Content-Type", "application/json")], body: Self.ok) },
                            settings: GatewaySettings(), health: nil, ledger: setup.ledger, metrics: metrics, logger: setup.fixture.logs.logger).carryingOutEffects()
        let start = RateWindow(containing: Date()).key
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<40 {
                let gateway = index % 2 == 0 ? setup.gateway : other
                group.addTask {
                    let answer = await gateway.handle(setup.call())
                    _ = try await self.body(answer)
                    return answer.status
                }
            }
            var all: [Int] = []
            for try await status in group { all.append(status) }
            return all
        }
        let minutes = RateWindow(containing: Date()).key == start ? 1 : 2
        let served = statuses.filter { $0 == 200 }.count
        #expect(served <= 10 * minutes && served >= 10 && statuses.allSatisfy { $0 == 200 || $0 == 429 }, "\(served) served in \(minutes) minute(s)")
        await setup.close()
    }

    @Test("a client that leaves a successful call early still pays for it; a response never sent releases its hold and is charged")
    func leavingEarlyStillPays() async throws {
        let setup = try await setUp(credits: 10)
        // The client's connection fails on the first chunk written.
        let answer = await setup.gateway.handle(setup.call())
        #expect(answer.status == 200)
        if case .stream(let stream) = answer.body {
            await #expect(throws: (any Error).self) { try await stream.pump { _ in throw CancellationError() } }
        }
        var status = try await settled(setup)
        #expect(status.spent == 1000 && status.reserved == 0, "the interrupted call is charged")
        // The server never sends the body (the client left while the vendor answered): the response is dropped.
        do { _ = await setup.gateway.handle(setup.call()) }
        status = try await settled(setup)
        #expect(status.spent == 2000 && status.reserved == 0, "a dropped response releases its hold: \(status)")
        await setup.close()
    }
}
