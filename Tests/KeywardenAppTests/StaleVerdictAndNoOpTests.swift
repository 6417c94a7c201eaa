import Foundation
import KeywardenCore
import KeywardenTestSupport
import SQLKit
import Testing
@testable import KeywardenApp
import KeywardenStore

@Suite("Stale verdicts and no-op writes")
struct StaleVerdictAndNoOpTests {
    @Test("a verdict reached with a key that was replaced meanwhile is not recorded on the new key")
    func staleVerdict() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let ws = try await store.workspaceService.create(name: "Acme", byokAllowed: true, exclusive: false, actor: "test").id
        let key = try await store.keys.create(workspaceID: ws, NewKeyRequest(providerID: "openai", description: "k", apiKey: Secret("sk-old-abcdefghijkl")), actor: "test")
        let used = try await store.engine.read { db in try await store.credentials.keyVersion(of: key.credential, on: db) }
        // The key is replaced while a Test of the old one is in flight; the old one's verdict arrives after.
        _ = try await store.keys.update(workspaceID: ws, keyID: key.credential.id, CredentialChanges(apiKey: Secret("sk-new-abcdefghijkl")), actor: "test")
        let (_, event) = try await store.notifications.recordStatus(credentialID: key.credential.id, status: .invalid, message: "old key refused",
                                                                    checkedAt: Date(), actor: "test", keyVersion: used)
        #expect(event == nil)
        #expect(try await store.keys.get(workspaceID: ws, keyID: key.credential.id).credential.status == .unverified)
        // A master-key rotation re-wraps data keys but leaves the version as it is.
        let current = try await store.engine.read { db in try await store.credentials.keyVersion(of: key.credential, on: db) }
        _ = try await store.notifications.recordStatus(credentialID: key.credential.id, status: .valid, message: nil, checkedAt: Date(), actor: "test", keyVersion: current)
        #expect(try await store.keys.get(workspaceID: ws, keyID: key.credential.id).credential.status == .valid)
        await store.close()
    }

    @Test("a failed sign-in and an unchanged save leave the caches alone; a real change does not")
    func noOpsDoNotInvalidate() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        _ = try await store.platformCards.save("openai", PlatformCardUpdate(displayOrder: 7), actor: "test")
        let before = store.engine.changes.value
        #expect(try await store.sessions.signIn(presented: "kw_" + String(repeating: "x", count: 43)) == nil)
        #expect(store.engine.changes.value == before, "a failed sign-in")
        _ = try await store.platformCards.save("openai", PlatformCardUpdate(displayOrder: 7), actor: "test")
        #expect(store.engine.changes.value == before, "an unchanged save")
        _ = try await store.platformCards.save("openai", PlatformCardUpdate(displayOrder: 8), actor: "test")
        #expect(store.engine.changes.value > before, "a real change")
        await store.close()
    }
}

@Suite("Health check leases")
struct HealthLeaseTests {
    @Test("one instance takes a key's health check per round: the lease is taken once, again when it ran out, and never after another instance's check")
    func leases() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Leases", byokAllowed: true, exclusive: false, actor: "test").id
        let created = try await app.keys.create(workspaceID: ws, NewKeyRequest(providerID: "openai", description: "k", apiKey: Secret("sk-lease-abcdefghijkl")), actor: "test")
        _ = try await app.notifications.recordStatus(credentialID: created.credential.id, status: .valid, message: nil, checkedAt: Date(), actor: "test")
        let seen = try #require(try await app.engine.read { db in try await app.credentials.get(created.credential.id, on: db) })
        let now = Date()
        func claim(_ credential: Credential, at time: Date) async throws -> Bool {
            try await app.engine.transaction(changesState: false) { db in
                try await app.credentials.claimHealthCheck(credential, now: time, until: time.addingTimeInterval(120), on: db)
            }
        }
        #expect(try await claim(seen, at: now))
        #expect(try await !claim(seen, at: now.addingTimeInterval(1)), "the lease is held")
        #expect(try await claim(seen, at: now.addingTimeInterval(121)), "a lease that ran out is taken again")
        // Another instance checked the key meanwhile: the round that read it before does not check it again.
        _ = try await app.notifications.recordStatus(credentialID: seen.id, status: .valid, message: nil, checkedAt: Date().addingTimeInterval(5), actor: "test")
        #expect(try await !claim(seen, at: now.addingTimeInterval(400)))
        await app.close()
    }

    @Test("a key's lease is its own: claiming one key leaves every other key's lease untouched")
    func leaseIsPerKey() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Two leases", byokAllowed: true, exclusive: false, actor: "test").id
        var keys: [Credential] = []
        for index in 0..<3 {
            let created = try await app.keys.create(workspaceID: ws, NewKeyRequest(providerID: "openai", description: "k\(index)", apiKey: Secret("sk-lease-two-abcdefghij\(index)")), actor: "test")
            let read = try #require(try await app.engine.read { db in try await app.credentials.get(created.credential.id, on: db) })
            keys.append(read)
        }
        let now = Date()
        func claim(_ credential: Credential, at time: Date) async throws -> Bool {
            try await app.engine.transaction(changesState: false) { db in
                try await app.credentials.claimHealthCheck(credential, now: time, until: time.addingTimeInterval(120), on: db)
            }
        }
        func leases() async throws -> [String: String] {
            try await app.engine.read { db in
                try await db.select().column("id").column("health_lease_until").from("credentials").all()
                    .reduce(into: [:]) { $0[try $1.decode(column: "id", as: String.self)] = try $1.decode(column: "health_lease_until", as: String?.self) ?? "-" }
            }
        }
        for key in keys { #expect(try await claim(key, at: now)) }
        let before = try await leases()
        // Once every lease ran out, key 0 is claimed again. Were the conditions not one group
        // (`id = ? AND lease IS NULL OR lease < ? …`), every other key with an old lease would be leased with it.
        #expect(try await claim(keys[0], at: now.addingTimeInterval(200)))
        let after = try await leases()
        #expect(after[keys[0].id] != before[keys[0].id])
        #expect(after[keys[1].id] == before[keys[1].id] && after[keys[2].id] == before[keys[2].id], "only the claimed key's lease moved")
        let second = try await claim(keys[1], at: now.addingTimeInterval(200))
        let third = try await claim(keys[2], at: now.addingTimeInterval(200))
        #expect(second && third, "the other keys are still free to claim")
        await app.close()
    }
}
