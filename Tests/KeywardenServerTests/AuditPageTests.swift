import Foundation
import Testing

/// The audit log names people, keys and workspaces, shows what changed (a key only by fingerprint), filters by actor,
/// action and target, and walks the chain on request.
@Suite("Audit log: names, changes, filters, the chain")
struct AuditPageTests {
    @Test("an update shows field: before → after (the key as fingerprints), by name; filters narrow; the chain is verified")
    func namesChangesFiltersChain() async throws {
        try await APIHarness.run { harness, api in
            let admin = harness.adminToken
            let ws = try await api.createWorkspace("Audited Co")
            let key = try await api.createKey(ws, description: "First name", key: "sk-audit-canary-0000000001")
            let id = try #require(key["id"] as? String)
            let updated = try await api.patch("/api/v1/workspaces/\(ws)/keys/\(id)", token: admin,
                                              json: ["description": "Second name", "api_key": "sk-audit-canary-0000000002", "default_model": "gpt-5.4-mini"])
            #expect(updated.status == 200, "\(updated.text)")

            let reply = try await api.get("/api/v1/audit?target_type=credential&target_id=\(id)&action=credential.updated", token: admin)
            #expect(reply.status == 200)
            let entries = reply.json["items"] as? [[String: Any]] ?? []
            #expect(entries.count == 1)
            let entry = try #require(entries.first)
            #expect(entry["target_name"] as? String == "Second name (openai key)")
            #expect((entry["actor_name"] as? String)?.hasSuffix("(platform admin)") == true)
            let details = (entry["details"] as? String) ?? ""
            #expect(details.contains(#""before.description":"First name""#) && details.contains(#""after.description":"Second name""#))
            #expect(details.contains(#""before.api_key":"fingerprint "#) && details.contains(#""after.default_model":"gpt-5.4-mini""#))
            #expect(!reply.text.contains("canary"), "never the key itself")

            let browser = try await AdminPageTests.signIn(api, token: admin)
            let page = try await browser.get("/audit?target_type=credential&target_id=\(id)")
            #expect(page.status == 200)
            #expect(page.body.contains("<strong>description</strong>: First name → Second name"))
            #expect(page.body.contains("<strong>api_key</strong>: fingerprint "))
            #expect(page.body.contains("Second name (openai key)") && page.body.contains("in Audited Co") && page.body.contains("(platform admin)</a>"))
            #expect(!page.body.contains("canary"))
            #expect(page.body.contains("credential.created") && !page.body.contains("workspace.created"), "only this key's entries")
            let actor = try #require(entries.first?["actor"] as? String)
            let byActor = try await api.get("/api/v1/audit?actor=\(actor)&per_page=100", token: admin)
            #expect((byActor.json["items"] as? [[String: Any]] ?? []).allSatisfy { $0["actor"] as? String == actor })
            let none = try await browser.get("/audit?actor=token:tok_nobody")
            #expect(none.body.contains("No entries match these filters."))
            let verified = try await browser.get("/audit?verify=1")
            #expect(verified.body.contains("The chain is intact: all ") && verified.body.contains(#"id="chain-result""#))
            // A workspace's reader sees its own entries only, and cannot walk the platform's chain.
            let owner = try await api.addMember(ws, role: "owner")
            let own = try await AdminPageTests.signIn(api, token: owner)
            let ownPage = try await own.get("/audit?verify=1")
            #expect(ownPage.status == 200 && ownPage.body.contains("Second name") && !ownPage.body.contains("chain-result"))
            // Naming another workspace is answered as the API answers it: not found.
            #expect(try await own.get("/audit?workspace=ws_other").status == 404)
        }
    }
}
