import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenVault
import SQLKit
import KeywardenTestSupport
import Testing
@testable import KeywardenStore

@Suite("Secrets in the store")
struct SecretStorageTests {
    let canary = "sk-canary-STORE-9c41e07b5d2a83f6"
    let canaryExtra = "org-canary-EXTRA-51d9a7c3"

    func addCanary(to store: AppServices) async throws -> Credential {
        let new = NewCredential(
            scope: .platform, providerID: "openai", description: "Canary key", apiKey: Secret(canary),
            extras: ["organization_id": Secret(canaryExtra)], defaultModel: "gpt-5.4-mini"
        )
        return try await store.engine.transaction { db in try await store.createCredential(new, actor: "test", on: db) }
    }

    @Test("a canary secret sealed through the store appears in no database file (WAL included), log or audit entry")
    func canaryNeverStoredInClear() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let credential = try await addCanary(to: store)
        #expect(credential.hint == "sk-…83f6")
        #expect(credential.extrasSet == ["organization_id"])

        // It opens again, so the test is not passing because nothing was stored.
        let opened = try await store.engine.read { db in try await store.credentials.openKey(of: credential, on: db) }
        #expect(opened?.unprotectedString == canary)
        let extras = try await store.engine.read { db in try await store.credentials.openExtras(of: credential, on: db) }
        #expect(extras["organization_id"]?.unprotectedString == canaryExtra)

        let walBytes = try fixture.databaseBytes()
        #expect(walBytes.count > 10_000)
        if TestDatabase.engine == .sqlite {
            #expect(FileManager.default.fileExists(atPath: fixture.directory.appendingPathComponent("keywarden.sqlite-wal").path))
        }
        for needle in [canary, canaryExtra, String(canary.dropFirst(3).prefix(12))] {
            #expect(!contains(walBytes, needle), "found \(needle) in the database files")
            #expect(!contains(TestDatabase.serverLog, needle), "found \(needle) in PostgreSQL's log")
        }
        await store.close()
        // After a checkpoint the main file holds everything: look again.
        for needle in [canary, canaryExtra] {
            #expect(!contains(try fixture.databaseBytes(), needle))
        }

        let logs = fixture.logs.text
        #expect(!logs.contains(canary) && !logs.contains(canaryExtra))

