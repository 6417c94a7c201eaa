import Foundation
import KeywardenCore
import KeywardenVault
import SQLKit
import KeywardenTestSupport
import Testing
@testable import KeywardenApp
@testable import KeywardenStore

@Suite("Catalog seeding")
struct SeedingTests {
    func replacing(_ catalog: ProviderCatalog, _ id: String, models: [CuratedModel], defaultModel: String, order: Int? = nil) throws -> ProviderCatalog {
        try ProviderCatalog(providers: catalog.providers.map { p in
            guard p.id == id else { return p }
            return ProviderDefinition(
                id: p.id, displayName: p.displayName, category: p.category, fields: p.fields, auth: p.auth,
                staticHeaders: p.staticHeaders, baseURL: p.baseURL, verification: p.verification, models: models,
                defaultModel: defaultModel, modalities: p.modalities, displayOrder: order ?? p.displayOrder, summary: p.summary,
                sharedKeyEndpoints: p.sharedKeyEndpoints
            )
        })
    }

    @Test("seeding twice changes nothing a person saved; a removed curated model is kept and reported custom")
    func seedingKeepsSavedValues() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let original = try ProviderCatalog.load()
        let (store, report) = try await fixture.open(catalog: original)
        #expect(report.seed.inserted.count == original.providers.count)

        // A person saves a default model, an order, a key, an extra, and activates the card.
        let key = try await store.engine.transaction { db in
            try await store.providers.saveDefaultModel("gpt-4.1", for: "openai", seeded: "gpt-5.4-mini", by: "admin", on: db)
            try await store.providers.saveDisplayOrder(5, for: "openai", by: "admin", on: db)
            try await store.providers.setActive(true, for: "openai", by: "admin", on: db)
            return try await store.credentials.insert(NewCredential(
                scope: .platform, providerID: "openai", description: "platform", apiKey: Secret("sk-saved-by-person-0001"),
                extras: ["organization_id": Secret("org-saved")]
            ), actor: "admin", on: db)
        }
        let before = try await store.engine.read { db in try await store.providers.all(on: db) }

        // Same catalog again: nothing changes.
        let again = try await store.seedCatalog()
        #expect(again == SeedReport())
        #expect(try await store.engine.read { db in try await store.providers.all(on: db) } == before)
        await store.close()

        // A newer catalog drops gpt-4.1, moves openai's seed and order, and moves anthropic's seed.
        var newer = try replacing(original, "openai", models: [CuratedModel(id: "gpt-6", label: "GPT-6")], defaultModel: "gpt-6", order: 1)
        newer = try replacing(newer, "anthropic", models: [CuratedModel(id: "claude-next", label: "Next")], defaultModel: "claude-next", order: 2)
        let (upgraded, upgradeReport) = try await fixture.open(catalog: newer)
        let openai = try #require(try await upgraded.engine.read { db in try await upgraded.providers.get("openai", on: db) })
        #expect(openai.defaultModel == "gpt-4.1" && openai.defaultModelSaved)
        #expect(openai.displayOrder == 5 && openai.active)
        #expect(upgradeReport.seed.customDefaults == ["openai": "gpt-4.1"])
        #expect(newer.provider("openai")?.isCustomModel("gpt-4.1") == true)

        // Values nobody saved follow the catalog.
        let anthropic = try #require(try await upgraded.engine.read { db in try await upgraded.providers.get("anthropic", on: db) })
        #expect(anthropic.defaultModel == "claude-next" && anthropic.displayOrder == 2)
        #expect(upgradeReport.seed.reseeded == ["anthropic"])

        // The key and the extra are untouched.
        let opened = try await upgraded.engine.read { db in try await upgraded.credentials.openKey(of: key, on: db) }
        #expect(opened?.unprotectedString == "sk-saved-by-person-0001")
        let extras = try await upgraded.engine.read { db in try await upgraded.credentials.openExtras(of: key, on: db) }
        #expect(extras["organization_id"]?.unprotectedString == "org-saved")
        await upgraded.close()
    }

    @Test("a provider added to the catalog is inserted on the next start")
    func newProviderInserted() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let original = try ProviderCatalog.load()
        let smaller = try ProviderCatalog(providers: original.providers.filter { $0.id != "exa" })
        let (store, _) = try await fixture.open(catalog: smaller)
        await store.close()
        let (bigger, report) = try await fixture.open(catalog: original)
        #expect(report.seed.inserted == ["exa"])
        await bigger.close()
    }
}

