import Foundation
import KeywardenCore
import KeywardenApp
import Testing
@testable import KeywardenServer

/// The usage page says who paid for the period: the platform (its keys and the managed default) or the workspace's own keys.
@Suite("Usage page")
struct UsagePageTests {
    @Test("credits by who paid: platform + managed against byok, exact to a thousandth, with their calls")
    func creditsByWhoPaid() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Paid")
            let now = Date()
            func row(_ source: KeySource?, _ milli: Int, status: Int = 200) -> UsageRecord {
                UsageRecord(at: now, workspaceID: ws, providerID: "openai", model: "gpt-5.4-mini", credentialID: nil, source: source, modality: .chat,
                            consumer: nil, status: status, latencyMilliseconds: 5, counts: UsageCounts(inputTokens: 10, outputTokens: 2),
                            milliCredits: milli, attempts: 1)
            }
            try await harness.store.usage.record([row(.platform, 1_250), row(.platform, 607), row(.managed, 2_000), row(.byok, 100), row(.byok, 0),
                                                  row(nil, 0, status: 422)])
            let admin = try await AdminPageTests.signIn(api, token: harness.adminToken)
            let page = try await admin.get("/workspaces/\(ws)/usage")
            #expect(page.status == 200)
            #expect(page.body.contains(#"<span class="n">3.857</span> Credits the platform paid (its keys and the managed default) · 3 calls"#), "\(page.body)")
            #expect(page.body.contains(#"<span class="n">0.1</span> Credits on the workspace&#39;s own keys · 2 calls"#)
                    || page.body.contains(#"<span class="n">0.1</span> Credits on the workspace&#x27;s own keys · 2 calls"#), "\(page.body)")
            #expect(page.body.contains(#"<span class="n">3.957</span> Credits"#) && page.body.contains(#"<span class="n">6</span> Calls"#))
        }
    }
}

/// One definition of a period's spending: what the ledger's rows of the period cost, for the budget's meter, its limit
/// and the usage page alike, whenever the limit was set.
@Suite("A period's spending")
struct PeriodSpendingTests {
    static func rows(_ ws: String, _ source: KeySource, credits: [Int], at: Date = Date()) -> [UsageRecord] {
        credits.map { milli in
            UsageRecord(at: at, workspaceID: ws, providerID: "openai", model: "gpt-5.4-mini", credentialID: nil, source: source, modality: .chat,
                        consumer: nil, status: 200, latencyMilliseconds: 5, counts: UsageCounts(inputTokens: 1, outputTokens: 1), milliCredits: milli, attempts: 1)
        }
    }

    @Test("a limit set after calls were made counts them: the meter, the page's totals and the next hold agree with the ledger")
    func limitSetLaterCountsThePeriodSoFar() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Later")
            // Three credits on its own keys and two on the platform's this month, none counted by a limit; one last month.
            let lastMonth = BudgetPeriod(containing: Date()).start.addingTimeInterval(-3600)
            try await harness.store.usage.record(Self.rows(ws, .byok, credits: [1_000, 1_000, 1_000]) + Self.rows(ws, .platform, credits: [1_500, 500])
                                                 + Self.rows(ws, .byok, credits: [7_000], at: lastMonth))
            let set = try await api.patch("/api/v1/workspaces/\(ws)/budget", token: harness.adminToken, json: ["byok_limit_credits": 5])
            #expect(set.status == 200 && set.object("byok")["spent_credits"] as? Double == 3, "\(set.text)")
            let admin = try await AdminPageTests.signIn(api, token: harness.adminToken)
            let page = try await admin.get("/workspaces/\(ws)/usage")
            #expect(page.body.contains("<strong>3</strong> of 5 credits"), "the meter")
            #expect(page.body.contains(#"<span class="n">3</span> Credits on the workspace"#) && page.body.contains("· 3 calls"), "the totals beside it")
            #expect(page.body.contains("This budget month, from "), "the span the totals cover is said")
            // The limit holds what was spent before it: 2 credits left, so a hold of 2 fits and a third does not.
            let first = try await harness.store.budgets.reserve(workspaceID: ws, scope: .byok, amount: 2_000, limit: 5_000)
            #expect(first != nil)
            #expect(try await harness.store.budgets.reserve(workspaceID: ws, scope: .byok, amount: 1, limit: 5_000) == nil)
            // A plan's limit, never set on the workspace: its first meter counts the period so far too.
            _ = try await api.put("/api/v1/platform/plans/metered", token: harness.adminToken, json: ["platform_limit_credits": 10])
            let onPlan = try #require(try await api.post("/api/v1/workspaces", token: harness.adminToken, json: ["name": "On plan", "plan": "metered"]).json["id"] as? String)
            try await harness.store.usage.record(Self.rows(onPlan, .platform, credits: [2_500]) + Self.rows(onPlan, .managed, credits: [500]))
            let budget = try await api.get("/api/v1/workspaces/\(onPlan)/budget", token: harness.adminToken)
            #expect(budget.object("platform")["spent_credits"] as? Double == 3, "\(budget.text)")
        }
    }
}
