import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenVault
import SQLKit
import Synchronization
import KeywardenTestSupport
import Testing
@testable import KeywardenStore

@Suite("Master-key rotation")
struct RotationTests {
    func addCredentials(_ count: Int, to store: AppServices) async throws -> [Credential] {
        // Hundreds of keys in one transaction: longer than ordinary work's deadline on a loaded machine.
        try await DatabaseDeadline.$override.withValue(.seconds(120)) { try await store.engine.transaction { db in
            var credentials: [Credential] = []
            for index in 0..<count {
                credentials.append(try await store.credentials.insert(NewCredential(
                    scope: .platform, providerID: "openai", description: "k\(index)", apiKey: Secret("sk-rotate-\(index)-abcdefghijkl"),
                    extras: index % 2 == 0 ? ["organization_id": Secret("org-\(index)")] : [:]
                ), actor: "test", on: db))
            }
            return credentials
        } }
    }

    func expectAllOpen(_ credentials: [Credential], in store: AppServices) async throws {
        for (index, credential) in credentials.enumerated() {
            let key = try await store.engine.read { db in try await store.credentials.openKey(of: credential, on: db) }
            #expect(key?.unprotectedString == "sk-rotate-\(index)-abcdefghijkl")
            if index % 2 == 0 {
                let extras = try await store.engine.read { db in try await store.credentials.openExtras(of: credential, on: db) }
                #expect(extras["organization_id"]?.unprotectedString == "org-\(index)")
            }
        }
    }

    func keyCounts(_ store: AppServices) async throws -> [String: Int] {
        try await store.engine.read { db in try await store.secrets.countByMasterKey(on: db) }
    }

    @Test("rotate, then every old secret opens; the old key stays decrypt-only until retired")
    func rotateThenRetire() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let credentials = try await addCredentials(120, to: store)
        let oldKey = store.vault.activeKeyID
        let ciphertextsBefore = try await ciphertexts(store)

        let seen = Mutex<[RotationProgress]>([])
        let report = try await store.rotation().run(actor: "test", batchSize: 25) { progress in seen.withLock { $0.append(progress) } }
        #expect(!report.resumed)
        #expect(report.targetKeyID != oldKey && report.targetKeyID == store.vault.activeKeyID)
        #expect(report.progress.rewrapped == 181 && report.progress.unreadable == 0)  // 120 keys, 60 extras, 1 fingerprint key
        #expect(report.keysStillInUse.isEmpty)
        #expect(seen.withLock { $0.count } >= 8)
        #expect(try await keyCounts(store) == [report.targetKeyID: 181])
        // Secrets were not re-encrypted: only their data keys were re-wrapped.
        #expect(try await ciphertexts(store) == ciphertextsBefore)

        let onDisk = try KeyringFile(url: fixture.directory.appendingPathComponent("keyring.json")).read()
        #expect(onDisk.active.id == report.targetKeyID && onDisk.decryptOnlyIDs == [oldKey])
        try await expectAllOpen(credentials, in: store)

        #expect(try await store.rotation().retire(actor: "test") == [oldKey])
        #expect(try KeyringFile(url: fixture.directory.appendingPathComponent("keyring.json")).read().keys.count == 1)
        await store.close()

