import Foundation
import KeywardenCore
import KeywardenTestSupport
import Testing
@testable import KeywardenApp
import KeywardenStore

/// The key service authorizes the principal it is given, so the API and the pages share one check: each operation's
/// permission in the key's workspace, another workspace answered as not found.
@Suite("Services authorize the principal: one check for both doors")
struct ServiceAuthorizationTests {
    static func principal(_ workspaceID: String?, _ role: MemberRole?, _ permissions: Set<Permission>, kind: TokenKind = .member) -> Principal {
        Principal(tokenID: "tok_test", kind: kind, workspaceID: workspaceID, role: role, permissions: permissions, name: "test")
    }

    @Test("each operation needs its permission in the key's workspace; another workspace is not found; the actor recorded is the principal's")
    func operationsAuthorizeThePrincipal() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Doors", byokAllowed: true, exclusive: false, actor: "test").id
        let other = try await app.workspaceService.create(name: "Other", byokAllowed: true, exclusive: false, actor: "test").id
        let request = NewKeyRequest(providerID: "openai", description: "Door key", apiKey: Secret("sk-doors-0000000000001"), extras: [:], defaultModel: nil,
                                    role: nil, weight: nil, active: true, expiresAt: nil, rotateByDays: nil)
        let viewer = Self.principal(ws, .viewer, [.keysRead])
        let editor = Self.principal(ws, .admin, [.keysRead, .keysCreate, .keysUpdate, .keysDelete])
        let stranger = Self.principal(other, .owner, Set(Permission.allCases))