        let (reopened, _) = try await fixture.open()
        let entries = try await reopened.engine.read { db in try await reopened.audit.list(limit: 100, offset: 0, on: db) }
        let created = try #require(entries.first { $0.action == "credential.created" })
        #expect(created.secretFingerprint == credential.fingerprint && created.secretFingerprint?.hasPrefix("fp_") == true)
        let auditText = String(decoding: try JSONEncoder().encode(entries), as: UTF8.self)
        #expect(!auditText.contains(canary) && !auditText.contains(canaryExtra))
        await reopened.close()
    }

    @Test("a wrong master key starts the store, reports every secret unreadable, and deletes or overwrites nothing")
    func wrongMasterKey() async throws {
        var fixture = try StoreFixture()
        defer { fixture.remove() }
        fixture.environment = ["KEYWARDEN_MASTER_KEY": Data(repeating: 1, count: 32).base64EncodedString()]
        let (store, _) = try await fixture.open()
        var credentials: [Credential] = []
        for index in 0..<5 {
            let new = NewCredential(scope: .platform, providerID: "openai", description: "k\(index)", apiKey: Secret("sk-value-\(index)-abcdefghijkl"))
            credentials.append(try await store.engine.transaction { db in try await store.credentials.insert(new, actor: "test", on: db) })
        }
        let sealedBefore = try await sealedRows(store)
        await store.close()

        fixture.environment = ["KEYWARDEN_MASTER_KEY": Data(repeating: 2, count: 32).base64EncodedString()]
        let (wrong, report) = try await fixture.open()
        #expect(report.secretsUnderUnknownKeys == 6)  // five keys and the fingerprint key
        #expect(wrong.fingerprinter == nil)
        // The store answers. A ping has a 1 s deadline, which CI's PostgreSQL pass (every suite at once on 2 cores) once
        // missed: asked again for up to 10 s, as `/readyz` would be.
        var answered = await wrong.ping()
        let deadline = ContinuousClock.now + .seconds(10)
        while !answered, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            answered = await wrong.ping()
        }
        #expect(answered)
        for credential in credentials {
            await #expect(throws: VaultError.unreadable(.unknownMasterKey)) {
                try await wrong.engine.read { db in try await wrong.credentials.openKey(of: credential, on: db) }
            }
        }
        let listed = try await wrong.engine.read { db in try await wrong.credentials.list(scope: .platform, on: db) }
        #expect(listed.count == 5)
        #expect(fixture.logs.text.contains("unreadable"))
        #expect(try await sealedRows(wrong) == sealedBefore)
        await wrong.close()

        fixture.environment = ["KEYWARDEN_MASTER_KEY": Data(repeating: 1, count: 32).base64EncodedString()]
        let (right, rightReport) = try await fixture.open()
        #expect(rightReport.secretsUnderUnknownKeys == 0)
        for (index, credential) in credentials.enumerated() {
            let key = try await right.engine.read { db in try await right.credentials.openKey(of: credential, on: db) }
            #expect(key?.unprotectedString == "sk-value-\(index)-abcdefghijkl")
        }
        await right.close()
    }

    func sealedRows(_ store: AppServices) async throws -> [String] {
        try await store.engine.read { db in
            try await db.select().columns("owner_id", "field", "master_key_id", "wrapped_key", "ciphertext")
                .from("vault_secrets").orderBy("owner_id").orderBy("field").all().map { row in
                    let parts = [
                        try row.decode(column: "owner_id", as: String.self),
                        try row.decode(column: "field", as: String.self),
                        try row.decode(column: "master_key_id", as: String.self),
                        try row.decode(column: "wrapped_key", as: Data.self).base64EncodedString(),
                        try row.decode(column: "ciphertext", as: Data.self).base64EncodedString(),
                    ]
                    return parts.joined(separator: "|")
                }
        }
    }

    @Test("a ciphertext copied to another row or workspace by raw SQL does not open")
    func copiedCiphertextDoesNotOpen() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let victim = try await addCanary(to: store)
        let attacker = try await store.engine.transaction { db in
            let workspace = try await store.workspaces.create(name: "Mallory", byokAllowed: true, exclusive: false, actor: "test", on: db)
            return try await store.credentials.insert(
                NewCredential(scope: .workspace(workspace.id), providerID: "openai", description: "mine", apiKey: Secret("sk-attacker-owned-key-0000")),
                actor: "test", on: db)
        }
        try await store.engine.transaction { db in
            try await db.raw("""
                UPDATE vault_secrets SET
                  wrapped_key = (SELECT wrapped_key FROM vault_secrets WHERE owner_id = \(bind: victim.id) AND field = 'api_key'),
                  ciphertext = (SELECT ciphertext FROM vault_secrets WHERE owner_id = \(bind: victim.id) AND field = 'api_key'),
                  scope = 'platform'
                WHERE owner_id = \(bind: attacker.id) AND field = 'api_key'
                """).run()
        }
        await #expect(throws: VaultError.unreadable(.authenticationFailed)) {
            try await store.engine.read { db in try await store.credentials.openKey(of: attacker, on: db) }
        }
        // The victim's own row still opens.
        let own = try await store.engine.read { db in try await store.credentials.openKey(of: victim, on: db) }
        #expect(own?.unprotectedString == canary)
        await store.close()
    }
}

@Suite("Private network targets")
struct PrivateTargetTests {
    @Test("a workspace cannot point a base URL or a webhook inside the network; the platform can")
    func workspaceTargetsAreChecked() async throws {
        var fixture = try StoreFixture()
        fixture.allowPrivateTargets = false
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let ws = try await store.workspaceService.create(name: "Acme", byokAllowed: true, exclusive: false, actor: "t")
        let local = NewKeyRequest(providerID: "openai-compatible", description: "local", apiKey: Secret("sk-local-abcdefghij"),
                                  extras: ["base_url": Secret("http://127.0.0.1:8000/v1")])
        let refused = await #expect(throws: KeywardenError.self) { try await store.keys.create(workspaceID: ws.id, local, actor: "t") }
        #expect(refused?.code == "private_target" && refused?.field == "extras.base_url")
        let metadata = await #expect(throws: KeywardenError.self) {
            try await store.notifications.createWebhook(workspaceID: ws.id, url: "http://169.254.169.254/latest", description: "", events: [], actor: "t")
        }
        #expect(metadata?.code == "private_target")
        // Public targets are fine; the platform's own settings are trusted.
        _ = try await store.keys.create(workspaceID: ws.id, NewKeyRequest(providerID: "openai-compatible", description: "host", apiKey: Secret("sk-host-abcdefghij"),
                                                                         extras: ["base_url": Secret("https://api.together.xyz/v1")]), actor: "t")
        _ = try await store.platformCards.save("ollama", PlatformCardUpdate(extras: ["base_url": Secret("http://localhost:11434")]), actor: "t")
        _ = try await store.notifications.createWebhook(workspaceID: nil, url: "http://127.0.0.1:9000/hook", description: "", events: [], actor: "t")
        await store.close()
    }
}
