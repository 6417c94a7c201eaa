import Foundation
import KeywardenCore
import KeywardenTestSupport
import Testing
@testable import KeywardenApp
import KeywardenStore

@Suite("Usage ledger")
struct UsageLedgerTests {
    func record(_ provider: String, _ source: KeySource?, at: Date, workspace: String?, status: Int = 200, tokens: (Int, Int)? = nil,
                credits: Int = 1000, model: String = "m") -> UsageRecord {
        UsageRecord(at: at, workspaceID: workspace, providerID: provider, model: model, credentialID: source == nil ? nil : "key_\(provider)",
                    source: source, modality: .chat, consumer: nil, status: status, latencyMilliseconds: 12,
                    counts: UsageCounts(inputTokens: tokens?.0, outputTokens: tokens?.1), milliCredits: credits, attempts: 1)
    }

    @Test("batches are written without reloading the resolution snapshot, and reports group and total them")
    func reports() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        defer { Task { await store.close() } }
        let workspace = try await store.workspaceService.create(name: "Metered", byokAllowed: true, exclusive: false, actor: "test")
        let day1 = Date(timeIntervalSince1970: 1_795_000_000)  // 2026-11-18
        let day2 = day1.addingTimeInterval(86_400)
        let generation = store.engine.changes.value
        try await store.usage.record([
            record("openai", .byok, at: day1, workspace: workspace.id, tokens: (10, 20)),
            record("openai", .platform, at: day2, workspace: workspace.id, tokens: (1, 2)),
            record("anthropic", .managed, at: day2, workspace: workspace.id, tokens: (5, 5), credits: 2500),
            record("openai", nil, at: day2, workspace: workspace.id, status: 422, credits: 0),
            record("openai", .platform, at: day2, workspace: nil, tokens: (100, 100)),
        ] + (0..<1200).map { _ in record("gemini", .byok, at: day1, workspace: workspace.id) })
        #expect(store.engine.changes.value == generation, "usage writes do not invalidate the snapshot")

        let byProvider = try await store.usage.report(UsageQuery(workspaceID: workspace.id, from: nil, to: nil, groupBy: .provider))
        #expect(byProvider.groups.map(\.key) == ["anthropic", "gemini", "openai"])
        let openai = byProvider.groups.first { $0.key == "openai" }?.totals
        #expect(openai == UsageTotals(requests: 3, errors: 1, inputTokens: 11, outputTokens: 22, characters: 0, milliCredits: 2000))
        #expect(byProvider.totals.requests == 1204 && byProvider.totals.credits == 1204.5)

        let bySource = try await store.usage.report(UsageQuery(workspaceID: workspace.id, from: nil, to: nil, groupBy: .source))
        #expect(bySource.groups.map(\.key) == ["", "byok", "managed", "platform"], "a call no key paid for groups under \"\"")

        let byDay = try await store.usage.report(UsageQuery(workspaceID: nil, from: day2, to: nil, groupBy: .day))
        #expect(byDay.groups.map(\.key) == ["2026-11-19"] && byDay.totals.requests == 4, "\(byDay.groups.map(\.key))")
        let all = try await store.usage.report(UsageQuery(workspaceID: nil, from: nil, to: day2, groupBy: .workspace))
        #expect(all.totals.requests == 1201)

        await #expect(throws: KeywardenError.self) {
            try await store.usage.report(UsageQuery(workspaceID: "ws_missing", from: nil, to: nil, groupBy: .provider))
        }
    }
}
