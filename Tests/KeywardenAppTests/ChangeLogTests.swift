import Foundation
import KeywardenCore
import KeywardenTestSupport
import KeywardenVault
import SQLKit
import Testing
@testable import KeywardenApp
import KeywardenStore

/// The change log and the per-scope resolution state it keeps fresh, on SQLite and (with
/// `KEYWARDEN_TEST_ENGINE=postgres`) on PostgreSQL.
@Suite("Change log and per-scope resolution")
struct ChangeLogTests {
    struct Planned: Error {}

    func latest(_ app: AppServices) async throws -> Int64 {
        try await app.engine.read { db in try await ChangeLog.latest(on: db) }
    }

    func entries(_ app: AppServices, after seq: Int64) async throws -> [String] {
        try await app.engine.read { db in try await ChangeLog.since(seq, limit: 10_000, on: db).map(\.scope.description) }
    }

    @Test("each change is logged in its own transaction with the scope it touched; a rolled-back change leaves no entry")
    func loggedInTheTransaction() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let before = try await latest(app)
        let ws = try await app.workspaceService.create(name: "Logged", byokAllowed: true, exclusive: false, actor: "test").id
        #expect(try await entries(app, after: before) == ["w:" + ws])

        // A change that fails after writing: the rows and the entry go together.
        let mark = try await latest(app)
        await #expect(throws: Planned.self) {
            try await app.engine.transaction { db in
                _ = try await app.store.workspaces.create(name: "Never", byokAllowed: false, exclusive: false, actor: "test", on: db)
                throw Planned()
            }
        }
        #expect(try await latest(app) == mark, "a rolled-back change leaves no entry")
        #expect(try await app.workspaceService.list().map(\.name) == ["Logged"])

        // A key names its workspace; the platform's card names the platform; an unchanged save logs nothing.
        let key = try await app.keys.create(workspaceID: ws, NewKeyRequest(providerID: "openai", description: "k", apiKey: Secret("sk-logged-abcdefghijkl")), actor: "test")
        _ = try await app.platformCards.save("openai", PlatformCardUpdate(defaultModel: "gpt-4.1"), actor: "test")
        let afterCard = try await latest(app)
        #expect(try await entries(app, after: mark).contains("p"))
        _ = try await app.keys.update(workspaceID: ws, keyID: key.credential.id, CredentialChanges(description: "k"), actor: "test")
        #expect(try await latest(app) == afterCard, "an unchanged save is no change")
        await app.close()
    }

    @Test("an instance that heard no announcement catches up from the log, reloading only the workspace that changed")
    func catchesUpFromTheLog() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (a, _) = try await fixture.open()
        let (b, _) = try await fixture.open(create: false)
        let one = try await a.workspaceService.create(name: "One", byokAllowed: true, exclusive: false, actor: "test").id
        let two = try await a.workspaceService.create(name: "Two", byokAllowed: true, exclusive: false, actor: "test").id
        let key = try await a.keys.create(workspaceID: one, NewKeyRequest(providerID: "openai", description: "k", apiKey: Secret("sk-catchup-abcdefghijkl"), active: true), actor: "test")
        _ = try await a.keys.create(workspaceID: two, NewKeyRequest(providerID: "openai", description: "k", apiKey: Secret("sk-catchup-2bcdefghijkl"), active: true), actor: "test")
        await b.follower.catchUp()
        let query = ResolutionQuery(workspaceID: one, providerID: "openai")
        #expect(try await b.resolution.resolve(query).get().first?.credentialID == key.credential.id)
        _ = try await b.resolution.view(for: two)
        let twoBefore = try #require(b.resolutionState.workspace(two))

        // A deactivates the key. B heard nothing (no announcement on SQLite, no poller here): it still holds its part.
        let beforeDeactivation = try await latest(a)
        _ = try await a.keys.deactivate(workspaceID: one, keyID: key.credential.id, actor: "test")
        #expect(try await entries(a, after: beforeDeactivation) == ["w:" + one], "the deactivation names its workspace only")
        #expect(try await b.resolution.resolve(query).get().first?.credentialID == key.credential.id)
        // Reading the log brings it level, and the other workspace's part is the very same one.
        await b.follower.catchUp()
        #expect(try await b.follower.applied == latest(a))
        let afterwards = try await b.resolution.resolve(query)
        #expect((try? afterwards.get())?.first?.credentialID != key.credential.id, "the deactivated key is no longer a candidate")
        let twoAfter = b.resolutionState.workspace(two)
        #expect(twoAfter?.resolution.keys == twoBefore.resolution.keys && twoAfter?.sealed == twoBefore.sealed, "the other workspace's part was kept")
        await b.close()
        await a.close()
    }

    @Test("a log compacted past an instance's position makes it reload everything, not miss a change")
    func compactedPastPosition() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (a, _) = try await fixture.open()
        let (b, _) = try await fixture.open(create: false)
        let ws = try await a.workspaceService.create(name: "Compacted", byokAllowed: true, exclusive: false, actor: "test").id
        let key = try await a.keys.create(workspaceID: ws, NewKeyRequest(providerID: "openai", description: "k", apiKey: Secret("sk-compact-abcdefghijkl"), active: true), actor: "test")
        await b.follower.catchUp()
        #expect(try await b.resolution.view(for: ws).keys(ofWorkspace: ws).first?.active == true)
        _ = try await a.keys.deactivate(workspaceID: ws, keyID: key.credential.id, actor: "test")
        _ = try await a.workspaceService.create(name: "Later", byokAllowed: true, exclusive: false, actor: "test")
        // Every entry but the newest is dropped: B's next entry is gone.
        try await a.engine.transaction(changesState: false) { db in try await ChangeLog.compact(keeping: 1, on: db) }
        await b.follower.catchUp()
        #expect(try await b.resolution.view(for: ws).keys(ofWorkspace: ws).first?.active == false)
        await b.close()
        await a.close()
    }

    /// A small deterministic generator, so a failing sequence can be replayed from its seed.
    struct Generator {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
    }

    @Test("random changes by one instance: after every step, the other's per-scope state equals a rebuild from scratch, for every workspace", arguments: [1, 2, 3])
    func incrementalEqualsRebuilt(seed: Int) async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (writer, _) = try await fixture.open()
        // The follower holds at most two workspaces, so eviction and reloading on first use are exercised too.
        var configuration = try fixture.configuration()
        configuration.resolutionCacheWorkspaces = 2
        let (follower, _) = try await AppServices.open(configuration, createIfMissing: false, logger: fixture.logs.logger)
        // Another holds every workspace, so only the change log keeps it fresh.
        let (holder, _) = try await fixture.open(create: false)
        var random = Generator(state: UInt64(seed) &* 0x9E37_79B9_7F4A_7C15)
        var workspaces: [String] = []
        for index in 0..<4 {
            workspaces.append(try await writer.workspaceService.create(name: "W\(index)", byokAllowed: true, exclusive: false, actor: "test").id)
        }
        var keys: [(workspace: String?, id: String)] = []
        let providers = ["openai", "anthropic"]
        let roles: [CredentialRole] = [.primary, .fallback, .pool]

        for step in 0..<40 {
            let workspace = workspaces[random.next(workspaces.count)]
            // Some random changes are refused (activating a card without a key): a refusal changes nothing, which is checked too.
            do {
                switch random.next(9) {
                case 0, 1:
                    let created = try await writer.keys.create(workspaceID: workspace, NewKeyRequest(
                        providerID: providers[random.next(2)], description: "s\(step)", apiKey: Secret("sk-prop-\(seed)-\(step)-abcdefghij"),
                        role: roles[random.next(3)], active: random.next(2) == 0), actor: "test")
                    keys.append((workspace, created.credential.id))
                case 2 where !keys.isEmpty:
                    let key = keys[random.next(keys.count)]
                    if let ws = key.workspace {
                        _ = try await writer.keys.update(workspaceID: ws, keyID: key.id, CredentialChanges(
                            role: roles[random.next(3)], position: random.next(5), active: random.next(2) == 0), actor: "test")
                    }
                case 3 where !keys.isEmpty:
                    let index = random.next(keys.count)
                    if let ws = keys[index].workspace {
                        try await writer.keys.delete(workspaceID: ws, keyID: keys[index].id, actor: "test")
                        keys.remove(at: index)
                    }
                case 4:
                    _ = try await writer.workspaceService.update(workspace, WorkspaceChanges(byokAllowed: random.next(2) == 0), actor: "test")
                case 5 where !keys.isEmpty:
                    let key = keys[random.next(keys.count)]
                    if let ws = key.workspace {
                        _ = try await writer.resolution.bind(workspaceID: ws, consumer: "c\(random.next(2))", modality: random.next(2) == 0 ? .chat : nil, keyID: key.id, actor: "test")
                    }
                case 6:
                    let provider = providers[random.next(2)]
                    _ = random.next(2) == 0 ? try await writer.platformCards.activate(provider, actor: "test") : try await writer.platformCards.deactivate(provider, actor: "test")
                case 7:
                    _ = try await writer.platformCards.save(providers[random.next(2)], PlatformCardUpdate(apiKey: Secret("sk-platform-\(seed)-\(step)-abcdefghij")), actor: "test")
                default:
                    workspaces.append(try await writer.workspaceService.create(name: "W\(step)", byokAllowed: random.next(2) == 0, exclusive: false, actor: "test").id)
                }
            } catch let error as KeywardenError {
                _ = error
            }
            await follower.follower.catchUp()
            await holder.follower.catchUp()

            let rebuilt = try await writer.resolution.rebuiltSnapshot()
            for (ws, instance) in workspaces.flatMap({ ws in [(ws, follower), (ws, holder)] }) {
                let held = try await instance.resolution.view(for: ws)
                let fresh = rebuilt.view(for: ws)
                #expect(held.workspace?.policy == fresh.workspace?.policy, "seed \(seed) step \(step): plan of \(ws)")
                #expect(held.workspace?.keys == fresh.workspace?.keys, "seed \(seed) step \(step): keys of \(ws)")
                #expect(held.workspace?.bindings == fresh.workspace?.bindings, "seed \(seed) step \(step): bindings of \(ws)")
                for provider in providers {
                    #expect(held.platformKeys(for: provider) == fresh.platformKeys(for: provider) && held.platformCard(for: provider) == fresh.platformCard(for: provider),
                            "seed \(seed) step \(step): platform \(provider)")
                    for consumer in [nil, "c0", "c1"] {
                        let query = ResolutionQuery(workspaceID: ws, providerID: provider, consumer: consumer)
                        let ids: (Result<[Candidate], ResolutionFailure>) -> [String] = { result in
                            ((try? result.get()) ?? []).filter { $0.reason != "pool" }.map(\.credentialID)
                        }
                        #expect(ids(Resolver.resolve(query, in: held, catalog: writer.catalog)) == ids(Resolver.resolve(query, in: fresh, catalog: writer.catalog)),
                                "seed \(seed) step \(step): candidates of \(ws) \(provider) \(consumer ?? "-")")
                    }
                }
            }
            #expect(follower.resolutionState.count <= 2)
        }
        #expect(holder.resolutionState.count == workspaces.count)
        // Every write named its scope: none fell back to reloading everything.
        #expect(try await !entries(writer, after: 0).contains("*"))
        await holder.close()
        await follower.close()
        await writer.close()
    }

    @Test("a revoked token is refused by another instance once it reads the log, and a new one is accepted there")
    func tokensFollowTheLog() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (a, _) = try await fixture.open()
        let (b, _) = try await fixture.open(create: false)
        let ws = try await a.workspaceService.create(name: "Tokens", byokAllowed: true, exclusive: false, actor: "test").id
        let (record, token) = try await a.workspaceService.createServiceToken(workspaceID: ws, name: "svc", permissions: [.gatewayUse], mayGrantReveal: false, actor: "test")
        await b.follower.catchUp()
        #expect(try await b.authenticate(presented: token.value)?.tokenID == record.id)
        try await a.workspaceService.revokeToken(workspaceID: ws, tokenID: record.id, actor: "test")
        await b.follower.catchUp()
        #expect(try await b.authenticate(presented: token.value) == nil)
        await b.close()
        await a.close()
    }
}
