import Foundation
import Testing

/// The key chain page: every key a call may try per provider, in order, with why one is passed over and which serves.
@Suite("Key chain page")
struct ChainPageTests {
    @Test("own primary, fallbacks, the platform's key in order; off and resting keys say why; the platform key unnamed to a member")
    func chainInOrderWithReasons() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Chained")
            let primary = try #require(try await api.createKey(ws, description: "Main OpenAI", key: "sk-chain-main-00000001")["id"] as? String)
            _ = try await api.createKey(ws, description: "Backup OpenAI", key: "sk-chain-back-00000001", role: "fallback")
            _ = try await api.createKey(ws, description: "Spare OpenAI", key: "sk-chain-spare-0000001", role: "fallback", active: false)
            #expect(try await api.put("/api/v1/platform/providers/openai", token: harness.adminToken, json: ["api_key": "sk-platform-chain-0001"]).status == 200)
            #expect(try await api.post("/api/v1/platform/providers/openai/activate", token: harness.adminToken).status == 200)
            api.services.gateway.cooldowns.rest(primary, for: .seconds(90), rateLimited: true)

            let admin = try await AdminPageTests.signIn(api, token: harness.adminToken)
            let page = try await admin.get("/workspaces/\(ws)/chain")
            #expect(page.status == 200)
            let start = try #require(page.body.range(of: #"id="chain-openai""#))
            let section = String(page.body[start.lowerBound...])
            let table = String(section[try #require(section.range(of: "<tbody>")).lowerBound...])
            let order = ["Main OpenAI", "Backup OpenAI", "Spare OpenAI", "sk-platform"].compactMap { table.range(of: $0)?.lowerBound }
            #expect(order.count == 3 && order == order.sorted(), "the chain's order")
            #expect(table.contains(#"<td data-label="Paid by">Platform</td>"#), "the platform's key, after the workspace's own")
            // 90 s less the time the page took on a loaded machine.
            #expect(section.range(of: #"resting [1-9][0-9]? s more: the vendor(&#39;|&#x27;)s rate limit"#, options: .regularExpression) != nil, "the primary rests")
            #expect(section.contains("turned off"), "the spare is off")
            #expect(section.contains("A call now goes to its own key “Backup OpenAI”"), "the backup serves while the primary rests")
            #expect(section.contains("<strong>tried 1</strong>"))

            let member = try await api.addMember(ws, role: "member")
            let memberPage = try await AdminPageTests.signIn(api, token: member).get("/workspaces/\(ws)/chain")
            #expect(memberPage.status == 200 && memberPage.body.contains("Platform key") && memberPage.body.contains("Backup OpenAI"))
            let other = try await api.createWorkspace("Elsewhere")
            #expect(try await AdminPageTests.signIn(api, token: member).get("/workspaces/\(other)/chain").status == 404)
        }
    }
}
