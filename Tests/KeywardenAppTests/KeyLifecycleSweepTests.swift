import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenTestSupport
import Logging
import Testing
@testable import KeywardenApp

/// The lifecycle sweep and the rotation's storage, on the store the fixture chooses (SQLite, or PostgreSQL in CI).
@Suite("Key lifecycle sweep")
struct KeyLifecycleSweepTests {
    func events(_ app: AppServices, kind: EventKind) async throws -> Int {
        try await app.engine.read { db in
            try await db.select().column("id").from("events").where("kind", .equal, kind.rawValue).all().count
        }
    }

    @Test("promotion keeps the old secret sealed under its own field until the grace period ends; the sweep then removes it, once")
    func graceEndsOnce() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Sweep", byokAllowed: true, exclusive: false, actor: "test").id
        let key = try await app.keys.create(workspaceID: ws, NewKeyRequest(providerID: "openai", description: "main", apiKey: Secret("sk-sweep-old-0001")), actor: "test").credential
        let reference = KeyRotationService.Reference.workspace(workspaceID: ws, keyID: key.id)
        _ = try await app.keyRotation.stage(reference, key: Secret("sk-sweep-new-0002"), actor: "test")
        let promoted = try await app.keyRotation.promote(reference, graceHours: 1, force: true, actor: "test")
        #expect(promoted.id == key.id && promoted.lifecycle.staged == nil)
        let current = try await app.resolution.openSecrets(of: promoted).key
        let previous = try await app.resolution.openSecrets(of: promoted, slot: .previous).key
        #expect(current?.unprotectedString == "sk-sweep-new-0002" && previous?.unprotectedString == "sk-sweep-old-0001")
        // The database holds neither secret in the clear.
        let bytes = try fixture.databaseBytes()
        #expect(!contains(bytes, "sk-sweep-old-0001") && !contains(bytes, "sk-sweep-new-0002"))

        let sweep = KeyLifecycleSweep(app: app, settings: .init(), logger: Logger(label: "test"))
        #expect(try await sweep.sweep(now: Date()).graceEnded == 0, "the grace period has not ended")
        #expect(try await sweep.sweep(now: Date().addingTimeInterval(3601)).graceEnded == 1)
        #expect(try await sweep.sweep(now: Date().addingTimeInterval(7200)).graceEnded == 0, "once")
        let after = try await app.keys.get(workspaceID: ws, keyID: key.id).credential
        #expect(after.lifecycle.previous == nil)
        #expect(try await app.resolution.openSecrets(of: after, slot: .previous).key == nil)
        await app.close()
    }

    @Test("key.expiring and key.rotation_due are raised once each, by any number of sweeps, and again for a new date or secret")
    func noticesOnce() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Notices", byokAllowed: true, exclusive: false, actor: "test").id
        let now = Date()
        let key = try await app.keys.create(workspaceID: ws, NewKeyRequest(
            providerID: "openai", description: "expiring", apiKey: Secret("sk-notice-0001"), expiresAt: now.addingTimeInterval(5 * 86_400), rotateByDays: 30
        ), actor: "test").credential
        let sweep = KeyLifecycleSweep(app: app, settings: .init(expiryNoticeDays: 7), logger: Logger(label: "test"))
        // Two sweeps at once (as two instances would): one notice.
        async let first = sweep.sweep(now: now)
        async let second = sweep.sweep(now: now)
        let rounds = try await [first, second]
        #expect(rounds.map(\.expiring).reduce(0, +) == 1)
        #expect(try await events(app, kind: .keyExpiring) == 1)
        #expect(try await events(app, kind: .keyRotationDue) == 0, "the secret is new")
        #expect(try await sweep.sweep(now: now.addingTimeInterval(31 * 86_400)).rotationDue == 1)
        #expect(try await sweep.sweep(now: now.addingTimeInterval(32 * 86_400)).rotationDue == 0)
        #expect(try await events(app, kind: .keyRotationDue) == 1)
        // A new expiry date is announced again; a new secret starts a new age.
        _ = try await app.keys.update(workspaceID: ws, keyID: key.id, CredentialChanges(apiKey: Secret("sk-notice-0002"), expiresAt: .some(now.addingTimeInterval(6 * 86_400))), actor: "test")
        #expect(try await sweep.sweep(now: now).expiring == 1)
        #expect(try await sweep.sweep(now: now.addingTimeInterval(31 * 86_400)).rotationDue == 1)
        #expect(try await events(app, kind: .keyExpiring) == 2)
        #expect(try await events(app, kind: .keyRotationDue) == 2)
        await app.close()
    }
}
