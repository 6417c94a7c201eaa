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

/// The price table on the gateway's path: the model the vendor says served picks the entry, and an answer that reports
/// no tokens is charged as estimated (not free).
@Suite("Gateway price metering")
struct PriceMeteringTests {
    static let prices = PriceTable(prices: [
        .init(provider: "openai", model: .prefix("gpt-4o"), perMillionInputTokens: 1_000_000_000, perMillionOutputTokens: 20_000_000_000),
        .init(provider: "openai", model: .prefix("gpt-4o-mini"), perCall: 1_000_000),
    ])

    func run(answer: String, body: String) async throws -> (credits: Int, model: String?) {
        let fixture = try StoreFixture()
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Priced", byokAllowed: true, exclusive: false, actor: "test").id
        _ = try await app.platformCards.save("openai", PlatformCardUpdate(apiKey: Secret("sk-platform-0123456789abcdef")), actor: "test")
        _ = try await app.platformCards.activate("openai", actor: "test")
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry())
        let ledger = UsageLedger(app: app, interval: .seconds(60), metrics: metrics, logger: fixture.logs.logger)
        let transport = ScriptedTransport { _ in .respond(status: 200, headers: [("Content-Type", "application/json")], body: answer) }
        let gateway = Gateway(app: app, transport: transport, settings: GatewaySettings(prices: Self.prices), health: nil, ledger: ledger,
                              metrics: metrics, logger: fixture.logs.logger).carryingOutEffects()
        let call = GatewayCall(face: .native(providerID: "openai"), method: "POST", pathAndQuery: "/v1/chat/completions",
                               headers: [("Content-Type", "application/json")], body: .complete(ByteBuffer(string: body)),
                               workspaceID: ws, consumer: nil, modality: nil)
        let response = await gateway.handle(call)
        #expect(response.status == 200)
        if case .stream(let stream) = response.body { try await stream.pump { _ in } }
        await ledger.flush()
        let report = try await app.usage.report(UsageQuery(workspaceID: ws, from: nil, to: nil, groupBy: .model))
        await app.close()
        fixture.remove()
        return (report.totals.milliCredits, report.groups.first?.key)
    }

    @Test("the model the answer names picks the entry, and its counts are priced exactly")
    func servedModelPrices() async throws {
        let asked = #"{"model":"gpt-4o","messages":[]}"#
        let exact = try await run(answer: #"{"model":"gpt-4o-2024-08-06","usage":{"prompt_tokens":7,"completion_tokens":3}}"#, body: asked)
        #expect(exact.credits == 7 + 3 * 20 && exact.model == "gpt-4o-2024-08-06")
        let mini = try await run(answer: #"{"model":"gpt-4o-mini-2024-07-18","usage":{"prompt_tokens":7,"completion_tokens":3}}"#, body: asked)
        #expect(mini.credits == 1_000, "served by gpt-4o-mini: its per-call price, not gpt-4o's tokens")
    }

    @Test("an answer without token counts is charged the estimate's tokens: body bytes / 4 in, max_tokens out")
    func unreportedCountsAreEstimated() async throws {
        let body = #"{"model":"gpt-4o","max_tokens":50,"messages":[]}"#  // 48 bytes: 12 input tokens
        #expect(body.utf8.count == 48)
        let charged = try await run(answer: #"{"model":"gpt-4o","choices":[]}"#, body: body)
        #expect(charged.credits == 12 + 50 * 20)
    }
}