@Suite("Audit chain")
struct AuditChainTests {
    func filledStore(_ fixture: StoreFixture, entries: Int) async throws -> AppServices {
        let (store, _) = try await fixture.open()
        // Thousands of appends in one transaction: longer than ordinary work's deadline on a loaded machine.
        try await DatabaseDeadline.$override.withValue(.seconds(120)) { try await store.engine.transaction { db in
            for index in 0..<entries {
                try await store.audit.append(AuditEvent(
                    actor: "token:tok_\(index % 3)", action: "setting.changed", targetType: "setting", targetID: "s\(index)",
                    details: ["value": "\(index)"]
                ), on: db)
            }
        } }
        return store
    }

    @Test("verify passes on a clean chain")
    func cleanChainVerifies() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try await filledStore(fixture, entries: 2500)
        let result = try await store.audit.verify(store.engine, pageSize: 1000)
        #expect(result.isIntact)
        #expect(result.entries >= 2500)
        await store.close()
    }

    @Test("an entry edited by raw SQL is named as the first broken one")
    func editedEntryIsNamed() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try await filledStore(fixture, entries: 50)
        try await store.engine.transaction { db in
            try await db.raw("UPDATE audit_log SET actor = 'token:someone_else' WHERE seq = 30").run()
        }
        let result = try await store.audit.verify(store.engine)
        #expect(result.firstBroken?.seq == 30)
        #expect(result.firstBroken?.reason.contains("edited") == true)
        #expect(result.entries == 29)
        await store.close()
    }

    @Test("an edit that recomputes the entry's own hash is caught at the next entry")
    func rehashedEditIsCaughtByTheNextEntry() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try await filledStore(fixture, entries: 20)
        let row = try #require(try await store.engine.read { db in
            try await db.select().column("*").from("audit_log").where("seq", .equal, 10).first(decoding: AuditEntry.self)
        })
        let forged = AuditEntry.computeHash(
            seq: row.seq, at: row.at, actor: "token:forger", action: row.action, targetType: row.targetType,
            targetID: row.targetID, workspaceID: row.workspaceID, details: row.details,
            secretFingerprint: row.secretFingerprint, prevHash: row.prevHash
        )
        try await store.engine.transaction { db in
            try await db.update("audit_log").set("actor", to: "token:forger").set("hash", to: forged).where("seq", .equal, 10).run()
        }
        let result = try await store.audit.verify(store.engine)
        #expect(result.firstBroken?.seq == 11)
        await store.close()
    }

    @Test("a deleted entry is named as a gap")
    func deletedEntryIsAGap() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try await filledStore(fixture, entries: 20)
        try await store.engine.transaction { db in try await db.delete(from: "audit_log").where("seq", .equal, 7).run() }
        let result = try await store.audit.verify(store.engine)
        #expect(result.firstBroken?.seq == 8)
        #expect(result.firstBroken?.reason.contains("gap") == true)
        await store.close()
    }

    @Test("a change and its audit entry land together or not at all")
    func auditEntryIsTransactional() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let before = try await store.engine.read { db in try await store.audit.list(limit: 1000, offset: 0, on: db) }.count
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await store.engine.transaction { db in
                _ = try await store.workspaces.create(name: "doomed", byokAllowed: true, exclusive: false, actor: "t", on: db)
                throw Boom()
            }
        }
        let after = try await store.engine.read { db in try await store.audit.list(limit: 1000, offset: 0, on: db) }.count
        let workspaces = try await store.engine.read { db in try await store.workspaces.list(on: db) }
        #expect(after == before && workspaces.isEmpty)
        #expect(try await store.audit.verify(store.engine).isIntact)
        await store.close()
    }

    @Test("concurrent appends keep the chain intact")
    func concurrentAppends() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                group.addTask { () async throws -> Void in
                    _ = try await store.engine.transaction { db in
                        try await store.audit.append(AuditEvent(actor: "t\(index)", action: "x", targetType: "y"), on: db)
                    }
                }
            }
            try await group.waitForAll()
        }
        let result = try await store.audit.verify(store.engine)
        #expect(result.isIntact && result.entries >= 40)
        await store.close()
    }
}
