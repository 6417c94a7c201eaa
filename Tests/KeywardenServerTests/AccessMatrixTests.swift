import Foundation
import Hummingbird
import Testing

/// The role × permission matrix, route by route: every cell asserts the status.
@Suite("Access matrix")
struct AccessMatrixTests {
    enum Who: String, CaseIterable {
        case platformAdmin, owner, admin, member, viewer, gatewayService, readerService
    }

    struct Route {
        let name: String
        let method: HTTPRequest.Method
        /// Builds the path (and a fresh target when the route consumes one).
        let path: @Sendable (API, String) async throws -> String
        let body: (@Sendable () -> Any)?
        let expected: [Who: Int]
    }

    static func statuses(_ allowed: Set<Who>, ok: Int = 200, denied: Int = 403) -> [Who: Int] {
        Dictionary(uniqueKeysWithValues: Who.allCases.map { ($0, allowed.contains($0) ? ok : denied) })
    }

    @Test("each role reaches exactly the routes its permissions allow")
    func matrix() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Acme")
            var tokens: [Who: String] = [.platformAdmin: harness.adminToken]
            for role in ["owner", "admin", "member", "viewer"] {
                tokens[Who(rawValue: role)!] = try await api.addMember(ws, role: role)
            }
            tokens[.gatewayService] = try await api.serviceToken(ws, permissions: ["gateway.use"])
            tokens[.readerService] = try await api.serviceToken(ws, permissions: ["keys.read", "audit.read"])

            let counter = Counter()
            let newKey: @Sendable (API, String) async throws -> String = { api, ws in
                let key = try await api.createKey(ws, description: "k\(counter.next())", key: "sk-matrix-\(UUID().uuidString)")
                return "/api/v1/workspaces/\(ws)/keys/\(key["id"] as! String)"
            }
            let newMember: @Sendable (API, String) async throws -> String = { api, ws in
                let reply = try await api.post("/api/v1/workspaces/\(ws)/members", token: api.harness.adminToken,
                                               json: ["name": "m\(counter.next())", "role": "member"])
                return "/api/v1/workspaces/\(ws)/members/\(reply.object("member")["id"] as? String ?? "?")"
            }
            let keyAdmins: Set<Who> = [.platformAdmin, .owner, .admin]
            let readers: Set<Who> = [.platformAdmin, .owner, .admin, .member, .viewer, .readerService]
            let routes: [Route] = [
                Route(name: "list keys", method: .get, path: { _, ws in "/api/v1/workspaces/\(ws)/keys" }, body: nil, expected: Self.statuses(readers)),
                Route(name: "read key", method: .get, path: newKey, body: nil, expected: Self.statuses(readers)),
                Route(name: "create key", method: .post, path: { _, ws in "/api/v1/workspaces/\(ws)/keys" },
                      body: { ["provider": "anthropic", "description": "new \(UUID().uuidString)", "api_key": "sk-ant-\(UUID().uuidString)"] },
                      expected: Self.statuses(keyAdmins, ok: 201)),
                Route(name: "update key", method: .patch, path: newKey, body: { ["description": "renamed"] }, expected: Self.statuses(keyAdmins)),
                Route(name: "delete key", method: .delete, path: newKey, body: nil, expected: Self.statuses(keyAdmins)),
                Route(name: "activate key", method: .post, path: { api, ws in try await newKey(api, ws) + "/activate" }, body: nil, expected: Self.statuses(keyAdmins)),
                Route(name: "deactivate key", method: .post, path: { api, ws in try await newKey(api, ws) + "/deactivate" }, body: nil, expected: Self.statuses(keyAdmins)),
                Route(name: "read workspace", method: .get, path: { _, ws in "/api/v1/workspaces/\(ws)" }, body: nil,
                      expected: Self.statuses(Set(Who.allCases))),
                Route(name: "switch exclusive mode", method: .patch, path: { _, ws in "/api/v1/workspaces/\(ws)" }, body: { ["exclusive": false] },
                      expected: Self.statuses(keyAdmins)),
                Route(name: "rename workspace", method: .patch, path: { _, ws in "/api/v1/workspaces/\(ws)" }, body: { ["name": "Acme"] },
                      expected: Self.statuses([.platformAdmin, .owner])),
                Route(name: "change plan", method: .patch, path: { _, ws in "/api/v1/workspaces/\(ws)" }, body: { ["byok_allowed": true] },
                      expected: Self.statuses([.platformAdmin])),
                Route(name: "list members", method: .get, path: { _, ws in "/api/v1/workspaces/\(ws)/members" }, body: nil,
                      expected: Self.statuses(Set(Who.allCases))),
                Route(name: "change member role", method: .patch, path: newMember, body: { ["role": "viewer"] },
                      expected: Self.statuses([.platformAdmin, .owner])),
                Route(name: "remove member", method: .delete, path: newMember, body: nil, expected: Self.statuses([.platformAdmin, .owner])),
                Route(name: "list workspaces", method: .get, path: { _, _ in "/api/v1/workspaces?search=Acme&page=1&per_page=5" }, body: nil,
                      expected: Self.statuses(Set(Who.allCases))),
                Route(name: "add member", method: .post, path: { _, ws in "/api/v1/workspaces/\(ws)/members" }, body: { ["name": "n", "role": "viewer"] },
                      expected: Self.statuses([.platformAdmin, .owner], ok: 201)),
                Route(name: "list tokens", method: .get, path: { _, ws in "/api/v1/workspaces/\(ws)/tokens" }, body: nil,
                      expected: Self.statuses([.platformAdmin, .owner])),
                // A permission the owner holds (gateway.use too: ownerGrantsOnlyHeldPermissions).
                Route(name: "create service token", method: .post, path: { _, ws in "/api/v1/workspaces/\(ws)/tokens" },
                      body: { ["name": "svc", "permissions": ["keys.read"]] }, expected: Self.statuses([.platformAdmin, .owner], ok: 201)),
                Route(name: "read audit", method: .get, path: { _, _ in "/api/v1/audit" }, body: nil,
                      expected: Self.statuses([.platformAdmin, .owner, .admin, .readerService])),
                Route(name: "platform cards", method: .get, path: { _, _ in "/api/v1/platform/providers" }, body: nil, expected: Self.statuses([.platformAdmin])),
                Route(name: "save platform card", method: .put, path: { _, _ in "/api/v1/platform/providers/mistral" }, body: { ["default_model": "mistral-small-latest"] },
                      expected: Self.statuses([.platformAdmin])),
                Route(name: "deactivate platform card", method: .post, path: { _, _ in "/api/v1/platform/providers/mistral/deactivate" }, body: nil,
                      expected: Self.statuses([.platformAdmin])),
                Route(name: "platform tokens", method: .get, path: { _, _ in "/api/v1/platform/tokens" }, body: nil, expected: Self.statuses([.platformAdmin])),
                Route(name: "create workspace", method: .post, path: { _, _ in "/api/v1/workspaces" }, body: { ["name": "another"] },
                      expected: Self.statuses([.platformAdmin], ok: 201)),
                Route(name: "who am I", method: .get, path: { _, _ in "/api/v1/me" }, body: nil, expected: Self.statuses(Set(Who.allCases))),
            ]

