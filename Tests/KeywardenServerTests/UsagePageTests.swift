import Foundation
import KeywardenCore
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
