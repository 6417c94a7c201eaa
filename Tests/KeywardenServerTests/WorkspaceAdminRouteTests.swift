import Foundation
import Hummingbird
import KeywardenApp
import KeywardenCore
import Testing

/// The workspace routes the platform operator and the owners use: the searched, paged list with its counts, deletion,
/// and role changes with their guard rails, as a client sees them.
@Suite("Workspace administration routes")
struct WorkspaceAdminRouteTests {
    @Test("a platform admin's list is searched (literally), paged and counted; a member sees only their own workspace, without counts")
    func list() async throws {
        try await APIHarness.run { harness, api in
            let acme = try await api.createWorkspace("Acme 100%")
            _ = try await api.createWorkspace("Acme 1000")
            _ = try await api.createWorkspace("Beta")
            _ = try await api.createKey(acme, description: "main", key: "sk-listed-abcdefghijkl")
            try await harness.store.usage.record([UsageRecord(
                at: Date(), workspaceID: acme, providerID: "openai", model: "gpt-4.1", credentialID: nil, source: .byok, modality: .chat,
                consumer: nil, status: 200, latencyMilliseconds: 3, counts: UsageCounts(inputTokens: 1, outputTokens: 1), milliCredits: 1, attempts: 1
            )])

            let all = try await api.get("/api/v1/workspaces", token: harness.adminToken)
            #expect(all.status == 200 && all.json["total"] as? Int == 3 && all.json["page"] as? Int == 1 && all.json["per_page"] as? Int == 20)
            #expect(all.items.map { $0["name"] as? String } == ["Acme 100%", "Acme 1000", "Beta"])
            let first = try #require(all.items.first)
            #expect(first["keys"] as? Int == 1 && first["calls_this_month"] as? Int == 1 && first["byok_allowed"] as? Bool == true)
            #expect(all.items.last?["keys"] as? Int == 0 && all.items.last?["calls_this_month"] as? Int == 0)

            let literal = try await api.get("/api/v1/workspaces?search=100%25", token: harness.adminToken)
            #expect(literal.items.map { $0["id"] as? String } == [acme] && literal.json["total"] as? Int == 1, "% matches itself")
            let paged = try await api.get("/api/v1/workspaces?search=acme&page=2&per_page=1", token: harness.adminToken)
            #expect(paged.json["total"] as? Int == 2 && paged.items.map { $0["name"] as? String } == ["Acme 1000"])

            let member = try await api.addMember(acme, role: "viewer")
            let own = try await api.get("/api/v1/workspaces", token: member)
            #expect(own.status == 200 && own.json["total"] as? Int == 1 && own.items.map { $0["id"] as? String } == [acme])
            #expect(own.items.first?["keys"] == nil && own.items.first?["calls_this_month"] == nil, "the counts are the platform's")
            #expect(try await api.get("/api/v1/workspaces?search=beta", token: member).items.isEmpty)

            let badPage = try await api.get("/api/v1/workspaces?per_page=101", token: harness.adminToken)
            #expect(badPage.status == 400 && badPage.errorCode == "invalid_pagination" && badPage.errorField == "per_page")
            let long = try await api.get("/api/v1/workspaces?search=" + String(repeating: "a", count: 201), token: harness.adminToken)
            #expect(long.status == 400 && long.errorField == "search")
        }
    }

    @Test("deleting a workspace answers what went, and its tokens stop working at once")
    func delete() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Doomed")
            _ = try await api.createKey(ws, description: "main", key: "sk-doomed-abcdefghijkl")
            let owner = try await api.addMember(ws, role: "owner")
            let service = try await api.serviceToken(ws, permissions: ["gateway.use"])
            #expect(try await api.get("/api/v1/workspaces/\(ws)", token: owner).status == 200)

