import Foundation
import Hummingbird
import Testing

/// Two workspaces: every route of workspace A called with B's tokens answers 404 and changes nothing.
@Suite("Workspace isolation")
struct IsolationTests {
    @Test("B's tokens get 404 on every route of A, and A is unchanged afterwards")
    func foreignWorkspaceIsNotFound() async throws {
        try await APIHarness.run { harness, api in
            let a = try await api.createWorkspace("Alpha")
            let b = try await api.createWorkspace("Beta")
            let aOwner = try await api.addMember(a, role: "owner")
            let bOwner = try await api.addMember(b, role: "owner")
            let bService = try await api.serviceToken(b, permissions: ["keys.read", "keys.create", "keys.update", "keys.delete", "audit.read", "gateway.use"])
            let key = try await api.createKey(a, description: "Alpha main", key: "sk-alpha-secret-0000000001", extras: ["organization_id": "org-alpha"])
            let keyID = try #require(key["id"] as? String)
            let members = try await api.get("/api/v1/workspaces/\(a)/members", token: aOwner)
            let memberID = try #require(members.items.first?["id"] as? String)
            let tokens = try await api.get("/api/v1/workspaces/\(a)/tokens", token: aOwner)
            let tokenID = try #require(tokens.items.first?["id"] as? String)

            let before = try await snapshot(api, a, token: aOwner, keyID: keyID)
            let attempts: [(HTTPRequest.Method, String, Any?)] = [
                (.get, "/api/v1/workspaces/\(a)", nil),
                (.patch, "/api/v1/workspaces/\(a)", ["exclusive": true]),
                (.patch, "/api/v1/workspaces/\(a)", ["name": "Pwned"]),
                (.get, "/api/v1/workspaces/\(a)/members", nil),
                (.post, "/api/v1/workspaces/\(a)/members", ["name": "mole", "role": "owner"]),
                (.patch, "/api/v1/workspaces/\(a)/members/\(memberID)", ["role": "viewer"]),
                (.delete, "/api/v1/workspaces/\(a)/members/\(memberID)", nil),
                (.delete, "/api/v1/workspaces/\(a)", nil),
                (.get, "/api/v1/workspaces/\(a)/tokens", nil),
                (.post, "/api/v1/workspaces/\(a)/tokens", ["name": "mole", "permissions": ["gateway.use"]]),
                (.delete, "/api/v1/workspaces/\(a)/tokens/\(tokenID)", nil),
                (.get, "/api/v1/workspaces/\(a)/keys", nil),
                (.post, "/api/v1/workspaces/\(a)/keys", ["provider": "openai", "description": "mole", "api_key": "sk-mole-000000000000"]),
                (.get, "/api/v1/workspaces/\(a)/keys/\(keyID)", nil),
                (.patch, "/api/v1/workspaces/\(a)/keys/\(keyID)", ["description": "Pwned", "api_key": "sk-replaced-0000000000"]),
                (.delete, "/api/v1/workspaces/\(a)/keys/\(keyID)", nil),
                (.post, "/api/v1/workspaces/\(a)/keys/\(keyID)/activate", nil),
                (.post, "/api/v1/workspaces/\(a)/keys/\(keyID)/deactivate", nil),
                (.get, "/api/v1/audit?workspace=\(a)", nil),
                // A's key addressed through B's own workspace path is not found either.
                (.get, "/api/v1/workspaces/\(b)/keys/\(keyID)", nil),
                (.patch, "/api/v1/workspaces/\(b)/keys/\(keyID)", ["description": "Pwned"]),
                (.delete, "/api/v1/workspaces/\(b)/keys/\(keyID)", nil),
            ]
            for token in [bOwner, bService] {
                for (method, path, body) in attempts {
                    let reply = try await api.call(method, path, token: token, json: body)
                    #expect(reply.status == 404, "\(method) \(path): \(reply.status) \(reply.text)")
                    #expect(reply.errorCode == "not_found")
                    #expect(!reply.text.contains("Alpha main") && !reply.text.contains("sk-"), "\(path) leaked: \(reply.text)")
                }
            }
            let after = try await snapshot(api, a, token: aOwner, keyID: keyID)
            #expect(after == before)

            // B's own audit log shows none of A's entries.
            let bAudit = try await api.get("/api/v1/audit", token: bOwner)
            #expect(bAudit.status == 200)
            #expect(bAudit.items.allSatisfy { $0["workspace_id"] as? String == b })
            // A workspace listing shows only one's own workspace.
            let listed = try await api.get("/api/v1/workspaces", token: bOwner)
            #expect(listed.items.map { $0["id"] as? String } == [b])
            _ = harness
        }
    }

    func snapshot(_ api: API, _ ws: String, token: String, keyID: String) async throws -> String {
        let workspace = try await api.get("/api/v1/workspaces/\(ws)", token: token).text
        let keys = try await api.get("/api/v1/workspaces/\(ws)/keys", token: token).text
        let key = try await api.get("/api/v1/workspaces/\(ws)/keys/\(keyID)", token: token).text
        let members = try await api.get("/api/v1/workspaces/\(ws)/members", token: token).text
        // A token's last use moves when A's own owner calls (written off the request path): not a change B made.
        let tokens = try await api.get("/api/v1/workspaces/\(ws)/tokens", token: token).text
            .replacingOccurrences(of: #""last_used_at":"[^"]*","#, with: "", options: .regularExpression)
        return [workspace, keys, key, members, tokens].joined(separator: "\n")
    }
}
