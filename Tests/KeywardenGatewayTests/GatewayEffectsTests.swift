import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenStore
import KeywardenTestSupport
import Prometheus
import ServiceLifecycle
import Testing
@testable import KeywardenGateway

/// The gateway's effects have one owner: submitted as values, carried out by its `run()`, drained at graceful shutdown.
@Suite("Gateway effects")
struct GatewayEffectsTests {
    @Test("effects submitted before a graceful shutdown are all carried out before the service stops; one submitted after is dropped, with a warning")
    func drainedAtGracefulShutdown() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        var workspaces: [String] = []
        for index in 0..<12 {
            workspaces.append(try await app.workspaceService.create(name: "Effects \(index)", byokAllowed: true, exclusive: false, actor: "test").id)
        }
        let ledger = UsageLedger(app: app, interval: .seconds(60), metrics: GatewayMetrics(registry: PrometheusCollectorRegistry()), logger: fixture.logs.logger)
        let effects = GatewayEffects(app: app, health: nil, ledger: ledger, logger: fixture.logs.logger)
        // Submitted before the owner runs: nothing is carried out yet, nothing is lost.
        for workspace in workspaces {
            effects.submit(.recordFallback(workspaceID: workspace, providerID: "openai", source: .platform, reason: "test"))
        }
        func engaged() async throws -> Int {
            let events = try await app.engine.read { db in try await app.events.list(workspaceID: nil, kind: .fallbackEngaged, on: db) }
            return events.count
        }
        #expect(try await engaged() == 0)
        let group = ServiceGroup(configuration: .init(services: [effects], logger: fixture.logs.logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(try await engaged() == workspaces.count, "every effect submitted before the shutdown was carried out")
        effects.submit(.announce("late"))
        #expect(fixture.logs.text.contains("an effect after shutdown was not carried out"))
    }
}