        await #expect(throws: KeywardenError.self) { _ = try await app.keys.create(workspaceID: ws, request, principal: viewer) }
        do { _ = try await app.keys.create(workspaceID: ws, request, principal: stranger); Issue.record("a stranger created a key") } catch let error as KeywardenError {
            #expect(error.kind == .notFound, "another workspace is not found, not forbidden")
        }
        let created = try await app.keys.create(workspaceID: ws, request, principal: editor)
        #expect(created.credential.createdBy == editor.actor)
        let id = created.credential.id
        #expect(try await app.keys.get(workspaceID: ws, keyID: id, principal: viewer).credential.id == id)
        do { _ = try await app.keys.get(workspaceID: ws, keyID: id, principal: stranger); Issue.record("a stranger read a key") } catch let error as KeywardenError {
            #expect(error.kind == .notFound)
        }
        for operation in ["update", "deactivate", "activate", "delete"] {
            do {
                switch operation {
                case "update": _ = try await app.keys.update(workspaceID: ws, keyID: id, CredentialChanges(description: "x"), principal: viewer)
                case "deactivate": _ = try await app.keys.deactivate(workspaceID: ws, keyID: id, principal: viewer)
                case "activate": _ = try await app.keys.activate(workspaceID: ws, keyID: id, principal: viewer)
                default: try await app.keys.delete(workspaceID: ws, keyID: id, principal: viewer)
                }
                Issue.record("a viewer could \(operation)")
            } catch let error as KeywardenError {
                #expect(error.kind == .forbidden && error.message.contains("keys."), "\(operation): \(error.message)")
            }
        }
        #expect(try await app.keys.deactivate(workspaceID: ws, keyID: id, principal: editor).credential.active == false)
        try await app.keys.delete(workspaceID: ws, keyID: id, principal: editor)
        await app.close()
    }

    @Test("members and tokens: members.manage in the workspace; the platform's tokens a platform admin's; no more granted than held")
    func membersAndTokensAuthorizeThePrincipal() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Team", byokAllowed: true, exclusive: false, actor: "test").id
        let other = try await app.workspaceService.create(name: "Other", byokAllowed: true, exclusive: false, actor: "test").id
        let owner = Self.principal(ws, .owner, [.membersManage, .keysRead, .usageRead, .gatewayUse])
        let admin = Self.principal(ws, .admin, [.keysRead, .keysUpdate])
        let stranger = Self.principal(other, .owner, [.membersManage])
        do { _ = try await app.workspaceService.addMember(workspaceID: ws, name: "x", role: .viewer, principal: admin); Issue.record("admin added") }
        catch let error as KeywardenError { #expect(error.kind == .forbidden) }
        do { _ = try await app.workspaceService.listTokens(workspaceID: ws, principal: stranger); Issue.record("stranger listed") }
        catch let error as KeywardenError { #expect(error.kind == .notFound) }
        do { _ = try await app.workspaceService.listTokens(workspaceID: nil, principal: owner); Issue.record("owner listed the platform's tokens") }
        catch let error as KeywardenError { #expect(error.kind == .forbidden) }
        let (member, _) = try await app.workspaceService.addMember(workspaceID: ws, name: "Dana", role: .member, principal: owner)
        #expect(try await app.workspaceService.listMembers(workspaceID: ws, principal: admin).contains { $0.id == member.id })
        do { _ = try await app.workspaceService.createServiceToken(workspaceID: ws, name: "svc", permissions: [.keysDelete], principal: owner); Issue.record("granted unheld") }
        catch let error as KeywardenError { #expect(error.code == "permission_not_held") }
        let (token, _) = try await app.workspaceService.createServiceToken(workspaceID: ws, name: "svc", permissions: [.gatewayUse], principal: owner)
        try await app.workspaceService.revokeToken(workspaceID: ws, tokenID: token.id, principal: owner)
        await app.close()
    }

    @Test("the platform's cards: a platform admin only; a workspace's owner and a platform service token without a grant are refused")
    func platformCardsAuthorizeThePrincipal() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Tenant", byokAllowed: true, exclusive: false, actor: "test").id
        let admin = Self.principal(nil, nil, [], kind: .platformAdmin)
        let owner = Self.principal(ws, .owner, Set(Permission.allCases))
        let platformService = Self.principal(nil, nil, [.usageRead], kind: .service)
        for principal in [owner, platformService] {
            do { _ = try await app.platformCards.cards(principal: principal); Issue.record("read the cards") }
            catch let error as KeywardenError { #expect(error.kind == .forbidden) }
            do { _ = try await app.platformCards.save("openai", PlatformCardUpdate(apiKey: Secret("sk-not-theirs-000001")), principal: principal); Issue.record("saved") }
            catch let error as KeywardenError { #expect(error.kind == .forbidden) }
        }
        let saved = try await app.platformCards.save("openai", PlatformCardUpdate(apiKey: Secret("sk-platform-card-00001")), principal: admin)
        #expect(saved.hasKey)
        #expect(try await app.platformCards.activate("openai", principal: admin).state.active)
        await app.close()
    }

    @Test("budgets: read with usage.read in the workspace; limits set by a platform admin only, never by the workspace's owner")
    func budgetsAuthorizeThePrincipal() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Budgeted", byokAllowed: true, exclusive: false, actor: "test").id
        let owner = Self.principal(ws, .owner, Set(Permission.allCases))
        let stranger = Self.principal(nil, nil, [.gatewayUse], kind: .service)
        #expect(try await app.budgets.status(workspaceID: ws, defaultPlatformLimit: nil, principal: owner).count == BudgetScope.allCases.count)
        do { _ = try await app.budgets.status(workspaceID: ws, defaultPlatformLimit: nil, principal: stranger); Issue.record("read") }
        catch let error as KeywardenError { #expect(error.kind == .forbidden) }
        do { _ = try await app.budgets.setLimits(workspaceID: ws, BudgetLimits(platform: 1_000_000), principal: owner); Issue.record("owner raised its own budget") }
        catch let error as KeywardenError { #expect(error.kind == .forbidden) }
        do { _ = try await app.rateLimits.setLimits(workspaceID: ws, RateLimits(requestsPerMinute: 1_000), principal: owner); Issue.record("owner lifted its rate") }
        catch let error as KeywardenError { #expect(error.kind == .forbidden) }
        let admin = Self.principal(nil, nil, [], kind: .platformAdmin)
        #expect(try await app.budgets.setLimits(workspaceID: ws, BudgetLimits(platform: 5_000), principal: admin).budget.platform == 5_000)
        await app.close()
    }
}