            var failures: [String] = []
            for route in routes {
                for who in Who.allCases {
                    let path = try await route.path(api, ws)
                    let reply = try await api.call(route.method, path, token: tokens[who], json: route.body?())
                    let expected = route.expected[who] ?? -1
                    if reply.status != expected {
                        failures.append("\(route.name) as \(who): expected \(expected), got \(reply.status) \(reply.text)")
                    }
                    if reply.status == 403 { #expect(reply.errorCode == "forbidden") }
                }
            }
            #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        }
    }

    @Test("a missing, malformed, unknown or revoked token gets 401 with the error shape")
    func unauthenticated() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Acme")
            let path = "/api/v1/workspaces/\(ws)/keys"
            let missing = try await api.get(path, token: nil)
            #expect(missing.status == 401 && missing.errorCode == "unauthorized")
            #expect(missing.headers["www-authenticate"]?.contains("Bearer") == true)
            #expect(try await api.get(path, token: "not-a-token").status == 401)
            let unknown = try await api.get(path, token: "kw_" + String(repeating: "A", count: 43))
            #expect(unknown.status == 401 && unknown.errorCode == "invalid_token")

            let service = try await api.serviceToken(ws, permissions: ["keys.read"])
            #expect(try await api.get(path, token: service).status == 200)
            let tokens = try await api.get("/api/v1/workspaces/\(ws)/tokens", token: harness.adminToken)
            let id = try #require(tokens.items.first { $0["kind"] as? String == "service" }?["id"] as? String)
            #expect(try await api.delete("/api/v1/workspaces/\(ws)/tokens/\(id)", token: harness.adminToken).status == 200)
            #expect(try await api.get(path, token: service).status == 401)
            // A member's token goes with the member: the tokens route does not revoke it (that would bypass the last-owner rule).
            _ = try await api.addMember(ws, role: "owner")
            let owners = try await api.get("/api/v1/workspaces/\(ws)/tokens", token: harness.adminToken)
            let memberToken = try #require(owners.items.first { $0["kind"] as? String == "member" }?["id"] as? String)
            let refused = try await api.delete("/api/v1/workspaces/\(ws)/tokens/\(memberToken)", token: harness.adminToken)
            #expect(refused.status == 409 && refused.errorCode == "member_token")
        }
    }

    @Test("removing a member revokes their token at once")
    func removedMemberLosesAccess() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Acme")
            let token = try await api.addMember(ws, role: "admin", name: "Ann")
            let members = try await api.get("/api/v1/workspaces/\(ws)/members", token: harness.adminToken)
            #expect(members.text.contains("Ann") && !members.text.contains("kw_"))
            let id = try #require(members.items.first?["id"] as? String)
            #expect(try await api.delete("/api/v1/workspaces/\(ws)/members/\(id)", token: harness.adminToken).status == 200)
            #expect(try await api.get("/api/v1/workspaces/\(ws)", token: token).status == 401)
        }
    }

    @Test("only a platform admin can grant keys.reveal, and no one can give a service token members.manage")
    func servicePermissionLimits() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Acme")
            let owner = try await api.addMember(ws, role: "owner")
            let byOwner = try await api.post("/api/v1/workspaces/\(ws)/tokens", token: owner, json: ["name": "x", "permissions": ["keys.reveal"]])
            #expect(byOwner.status == 403)
            let byAdmin = try await api.post("/api/v1/workspaces/\(ws)/tokens", token: harness.adminToken, json: ["name": "x", "permissions": ["keys.reveal", "gateway.use"]])
            #expect(byAdmin.status == 201)
            let manage = try await api.post("/api/v1/workspaces/\(ws)/tokens", token: harness.adminToken, json: ["name": "x", "permissions": ["members.manage"]])
            #expect(manage.status == 400 && manage.errorField == "permissions")
            let unknown = try await api.post("/api/v1/workspaces/\(ws)/tokens", token: harness.adminToken, json: ["name": "x", "permissions": ["keys.everything"]])
            #expect(unknown.status == 400)
        }
    }

    @Test("an owner mints service tokens for its workspace: what the owner holds, and gateway.use (the platform allows it by default); never keys.reveal")
    func ownerGrantsOnlyHeldPermissions() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Acme")
            let owner = try await api.addMember(ws, role: "owner")
            let gateway = try await api.post("/api/v1/workspaces/\(ws)/tokens", token: owner, json: ["name": "x", "permissions": ["gateway.use"]])
            #expect(gateway.status == 201, "\(gateway.text)")
            let mixed = try await api.post("/api/v1/workspaces/\(ws)/tokens", token: owner, json: ["name": "x", "permissions": ["keys.read", "gateway.use"]])
            #expect(mixed.status == 201)
            let reveal = try await api.post("/api/v1/workspaces/\(ws)/tokens", token: owner, json: ["name": "x", "permissions": ["keys.reveal"]])
            #expect(reveal.status == 403)
            let held = try await api.post("/api/v1/workspaces/\(ws)/tokens", token: owner, json: ["name": "x", "permissions": ["keys.read", "usage.read"]])
            #expect(held.status == 201)
            let listed = try await api.get("/api/v1/workspaces/\(ws)/tokens", token: harness.adminToken)
            #expect(listed.items.filter { $0["kind"] as? String == "service" }.count == 3, "the refused token was not made")
        }
    }

    @Test("only a platform admin deletes a workspace: its own members and tokens get 403, another workspace's owner 404")
    func deleteWorkspaceAccess() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Acme")
            let other = try await api.createWorkspace("Other")
            let foreignOwner = try await api.addMember(other, role: "owner")
            var own: [String] = []
            for role in ["owner", "admin", "member", "viewer"] { own.append(try await api.addMember(ws, role: role)) }
            own.append(try await api.serviceToken(ws, permissions: ["keys.read", "keys.delete", "gateway.use"]))
            let platformService = try await api.serviceToken(nil, permissions: ["usage.read", "audit.read"])
            for token in own + [platformService] {
                let reply = try await api.delete("/api/v1/workspaces/\(ws)", token: token)
                #expect(reply.status == 403 && reply.errorCode == "forbidden", "\(reply.text)")
            }
            let foreign = try await api.delete("/api/v1/workspaces/\(ws)", token: foreignOwner)
            #expect(foreign.status == 404 && foreign.errorCode == "not_found")
            let members = try await api.get("/api/v1/workspaces/\(ws)/members", token: harness.adminToken)
            let memberID = try #require(members.items.first?["id"] as? String)
            let patched = try await api.patch("/api/v1/workspaces/\(ws)/members/\(memberID)", token: foreignOwner, json: ["role": "viewer"])
            #expect(patched.status == 404 && patched.errorCode == "not_found")
            #expect(try await api.get("/api/v1/workspaces/\(ws)", token: harness.adminToken).status == 200, "nothing was deleted")

            let deleted = try await api.delete("/api/v1/workspaces/\(ws)", token: harness.adminToken)
            #expect(deleted.status == 200)
            #expect(try await api.get("/api/v1/workspaces/\(ws)", token: harness.adminToken).status == 404)
            #expect(try await api.get("/api/v1/workspaces/\(other)", token: foreignOwner).status == 200, "the other workspace is untouched")
        }
    }
}

