import Foundation
import KeywardenCore
import KeywardenTestSupport
import SQLKit
import Testing
@testable import KeywardenApp
import KeywardenStore

/// Workspaces, members and tokens as the platform operator and the workspace owners manage them: the searched and
/// counted list, deletion, role changes and their guard rails; on SQLite and (with `KEYWARDEN_TEST_ENGINE=postgres`)
/// on PostgreSQL.
@Suite("Workspace administration")
struct WorkspaceAdministrationTests {
    /// Runs `body` with a fresh store, then closes and removes it.
    func withApp(_ body: (AppServices) async throws -> Void) async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        do {
            try await body(app)
        } catch {
            await app.close()
            throw error
        }
        await app.close()
    }

    func workspace(_ app: AppServices, _ name: String) async throws -> String {
        try await app.workspaceService.create(name: name, byokAllowed: true, exclusive: false, actor: "test").id
    }

    func usage(_ workspaceID: String?, at: Date) -> UsageRecord {
        UsageRecord(at: at, workspaceID: workspaceID, providerID: "openai", model: "gpt-4.1", credentialID: nil, source: .byok,
                    modality: .chat, consumer: nil, status: 200, latencyMilliseconds: 5, counts: UsageCounts(inputTokens: 1, outputTokens: 1),
                    milliCredits: 1, attempts: 1)
    }

    func count(_ app: AppServices, _ table: String, _ column: String, in values: [String]) async throws -> Int {
        guard !values.isEmpty else { return 0 }
        return try await app.engine.read { db in
            let row = try await db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n").from(table).where(column, .in, values).first()
            return try row?.decode(column: "n", as: Int.self) ?? 0
        }
    }

    func auditDetails(_ app: AppServices, action: String, workspaceID: String) async throws -> [[String: String]] {
        let entries = try await app.engine.read { db in try await app.store.audit.list(workspaceID: workspaceID, limit: 1000, offset: 0, on: db) }
        return entries.filter { $0.action == action }.map { entry in
            (try? JSONDecoder().decode([String: String].self, from: Data(entry.details.utf8))) ?? [:]
        }
    }

    func expectError(_ code: String, _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async {
        do {
            try await body()
            Issue.record("expected \(code), nothing was thrown", sourceLocation: sourceLocation)
        } catch let error as KeywardenError {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
        }
    }

    // MARK: The list

    @Test("the list searches names case-insensitively with % _ and \\ taken literally, orders by name then id, and pages")
    func searchAndPages() async throws {
        try await withApp { app in
            for name in ["Team Delta", "team charlie", "TEAM Bravo", "Acme 100%", "Acme 1000", "Acme_1", "AcmeX1", "back\\slash", "backslash", "Same", "Same"] {
                _ = try await workspace(app, name)
            }
            let service = app.workspaceService
            let all = try Pagination(page: 1, perPage: 100)
            func names(_ search: String?) async throws -> [String] {
                try await service.page(search: search, pagination: all).items.map(\.workspace.name).sorted()
            }
            #expect(try await names("ACME") == ["Acme 100%", "Acme 1000", "Acme_1", "AcmeX1"].sorted(), "case-insensitive")
            #expect(try await names("100%") == ["Acme 100%"], "% is no wildcard")
            #expect(try await names("e_1") == ["Acme_1"], "_ is no wildcard")
            #expect(try await names("\\") == ["back\\slash"], "a backslash is itself")
            #expect(try await names("%") == ["Acme 100%"])
            #expect(try await names("'; DROP TABLE workspaces; --").isEmpty)
            #expect(try await service.page(search: "  ", pagination: all).total == 11, "a blank search matches all")
            #expect(try await service.page(search: nil, pagination: all).total == 11)

            // Name (case-insensitive), then id for equal names.
            let teams = try await service.page(search: "team", pagination: all).items.map(\.workspace.name)
            #expect(teams == ["TEAM Bravo", "team charlie", "Team Delta"])
            let same = try await service.page(search: "same", pagination: all).items.map(\.workspace.id)
            #expect(same.count == 2 && same == same.sorted())

            // Pages of two over the three teams.
            var seen: [String] = []
            for number in 1...3 {
                let page = try await service.page(search: " Team ", pagination: try Pagination(page: number, perPage: 2))
                #expect(page.total == 3)
                #expect(page.items.count == [2, 1, 0][number - 1])
                seen += page.items.map(\.workspace.name)
            }
            #expect(seen == teams)
        }
    }

    @Test("the list counts each workspace's keys and its calls since the first of the month, UTC")
    func counts() async throws {
        try await withApp { app in
            let a = try await workspace(app, "Counted A")
            let b = try await workspace(app, "Counted B")
            for index in 0..<2 {
                _ = try await app.keys.create(workspaceID: a, NewKeyRequest(
                    providerID: "openai", description: "k\(index)", apiKey: Secret("sk-counted-\(index)-abcdefghijkl")
                ), actor: "test")
            }
            let now = Date()
            let lastMonth = WorkspaceService.startOfMonth(now).addingTimeInterval(-1)
            try await app.usage.record([
                usage(a, at: now), usage(a, at: now), usage(a, at: now), usage(a, at: lastMonth), usage(b, at: now), usage(nil, at: now),
            ])
            let items = try await app.workspaceService.page(search: "Counted", pagination: try Pagination(page: 1, perPage: 10)).items
            let byName = Dictionary(uniqueKeysWithValues: items.map { ($0.workspace.name, $0) })
            #expect(byName["Counted A"]?.keys == 2 && byName["Counted A"]?.callsThisMonth == 3)
            #expect(byName["Counted B"]?.keys == 0 && byName["Counted B"]?.callsThisMonth == 1)
        }
    }

    @Test("the month starts on its first day at midnight UTC")
    func monthStart() {
        let date = Timestamp.date("2026-11-22T14:57:05.123Z") ?? Date()
        #expect(Timestamp.string(WorkspaceService.startOfMonth(date)) == "2026-11-01T00:00:00.000Z")
        let first = Timestamp.date("2027-01-01T00:00:00.000Z") ?? Date()
        #expect(Timestamp.string(WorkspaceService.startOfMonth(first)) == "2027-01-01T00:00:00.000Z")
    }

    // MARK: Deletion

    @Test("deleting a workspace removes its keys, secrets, bindings, webhooks, members and tokens, keeps its usage, and its tokens stop working")
    func deletion() async throws {
        try await withApp { app in
            let ws = try await workspace(app, "Doomed")
            let other = try await workspace(app, "Kept")
            let key = try await app.keys.create(workspaceID: ws, NewKeyRequest(
                providerID: "openai", description: "main", apiKey: Secret("sk-doomed-abcdefghijkl"), active: true
            ), actor: "test").credential.id
            let otherKey = try await app.keys.create(workspaceID: other, NewKeyRequest(
                providerID: "openai", description: "main", apiKey: Secret("sk-kept-abcdefghijklmn"), active: true
            ), actor: "test").credential.id
            _ = try await app.resolution.bind(workspaceID: ws, consumer: "assistant", modality: .chat, keyID: key, actor: "test")
            let (hook, _) = try await app.notifications.createWebhook(workspaceID: ws, url: "https://hooks.example.com/kw", description: "h", events: [], actor: "test")
            let (_, ownerToken) = try await app.workspaceService.addMember(workspaceID: ws, name: "Olive", role: .owner, actor: "test", actingRole: nil)
            let (_, leftToken) = try await app.workspaceService.addMember(workspaceID: ws, name: "Lee", role: .viewer, actor: "test", actingRole: nil)
            let left = try #require(try await app.workspaceService.listMembers(workspaceID: ws).first { $0.name == "Lee" })
            try await app.workspaceService.removeMember(workspaceID: ws, memberID: left.id, actor: "test", actingRole: nil)
            let (_, serviceToken) = try await app.workspaceService.createServiceToken(
                workspaceID: ws, name: "backend", permissions: [.gatewayUse], mayGrantReveal: false, actor: "test"
            )
            let (_, otherToken) = try await app.workspaceService.createServiceToken(
                workspaceID: other, name: "backend", permissions: [.gatewayUse], mayGrantReveal: false, actor: "test"
            )
            try await app.usage.record([usage(ws, at: Date()), usage(ws, at: Date())])
            let tokenIDs = try await app.workspaceService.listTokens(workspaceID: ws).map(\.id)
            #expect(try await app.authenticate(presented: ownerToken.value) != nil)
            #expect(try await app.authenticate(presented: serviceToken.value) != nil)
            #expect(try await app.authenticate(presented: leftToken.value) == nil)
            #expect(try await app.resolution.resolve(ResolutionQuery(workspaceID: ws, providerID: "openai")).get().contains { $0.credentialID == key })
            let sessions = try #require(try await app.sessions.signIn(presented: ownerToken.value))

            let deletion = try await app.workspaceService.delete(ws, actor: "admin")
            #expect(deletion == WorkspaceDeletion(keys: 1, members: 1, tokens: 2), "live members and tokens are counted")

            await expectError("not_found") { _ = try await app.workspaceService.get(ws) }
            #expect(try await app.workspaceService.list().map(\.id) == [other])
            #expect(try await app.authenticate(presented: ownerToken.value) == nil, "a member's token stops at once")
            #expect(try await app.authenticate(presented: serviceToken.value) == nil, "a service token stops at once")
            #expect(try await app.sessions.session(cookie: sessions.cookie) == nil, "its admin UI sessions end")
            let resolved = try await app.resolution.resolve(ResolutionQuery(workspaceID: ws, providerID: "openai"))
            #expect((try? resolved.get())?.contains { $0.credentialID == key } != true, "the key is no longer a candidate")

            #expect(try await count(app, "credentials", "workspace_id", in: [ws]) == 0)
            #expect(try await count(app, "vault_secrets", "owner_id", in: [key, hook.id]) == 0, "the key's and the webhook's sealed secrets go")
            #expect(try await count(app, "bindings", "workspace_id", in: [ws]) == 0)
            #expect(try await count(app, "webhooks", "workspace_id", in: [ws]) == 0)
            #expect(try await count(app, "members", "workspace_id", in: [ws]) == 0)
            #expect(try await count(app, "tokens", "id", in: tokenIDs) == 0)
            #expect(try await count(app, "usage", "workspace_id", in: [ws]) == 2, "usage rows are the billing history: kept")

            // The other workspace is untouched.
            #expect(try await count(app, "vault_secrets", "owner_id", in: [otherKey]) >= 1)
            #expect(try await app.authenticate(presented: otherToken.value) != nil)
            #expect(try await app.resolution.resolve(ResolutionQuery(workspaceID: other, providerID: "openai")).get().first?.credentialID == otherKey)

            let audited = try await auditDetails(app, action: "workspace.deleted", workspaceID: ws)
            #expect(audited.count == 1)
            #expect(audited.first?["keys"] == "1" && audited.first?["members"] == "1" && audited.first?["tokens"] == "2")
            #expect(audited.first?["webhooks"] == "1" && audited.first?["bindings"] == "1" && audited.first?["name"] == "Doomed")
            #expect(try await auditDetails(app, action: "credential.deleted", workspaceID: ws).count == 1, "each key's deletion is audited")
            let chain = try await app.store.audit.verify(app.engine)
            #expect(chain.isIntact)

            await expectError("not_found") { _ = try await app.workspaceService.delete(ws, actor: "admin") }
            await expectError("not_found") { _ = try await app.workspaceService.delete("ws_missing", actor: "admin") }
        }
    }

    // MARK: Roles

    @Test("a member's new role applies to their token on its next call, and is audited from and to")
    func roleChangeAppliesAtOnce() async throws {
        try await withApp { app in
            let ws = try await workspace(app, "Roles")
            _ = try await app.workspaceService.addMember(workspaceID: ws, name: "Owner", role: .owner, actor: "test", actingRole: nil)
            let (member, token) = try await app.workspaceService.addMember(workspaceID: ws, name: "Vic", role: .viewer, actor: "test", actingRole: nil)
            let before = try #require(try await app.authenticate(presented: token.value))
            #expect(before.role == .viewer && !before.permissions.contains(.keysCreate))

            let changed = try await app.workspaceService.changeMemberRole(
                workspaceID: ws, memberID: member.id, role: .admin, actor: "owner", actingRole: .owner
            )
            #expect(changed.role == .admin && changed.id == member.id && changed.name == "Vic")
            let after = try #require(try await app.authenticate(presented: token.value))
            #expect(after.role == .admin && after.permissions == MemberRole.admin.permissions, "the cached principal was dropped")
            #expect(try await app.workspaceService.listMembers(workspaceID: ws).first { $0.id == member.id }?.role == .admin)
            #expect(try await app.workspaceService.listTokens(workspaceID: ws).first { $0.memberID == member.id }?.role == .admin)
            let audited = try await auditDetails(app, action: "member.role_changed", workspaceID: ws)
            #expect(audited == [["name": "Vic", "from": "viewer", "to": "admin"]])

            // The same role again is no change.
            _ = try await app.workspaceService.changeMemberRole(workspaceID: ws, memberID: member.id, role: .admin, actor: "owner", actingRole: .owner)
            #expect(try await auditDetails(app, action: "member.role_changed", workspaceID: ws).count == 1)
            await expectError("not_found") {
                _ = try await app.workspaceService.changeMemberRole(workspaceID: ws, memberID: "mem_missing", role: .viewer, actor: "t", actingRole: nil)
            }
            let other = try await workspace(app, "Elsewhere")
            await expectError("not_found") {
                _ = try await app.workspaceService.changeMemberRole(workspaceID: other, memberID: member.id, role: .viewer, actor: "t", actingRole: nil)
            }
        }
    }

    @Test("a workspace keeps an owner: its last owner is neither demoted nor removed (last_owner)")
    func lastOwner() async throws {
        try await withApp { app in
            let ws = try await workspace(app, "Owned")
            let (first, firstToken) = try await app.workspaceService.addMember(workspaceID: ws, name: "First", role: .owner, actor: "test", actingRole: nil)
            await expectError("last_owner") {
                _ = try await app.workspaceService.changeMemberRole(workspaceID: ws, memberID: first.id, role: .admin, actor: "t", actingRole: nil)
            }
            await expectError("last_owner") {
                try await app.workspaceService.removeMember(workspaceID: ws, memberID: first.id, actor: "t", actingRole: .owner)
            }
            #expect(try await app.authenticate(presented: firstToken.value)?.role == .owner, "nothing changed")

            let (second, _) = try await app.workspaceService.addMember(workspaceID: ws, name: "Second", role: .owner, actor: "test", actingRole: .owner)
            _ = try await app.workspaceService.changeMemberRole(workspaceID: ws, memberID: first.id, role: .admin, actor: "t", actingRole: .owner)
            await expectError("last_owner") {
                try await app.workspaceService.removeMember(workspaceID: ws, memberID: second.id, actor: "t", actingRole: nil)
            }
            _ = try await app.workspaceService.changeMemberRole(workspaceID: ws, memberID: first.id, role: .owner, actor: "t", actingRole: .owner)
            try await app.workspaceService.removeMember(workspaceID: ws, memberID: second.id, actor: "t", actingRole: .owner)
            #expect(try await app.workspaceService.listMembers(workspaceID: ws).map(\.name) == ["First"])
        }
    }

    @Test("no one grants a role above their own, nor changes or removes a member above it (role_not_allowed)")
    func roleEscalation() async throws {
        #expect(MemberRole.allCases.map(\.rank) == [3, 2, 1, 0])
        #expect(MemberRole.owner.mayGrant(.owner) && MemberRole.admin.mayGrant(.admin) && MemberRole.admin.mayGrant(.viewer))
        #expect(!MemberRole.admin.mayGrant(.owner) && !MemberRole.member.mayGrant(.admin) && !MemberRole.viewer.mayGrant(.member))
        try await withApp { app in
            let ws = try await workspace(app, "Ranks")
            let service = app.workspaceService
            let (owner, _) = try await service.addMember(workspaceID: ws, name: "Owner", role: .owner, actor: "test", actingRole: nil)
            let (viewer, _) = try await service.addMember(workspaceID: ws, name: "Viewer", role: .viewer, actor: "test", actingRole: .admin)

            await expectError("role_not_allowed") { _ = try await service.addMember(workspaceID: ws, name: "Boss", role: .owner, actor: "t", actingRole: .admin) }
            await expectError("role_not_allowed") {
                _ = try await service.changeMemberRole(workspaceID: ws, memberID: viewer.id, role: .owner, actor: "t", actingRole: .admin)
            }
            await expectError("role_not_allowed") {
                _ = try await service.changeMemberRole(workspaceID: ws, memberID: owner.id, role: .viewer, actor: "t", actingRole: .admin)
            }
            await expectError("role_not_allowed") { try await service.removeMember(workspaceID: ws, memberID: owner.id, actor: "t", actingRole: .admin) }
            await expectError("role_not_allowed") {
                _ = try await service.changeMemberRole(workspaceID: ws, memberID: viewer.id, role: .member, actor: "t", actingRole: .viewer)
            }
            let roles = try await service.listMembers(workspaceID: ws).map(\.role)
            #expect(roles.count == 2 && Set(roles) == [.owner, .viewer], "nothing changed")

            // Up to one's own role is allowed; an owner and a platform admin may do anything.
            let (admin, _) = try await service.addMember(workspaceID: ws, name: "Admin", role: .admin, actor: "t", actingRole: .admin)
            _ = try await service.changeMemberRole(workspaceID: ws, memberID: viewer.id, role: .member, actor: "t", actingRole: .admin)
            _ = try await service.changeMemberRole(workspaceID: ws, memberID: admin.id, role: .owner, actor: "t", actingRole: .owner)
            _ = try await service.changeMemberRole(workspaceID: ws, memberID: admin.id, role: .viewer, actor: "t", actingRole: nil)
            try await service.removeMember(workspaceID: ws, memberID: viewer.id, actor: "t", actingRole: .admin)
        }
    }

    @Test("a service token carries only permissions its creator holds (permission_not_held); a platform admin grants any")
    func permissionNotHeld() async throws {
        try await withApp { app in
            let ws = try await workspace(app, "Delegation")
            let service = app.workspaceService
            let owner = MemberRole.owner.permissions
            // gateway.use is held by no role; an owner (who manages members) may grant it, anyone else may not.
            await expectError("permission_not_held") {
                _ = try await service.createServiceToken(workspaceID: ws, name: "svc", permissions: [.gatewayUse], mayGrantReveal: false,
                                                         actor: "t", actingPermissions: MemberRole.admin.permissions)
            }
            let (minted, _) = try await service.createServiceToken(workspaceID: ws, name: "backend", permissions: [.gatewayUse], mayGrantReveal: false,
                                                                   actor: "t", actingPermissions: owner)
            #expect(minted.permissions == [.gatewayUse])
            try await service.revokeToken(workspaceID: ws, tokenID: minted.id, actor: "t")
            await expectError("permission_not_held") {
                _ = try await service.createServiceToken(workspaceID: ws, name: "svc", permissions: [.keysRead, .keysCreate], mayGrantReveal: false,
                                                         actor: "t", actingPermissions: MemberRole.viewer.permissions)
            }
            #expect(try await service.listTokens(workspaceID: ws).isEmpty)
            let (held, _) = try await service.createServiceToken(workspaceID: ws, name: "reader", permissions: [.keysRead, .usageRead, .auditRead],
                                                                 mayGrantReveal: false, actor: "t", actingPermissions: owner)
            #expect(held.permissions == [.auditRead, .keysRead, .usageRead])
            let (any, _) = try await service.createServiceToken(workspaceID: ws, name: "gateway", permissions: [.gatewayUse, .keysReveal],
                                                                mayGrantReveal: true, actor: "t", actingPermissions: nil)
            #expect(Set(any.permissions) == [.gatewayUse, .keysReveal])
        }
    }
}
