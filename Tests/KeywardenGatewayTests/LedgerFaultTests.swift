import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenStore
import KeywardenTestSupport
import Prometheus
import SQLKit
import Testing
@testable import KeywardenGateway

/// The usage ledger when the database refuses what it is given (not because it is away): one bad row never holds back
/// the others.
@Suite("Usage ledger with rows the database refuses")
struct LedgerFaultTests {
    func record(model: String?, credits: Int = 1000, hold: String? = nil) -> UsageRecord {
        UsageRecord(at: Date(), workspaceID: "ws_ledger", providerID: "openai", model: model, credentialID: nil, source: .platform, modality: .chat,
                    consumer: "c\u{0}onsumer", status: 200, latencyMilliseconds: 3, counts: UsageCounts(inputTokens: 1, outputTokens: 1),
                    milliCredits: credits, attempts: 1, holdID: hold)
    }

    func storedRows(_ app: AppServices) async throws -> [(model: String?, consumer: String?)] {
        try await app.store.engine.read { db in
            try await db.raw("SELECT model, consumer FROM usage WHERE workspace_id = 'ws_ledger' ORDER BY model").all().map {
                (try $0.decode(column: "model", as: String?.self), try $0.decode(column: "consumer", as: String?.self))
            }
        }
    }

    @Test("a model name with a NUL character (from a request body) is stored without it, and its batch is written")
    func nulIsStripped() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let ledger = UsageLedger(app: app, interval: .seconds(60), metrics: GatewayMetrics(registry: PrometheusCollectorRegistry()), logger: fixture.logs.logger)
        ledger.append(record(model: "gpt\u{0}-x"))
        ledger.append(record(model: "plain"))
        await ledger.flush()
        #expect(ledger.pending == 0)
        let rows = try await storedRows(app)
        #expect(rows.map(\.model) == ["gpt-x", "plain"] && rows.allSatisfy { $0.consumer == "consumer" })
        await app.close()
    }

    @Test("a row the database refuses alone (its cost overflows the budget's counter) is dropped and counted; the rows beside it are written, and the next rounds are not held back", .enabled(if: TestDatabase.engine == .postgres))
    func refusedRowIsIsolated() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let registry = PrometheusCollectorRegistry()
        let ledger = UsageLedger(app: app, interval: .seconds(60), metrics: GatewayMetrics(registry: registry), logger: fixture.logs.logger)
        // A hold whose settle cannot be counted: the spending is already at the top of its column.
        try await app.store.engine.counterWrite { db in
            _ = try await app.store.budgets.hold("hold_overflow", workspaceID: "ws_ledger", period: "2026-12", scope: .platform, amount: 1,
                                                  limit: Int.max, instanceID: app.store.engine.instanceID, on: db)
            try await db.raw("UPDATE budget_spend SET spent_milli = \(bind: Int.max - 10) WHERE workspace_id = 'ws_ledger'").run()
        }
        ledger.append(record(model: "a"))
        ledger.append(record(model: "b-overflows", credits: 1000, hold: "hold_overflow"))
        ledger.append(record(model: "c"))
        await ledger.flush()
        #expect(ledger.pending == 0, "nothing is kept to fail again on every round")
        #expect(try await storedRows(app).map(\.model) == ["a", "c"])
        ledger.append(record(model: "d"))
        await ledger.flush()
        #expect(try await storedRows(app).map(\.model) == ["a", "c", "d"])
        var exposition: [UInt8] = []
        registry.emit(into: &exposition)
        #expect(String(decoding: exposition, as: UTF8.self).contains("keywarden_usage_rows_dropped_total 1"))
        #expect(fixture.logs.text.contains("usage row refused by the database; dropped"))
        await app.close()
    }
}