/// A counter shared by test closures.
final class Counter: Sendable {
    private let value = Mutex(0)
    func next() -> Int { value.withLock { $0 += 1; return $0 } }
}

import Synchronization

@Suite("Protocol edges")
struct ProtocolEdgeTests {
    @Test("a known path with another method answers 405 with Allow; an unknown path 404")
    func methodNotAllowed() async throws {
        try await APIHarness.run { harness, api in
            let reply = try await api.call(.delete, "/api/v1/platform/providers", token: harness.adminToken)
            #expect(reply.status == 405 && reply.errorCode == "method_not_allowed")
            #expect(reply.headers["allow"] == "GET")
            let keys = try await api.call(.put, "/api/v1/workspaces/ws_x/keys/key_y", token: harness.adminToken)
            #expect(keys.status == 405 && keys.headers["allow"] == "DELETE, GET, PATCH")
            #expect(try await api.get("/api/v1/nothing/here", token: harness.adminToken).status == 404)
        }
    }

    @Test("null for a field that cannot be cleared is refused; null clears one that can")
    func nulls() async throws {
        try await APIHarness.run { harness, api in
            let refused = try await api.post("/api/v1/workspaces", token: harness.adminToken, json: ["name": "A", "exclusive": NSNull()])
            #expect(refused.status == 400 && refused.errorField == "exclusive")
            let ws = try await api.createWorkspace("A")
            #expect(try await api.patch("/api/v1/workspaces/\(ws)", token: harness.adminToken, json: ["notification_email": "ops@example.com"]).json["notification_email"] as? String == "ops@example.com")
            let cleared = try await api.patch("/api/v1/workspaces/\(ws)", token: harness.adminToken, json: ["notification_email": NSNull()])
            #expect(cleared.status == 200 && cleared.json["notification_email"] == nil)
            let bad = try await api.patch("/api/v1/workspaces/\(ws)", token: harness.adminToken, json: ["notification_email": "not an address"])
            #expect(bad.status == 400 && bad.errorField == "notification_email")
        }
    }

    @Test("the last platform-admin token cannot be revoked; with a second one it can")
    func lastAdminTokenKept() async throws {
        try await APIHarness.run { harness, api in
            let me = try await api.get("/api/v1/me", token: harness.adminToken)
            let id = try #require(me.json["token_id"] as? String)
            let refused = try await api.delete("/api/v1/platform/tokens/\(id)", token: harness.adminToken)
            #expect(refused.status == 409 && refused.errorCode == "last_admin_token")
            #expect(try await api.get("/api/v1/me", token: harness.adminToken).status == 200)
            try await harness.store.engine.transaction { db in
                _ = try await harness.store.tokens.issue(name: "second admin", kind: .platformAdmin, actor: "test", on: db)
            }
            #expect(try await api.delete("/api/v1/platform/tokens/\(id)", token: harness.adminToken).status == 200)
            #expect(try await api.get("/api/v1/me", token: harness.adminToken).status == 401)
        }
    }
}
