import Foundation
import KeywardenCore
import KeywardenTestSupport
import Testing

@Suite("Secrets never leave the vault through the API")
struct CanaryTests {
    let canaryKey = "sk-canary-API-4b7e19d02c6fa583"
    let canaryExtra = "org-canary-API-8d3f"

    @Test("a canary key posted through the API appears in no response body, header, log line or audit entry")
    func canaryAppearsNowhere() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Acme")
            let owner = try await api.addMember(ws, role: "owner")
            // Through every path that takes a key: platform card, workspace key create and update.
            #expect(try await api.put("/api/v1/platform/providers/openai", token: harness.adminToken,
                                      json: ["api_key": canaryKey, "extras": ["organization_id": canaryExtra]]).status == 200)
            let key = try await api.createKey(ws, provider: "anthropic", description: "canary", key: canaryKey + "-ws", token: owner)
            let id = try #require(key["id"] as? String)
            #expect(try await api.patch("/api/v1/workspaces/\(ws)/keys/\(id)", token: owner, json: ["api_key": canaryKey + "-v2"]).status == 200)
            // Failing requests that carry the key must not echo it either.
            _ = try await api.post("/api/v1/workspaces/\(ws)/keys", token: owner, json: ["provider": "nope", "description": "x", "api_key": canaryKey])
            _ = try await api.post("/api/v1/workspaces/\(ws)/keys", token: owner, json: ["provider": "openai", "description": 1, "api_key": canaryKey])
            _ = try await api.put("/api/v1/platform/providers/openai", token: harness.adminToken, json: ["api_key": [canaryKey]])
            _ = try await api.post("/api/v1/workspaces/\(ws)/keys", token: owner, json: ["provider": "anthropic", "description": "dup", "api_key": canaryKey + "-v2"])

            // Read everything back.
            _ = try await api.get("/api/v1/platform/providers", token: harness.adminToken)
            _ = try await api.get("/api/v1/workspaces/\(ws)/keys", token: owner)
            _ = try await api.get("/api/v1/workspaces/\(ws)/keys/\(id)", token: owner)
            let audit = try await api.get("/api/v1/audit?per_page=100", token: harness.adminToken)
            #expect(audit.items.count > 5)

            let transcript = harness.transcript
            #expect(transcript.contains("sk-…") && transcript.contains("credential.updated"))
            for needle in [canaryKey, canaryExtra, String(canaryKey.dropFirst(10).prefix(10))] {
                #expect(!transcript.contains(needle), "a response contained \(needle)")
                #expect(!harness.fixture.logs.text.contains(needle), "a log line contained \(needle)")
                #expect(!contains(try harness.fixture.databaseBytes(), needle), "the database contained \(needle)")
            }
            #expect(!harness.fixture.logs.text.isEmpty)
        }
    }
}