        // A restart with the retired keyring still opens everything.
        let (reopened, report2) = try await fixture.open()
        #expect(report2.secretsUnderUnknownKeys == 0)
        try await expectAllOpen(credentials, in: reopened)
        let entries = try await reopened.engine.read { db in try await reopened.audit.list(limit: 10, offset: 0, on: db) }
        #expect(entries.map(\.action).contains("master_key.rotated") && entries.map(\.action).contains("master_key.retired"))
        await reopened.close()
    }

    @Test("a rotation stopped half way resumes with the same key after a restart, and completes")
    func interruptedRotationResumes() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let credentials = try await addCredentials(200, to: store)
        let oldKey = store.vault.activeKeyID

        let task = Task {
            try await store.rotation().run(actor: "test", batchSize: 20) { progress in
                if progress.rewrapped >= 100 { withUnsafeCurrentTask { $0?.cancel() } }
            }
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        let partial = try await keyCounts(store)
        let target = store.vault.activeKeyID
        #expect(target != oldKey)
        #expect((partial[target] ?? 0) >= 100 && (partial[oldKey] ?? 0) > 0)
        await store.close()

        // A new process: it reads the keyring file the interrupted run saved, finds the unfinished rotation, continues.
        let (restarted, _) = try await fixture.open()
        #expect(restarted.vault.activeKeyID == target)
        try await expectAllOpen(credentials, in: restarted)  // mixed state reads fine
        let report = try await restarted.rotation().run(actor: "test", batchSize: 20)
        #expect(report.resumed && report.targetKeyID == target)
        #expect(report.progress.rewrapped == partial[oldKey])
        #expect(try await keyCounts(restarted) == [target: 301])
        try await expectAllOpen(credentials, in: restarted)
        await restarted.close()
    }

    @Test("retiring refuses while a key still wraps secrets")
    func retireRefusesKeyInUse() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        _ = try await addCredentials(30, to: store)
        let task = Task {
            try await store.rotation().run(actor: "test", batchSize: 10) { progress in
                if progress.rewrapped >= 10 { withUnsafeCurrentTask { $0?.cancel() } }
            }
        }
        _ = try? await task.value
        let error = await #expect(throws: KeyringError.self) { try await store.rotation().retire(actor: "test") }
        #expect(error?.code == "keyring_key_in_use")
        #expect(try KeyringFile(url: fixture.directory.appendingPathComponent("keyring.json")).read().keys.count == 2)
        await store.close()
    }

    @Test("with keys from the environment, the operator names the new key and rotation moves everything to it")
    func environmentRotation() async throws {
        var fixture = try StoreFixture()
        defer { fixture.remove() }
        let first = Data(repeating: 3, count: 32).base64EncodedString()
        let second = Data(repeating: 4, count: 32).base64EncodedString()
        fixture.environment = ["KEYWARDEN_MASTER_KEY": first]
        let (store, _) = try await fixture.open()
        let credentials = try await addCredentials(10, to: store)
        let firstID = store.vault.activeKeyID
        await #expect(throws: KeyringError.self) { try await store.rotation().run(actor: "test") }
        await store.close()

        fixture.environment = ["KEYWARDEN_MASTER_KEY": second, "KEYWARDEN_MASTER_KEY_PREVIOUS": first]
        let (rotated, _) = try await fixture.open()
        let report = try await rotated.rotation().run(actor: "test")
        #expect(report.progress.rewrapped == 16)
        #expect(try await keyCounts(rotated) == [rotated.vault.activeKeyID: 16])
        #expect(try await rotated.rotation().retire(actor: "test") == [firstID])
        await rotated.close()

        fixture.environment = ["KEYWARDEN_MASTER_KEY": second]
        let (onlyNew, _) = try await fixture.open()
        try await expectAllOpen(credentials, in: onlyNew)
        await onlyNew.close()
    }

    @Test("a secret that opens with no key is counted unreadable and left as it is")
    func unreadableSecretsAreSkipped() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let credentials = try await addCredentials(6, to: store)
        try await store.engine.transaction { db in
            try await db.update("vault_secrets").set("ciphertext", to: Data([1, 2, 3]))
                .set("wrapped_key", to: Data([1, 3, 0x6d, 0x6b, 0x2d]))
                .where("owner_id", .equal, credentials[0].id).where("field", .equal, "api_key").run()
        }
        let report = try await store.rotation().run(actor: "test", batchSize: 2)
        #expect(report.progress.unreadable == 1)
        #expect(report.progress.rewrapped == 9)
        #expect(report.keysStillInUse.values.reduce(0, +) == 1)
        await #expect(throws: KeyringError.self) { try await store.rotation().retire(actor: "test") }
        await store.close()
    }

    func ciphertexts(_ store: AppServices) async throws -> [String: Data] {
        try await store.engine.read { db in
            var result: [String: Data] = [:]
            for row in try await db.select().columns("owner_id", "field", "ciphertext").from("vault_secrets").all() {
                result[try row.decode(column: "owner_id", as: String.self) + "/" + row.decode(column: "field", as: String.self)] =
                    try row.decode(column: "ciphertext", as: Data.self)
            }
            return result
        }
    }
}
