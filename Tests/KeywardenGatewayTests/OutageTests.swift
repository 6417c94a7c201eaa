import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenStore
import KeywardenTestSupport
import NIOCore
import Prometheus
import Testing
@testable import KeywardenGateway

/// The gateway through a database outage, in process: the real store (its engine closed under it, so every database
/// operation fails), the real change follower, a scripted vendor.
@Suite("Gateway through a database outage")
struct OutageTests {
    @Test("what the instance holds serves from memory while it is confirmed current; past the staleness bound every call is 503 store_unavailable with Retry-After and reaches no vendor; tokens likewise")
    func servesFromMemoryUpToTheBound() async throws {
        var fixture = try StoreFixture()
        fixture.staleAfter = .seconds(4)
        defer { fixture.remove() }
        let (app, report) = try await fixture.open()
        let admin = try #require(report.adminToken?.value)
        let ws = try await app.workspaceService.create(name: "Outage", byokAllowed: true, exclusive: false, actor: "test").id
        _ = try await app.keys.create(workspaceID: ws, NewKeyRequest(providerID: "openai", description: "own",
                                                                     apiKey: Secret("sk-own-outage-0123456789"), role: .primary, active: true), actor: "test")
        let transport = ScriptedTransport(whole: true) { _ in .respond(status: 200, headers: GatewayInProcessTests.json, body: GatewayInProcessTests.ok) }
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry())
        let ledger = UsageLedger(app: app, interval: .seconds(60), metrics: metrics, logger: fixture.logs.logger)
        let gateway = Gateway(app: app, transport: transport, settings: GatewaySettings(), health: nil, ledger: ledger, metrics: metrics,
                              logger: fixture.logs.logger).carryingOutEffects()
        let call = GatewayCall(face: .native(providerID: "openai"), method: "POST", pathAndQuery: "/v1/chat/completions",
                               headers: [("Content-Type", "application/json")], body: .complete(ByteBuffer(string: #"{"model":"gpt-4.1-mini","messages":[]}"#)),
                               workspaceID: ws, consumer: nil, modality: nil)
        try await app.followChanges()
        #expect(await gateway.handle(call).status == 200)
        #expect(try await app.authenticate(presented: admin) != nil)

        // The database goes away (just after a pass confirmed the instance current): every operation fails from now on.
        while (app.staleness.sinceConfirmed ?? .seconds(60)) > .milliseconds(300) { try await Task.sleep(for: .milliseconds(20)) }
        await app.store.engine.close()
        #expect(await gateway.handle(call).status == 200, "served from memory within the bound")
        #expect(try await app.authenticate(presented: admin) != nil, "a token seen before authenticates from memory within the bound")
        await #expect(throws: StoreError.self, "a token not seen before needs the database") {
            _ = try await app.authenticate(presented: "kw_" + String(repeating: "a", count: 43))
        }
        #expect(app.isCurrent)

        let started = ContinuousClock.now
        while app.isCurrent, ContinuousClock.now - started < .seconds(30) { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!app.isCurrent, "not current once the bound passed without a confirmation")
        let sentBefore = transport.sent.count
        let refused = await gateway.handle(call)
        #expect(refused.status == 503)
        #expect(refused.headers.contains { $0.name == "Retry-After" && $0.value == "2" })
        if case .complete(let buffer) = refused.body { #expect(String(buffer: buffer).contains("store_unavailable")) }
        #expect(transport.sent.count == sentBefore, "no vendor is called with keys that may have changed")
        await #expect(throws: StoreError.self, "a cached token is not trusted past the bound") { _ = try await app.authenticate(presented: admin) }
        await app.close()
    }
}