            let reply = try await api.delete("/api/v1/workspaces/\(ws)", token: harness.adminToken)
            #expect(reply.status == 200)
            let deleted = reply.object("deleted")
            #expect(deleted["keys"] as? Int == 1 && deleted["members"] as? Int == 1 && deleted["tokens"] as? Int == 2, "\(reply.text)")
            #expect((reply.json["message"] as? String)?.contains("usage history is kept") == true)
            #expect(try await api.get("/api/v1/workspaces/\(ws)", token: owner).status == 401)
            #expect(try await api.get("/api/v1/workspaces/\(ws)/keys", token: service).status == 401)
            #expect(try await api.delete("/api/v1/workspaces/\(ws)", token: harness.adminToken).status == 404)
            #expect(try await api.get("/api/v1/workspaces", token: harness.adminToken).json["total"] as? Int == 0)
        }
    }

    @Test("PATCH a member's role: the new role at once; bad input is a 400 naming role; the last owner is kept (409)")
    func changeRole() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Roles")
            let owner = try await api.addMember(ws, role: "owner", name: "Olive")
            let viewer = try await api.addMember(ws, role: "viewer", name: "Vic")
            let members = try await api.get("/api/v1/workspaces/\(ws)/members", token: owner)
            let ownerID = try #require(members.items.first { $0["name"] as? String == "Olive" }?["id"] as? String)
            let viewerID = try #require(members.items.first { $0["name"] as? String == "Vic" }?["id"] as? String)
            let path = "/api/v1/workspaces/\(ws)/members/\(viewerID)"
            #expect(try await api.post("/api/v1/workspaces/\(ws)/keys", token: viewer, json: ["provider": "openai", "description": "x"]).status == 403)

            let changed = try await api.patch(path, token: owner, json: ["role": "admin"])
            #expect(changed.status == 200 && changed.json["role"] as? String == "admin" && changed.json["id"] as? String == viewerID)
            #expect(changed.json["name"] as? String == "Vic" && changed.json["created_at"] is String)
            let created = try await api.post("/api/v1/workspaces/\(ws)/keys", token: viewer,
                                             json: ["provider": "openai", "description": "now allowed", "api_key": "sk-promoted-abcdefghijkl"])
            #expect(created.status == 201, "the token carries the new role on its next call")

            let unknown = try await api.patch(path, token: owner, json: ["role": "superuser"])
            #expect(unknown.status == 400 && unknown.errorField == "role" && unknown.errorCode == "invalid_field")
            let missing = try await api.patch(path, token: owner, json: [:] as [String: String])
            #expect(missing.status == 400 && missing.errorField == "role" && missing.errorCode == "missing_field")
            let extra = try await api.patch(path, token: owner, json: ["role": "viewer", "name": "Renamed"])
            #expect(extra.status == 400 && extra.errorCode == "unknown_field" && extra.errorField == "name")
            let wrongType = try await api.patch(path, token: owner, json: ["role": 3])
            #expect(wrongType.status == 400 && wrongType.errorField == "role")
            #expect(try await api.patch("/api/v1/workspaces/\(ws)/members/mem_missing", token: owner, json: ["role": "viewer"]).status == 404)

            let lastOwner = try await api.patch("/api/v1/workspaces/\(ws)/members/\(ownerID)", token: owner, json: ["role": "admin"])
            #expect(lastOwner.status == 409 && lastOwner.errorCode == "last_owner")
            let removeLast = try await api.delete("/api/v1/workspaces/\(ws)/members/\(ownerID)", token: harness.adminToken)
            #expect(removeLast.status == 409 && removeLast.errorCode == "last_owner")
            // With a second owner, the first may step down.
            #expect(try await api.patch(path, token: owner, json: ["role": "owner"]).status == 200)
            #expect(try await api.patch("/api/v1/workspaces/\(ws)/members/\(ownerID)", token: owner, json: ["role": "viewer"]).status == 200)
            #expect(try await api.get("/api/v1/workspaces/\(ws)/tokens", token: owner).status == 403, "the demoted owner lost members.manage at once")
        }
    }
}
