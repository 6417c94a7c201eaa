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

    /// Workspace keys by the master key that wraps them.
    func keyCounts(_ store: AppServices) async throws -> [String: Int] {
        try await store.engine.read { db in try await ScopeKeyRepository().countByMasterKey(on: db) }
    }

    /// One key in each of `count` new workspaces (so as many workspace keys).
    func addWorkspaceKeys(_ count: Int, to store: AppServices) async throws -> [Credential] {
        var credentials: [Credential] = []
        for index in 0..<count {
            let workspace = try await store.workspaceService.create(name: "w\(index)", byokAllowed: true, exclusive: false, actor: "test")
            credentials.append(try await store.engine.transaction { db in
                try await store.credentials.insert(NewCredential(
                    scope: .workspace(workspace.id), providerID: "openai", description: "k\(index)", apiKey: Secret("sk-rotate-\(index)-abcdefghijkl"),
                    extras: index % 2 == 0 ? ["organization_id": Secret("org-\(index)")] : [:]
                ), actor: "test", on: db)
            })
        }
        return credentials
    }

    @Test("rotate, then every old secret opens; the old key stays decrypt-only until retired")
    func rotateThenRetire() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let credentials = try await addCredentials(120, to: store)
        let workspaceKeys = try await addWorkspaceKeys(3, to: store)
        let oldKey = store.vault.activeKeyID
        let ciphertextsBefore = try await ciphertexts(store)
        let wrappedBefore = try await ciphertexts(store, column: "wrapped_key")

        let seen = Mutex<[RotationProgress]>([])
        let report = try await store.rotation().run(actor: "test", batchSize: 2) { progress in seen.withLock { $0.append(progress) } }
        #expect(!report.resumed)
        #expect(report.targetKeyID != oldKey && report.targetKeyID == store.vault.activeKeyID)
        // Workspace keys only: the platform's (120 keys, 60 extras, the fingerprint key) and three workspaces'.
        #expect(report.progress.rewrapped == 4 && report.progress.unreadable == 0)
        #expect(report.keysStillInUse.isEmpty)
        #expect(seen.withLock { $0.count } >= 3)
        #expect(try await keyCounts(store) == [report.targetKeyID: 4])
        // Secrets were not re-encrypted, nor their data keys re-wrapped: only the workspace keys were.
        #expect(try await ciphertexts(store) == ciphertextsBefore)
        #expect(try await ciphertexts(store, column: "wrapped_key") == wrappedBefore)

        let onDisk = try KeyringFile(url: fixture.directory.appendingPathComponent("keyring.json")).read()
        #expect(onDisk.active.id == report.targetKeyID && onDisk.decryptOnlyIDs == [oldKey])
        try await expectAllOpen(credentials, in: store)
        try await expectWorkspaceKeysOpen(workspaceKeys, in: store)

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
        let credentials = try await addWorkspaceKeys(40, to: store)
        let oldKey = store.vault.activeKeyID

        let task = Task {
            try await store.rotation().run(actor: "test", batchSize: 5) { progress in
                if progress.rewrapped >= 10 { withUnsafeCurrentTask { $0?.cancel() } }
            }
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        let partial = try await keyCounts(store)
        let target = store.vault.activeKeyID
        #expect(target != oldKey)
        #expect((partial[target] ?? 0) >= 10 && (partial[oldKey] ?? 0) > 0)
        await store.close()

        // A new process: it reads the keyring file the interrupted run saved, finds the unfinished rotation, continues.
        let (restarted, _) = try await fixture.open()
        #expect(restarted.vault.activeKeyID == target)
        try await expectWorkspaceKeysOpen(credentials, in: restarted)  // mixed state reads fine
        let report = try await restarted.rotation().run(actor: "test", batchSize: 5)
        #expect(report.resumed && report.targetKeyID == target)
        #expect(report.progress.rewrapped == partial[oldKey])
        #expect(try await keyCounts(restarted) == [target: 41])
        try await expectWorkspaceKeysOpen(credentials, in: restarted)
        await restarted.close()
    }

    @Test("retiring refuses while a key still wraps secrets")
    func retireRefusesKeyInUse() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        _ = try await addWorkspaceKeys(12, to: store)
        let task = Task {
            try await store.rotation().run(actor: "test", batchSize: 3) { progress in
                if progress.rewrapped >= 3 { withUnsafeCurrentTask { $0?.cancel() } }
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
        #expect(report.progress.rewrapped == 1)
        #expect(try await keyCounts(rotated) == [rotated.vault.activeKeyID: 1])
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
        let oldKey = store.vault.activeKeyID
        // A row of format 1 (a data key under the master key) whose bytes are damaged.
        try await store.engine.transaction { db in
            try await db.update("vault_secrets").set("ciphertext", to: Data([1, 2, 3]))
                .set("wrapped_key", to: Data([1, 3, 0x6d, 0x6b, 0x2d])).set("master_key_id", to: oldKey)
                .where("owner_id", .equal, credentials[0].id).where("field", .equal, "api_key").run()
        }
        let report = try await store.rotation().run(actor: "test", batchSize: 2)
        #expect(report.progress.unreadable == 1)
        #expect(report.progress.rewrapped == 1)
        #expect(report.keysStillInUse == [oldKey: 1])
        await #expect(throws: KeyringError.self) { try await store.rotation().retire(actor: "test") }
        await store.close()
    }

    func ciphertexts(_ store: AppServices, column: String = "ciphertext") async throws -> [String: Data] {
        try await store.engine.read { db in
            var result: [String: Data] = [:]
            for row in try await db.select().columns("owner_id", "field", column).from("vault_secrets").all() {
                result[try row.decode(column: "owner_id", as: String.self) + "/" + row.decode(column: "field", as: String.self)] =
                    try row.decode(column: column, as: Data.self)
            }
            return result
        }
    }

    func expectWorkspaceKeysOpen(_ credentials: [Credential], in store: AppServices) async throws {
        for credential in credentials {
            let index = try #require(Int(credential.description.dropFirst()))
            let key = try await store.engine.read { db in try await store.credentials.openKey(of: credential, on: db) }
            #expect(key?.unprotectedString == "sk-rotate-\(index)-abcdefghijkl")
        }
    }

    @Test("secrets sealed before workspace keys (format 1) open, and a rotation moves them to their workspace's key")
    func formatOneSecretsMove() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let credentials = try await addCredentials(8, to: store)
        // As an earlier build stored them: each data key wrapped by the master key directly.
        try await store.engine.transaction { db in
            for credential in credentials {
                let context = CredentialRepository.context(credential, field: CredentialRepository.keyField)
                let plain = try await store.vault.open(try #require(try await store.secrets.get(context, on: db)), in: context, on: db)
                try await store.secrets.put(try store.store.vault.sealInFormat1(plain, in: context), for: context, on: db)
            }
        }
        try await expectAllOpen(credentials, in: store)
        let oldKey = store.vault.activeKeyID
        let before = try await store.engine.read { db in try await store.secrets.countByWrappingKey(on: db) }
        #expect(before[oldKey] == 8)
        let report = try await store.rotation().run(actor: "test", batchSize: 3)
        #expect(report.progress.rewrapped == 9 && report.keysStillInUse.isEmpty)  // the platform's workspace key and 8 data keys
        let after = try await store.engine.read { db in try await store.secrets.countByWrappingKey(on: db) }
        #expect(after.keys.allSatisfy { $0.hasPrefix("wk-") })
        try await expectAllOpen(credentials, in: store)
        #expect(try await store.rotation().retire(actor: "test") == [oldKey])
        try await expectAllOpen(credentials, in: store)
        await store.close()
    }

    @Test("shredding: a deleted workspace's key is gone with it; a copy taken before stops opening once the master key is rotated and retired")
    func deletedWorkspaceIsShredded() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let kept = try await addWorkspaceKeys(1, to: store)
        let workspace = try await store.workspaceService.create(name: "leaving", byokAllowed: true, exclusive: false, actor: "test")
        let credential = try await store.engine.transaction { db in
            try await store.credentials.insert(NewCredential(scope: .workspace(workspace.id), providerID: "openai", description: "k",
                                                             apiKey: Secret("sk-shred-canary-0d9a77"), extras: [:]), actor: "test", on: db)
        }
        let context = CredentialRepository.context(credential, field: CredentialRepository.keyField)
        // "A copy of the database taken before": the workspace's key and its sealed secret, as stored.
        let (copiedKey, copiedSecret) = try await store.engine.read { db in
            (try await ScopeKeyRepository().activeKey(for: .workspace(workspace.id), on: db), try await store.secrets.get(context, on: db))
        }
        let stored = try #require(copiedKey)
        let sealed = try #require(copiedSecret)

        let deletion = try await store.workspaceService.delete(workspace.id, actor: "test")
        #expect(deletion.keys == 1)
        let left = try await store.engine.read { db in try await ScopeKeyRepository().activeKey(for: .workspace(workspace.id), on: db) }
        #expect(left == nil)
        // The live database no longer opens it: the key it names is gone.
        await #expect(throws: VaultError.unreadable(.unknownScopeKey)) { try await store.vault.open(sealed, in: context, keys: store.store.scopeKeys) }
        // The copy still does while the master key that wrapped its workspace key exists…
        let copy = InMemoryScopeKeyDirectory()
        try await copy.insert(stored)
        store.vault.forgetAll()
        #expect(try await store.vault.open(sealed, in: context, keys: copy).unprotectedString == "sk-shred-canary-0d9a77")
        // …and no longer once it is rotated away and retired (the live workspaces' keys were re-wrapped; this one was not).
        _ = try await store.rotation().run(actor: "test")
        _ = try await store.rotation().retire(actor: "test")
        store.vault.forgetAll()
        await #expect(throws: VaultError.unreadable(.unknownMasterKey)) { try await store.vault.open(sealed, in: context, keys: copy) }
        try await expectWorkspaceKeysOpen(kept, in: store)
        let entries = try await store.engine.read { db in try await store.audit.list(limit: 20, offset: 0, on: db) }
        let deleted = try #require(entries.first { $0.action == "workspace.deleted" })
        #expect(deleted.details.contains(#""workspace_keys_shredded":"1""#))
        await store.close()
    }

    @Test("one workspace's key rotated: its secrets' data keys move to a new key, the old key goes, other workspaces are untouched; everything opens")
    func workspaceKeyRotation() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let credentials = try await addWorkspaceKeys(2, to: store)
        let ws = try #require(credentials[0].scope.workspaceID)
        let otherWorkspace = try #require(credentials[1].scope.workspaceID)
        // A second key in the workspace, with extras.
        let second = try await store.engine.transaction { db in
            try await store.credentials.insert(NewCredential(scope: .workspace(ws), providerID: "anthropic", description: "k9",
                                                             apiKey: Secret("sk-rotate-9-abcdefghijkl"), extras: ["x": Secret("extra")]), actor: "test", on: db)
        }
        let before = try await ciphertexts(store, column: "wrapped_key")
        let oldKey = try #require(try await store.engine.read { db in try await ScopeKeyRepository().activeKey(for: .workspace(ws), on: db) })

        let report = try await store.workspaceKeyRotation.run(workspaceID: ws, actor: "test", batchSize: 2)
        #expect(report.rewrapped == 4 && report.unreadable == 0 && report.retired == [oldKey.id] && report.newKeyID != oldKey.id)  // 2 keys, 2 extras
        let after = try await ciphertexts(store, column: "wrapped_key")
        for (row, wrapped) in after {
            let moved = row.hasPrefix(credentials[0].id) || row.hasPrefix(second.id)
            #expect((wrapped != before[row]) == moved, "\(row)")
        }
        let keys = try await store.engine.read { db in
            try await db.select().columns("id", "scope").from("vault_scope_keys").all().map { try $0.decode(column: "scope", as: String.self) }
        }
        #expect(keys.filter { $0 == "workspace:\(ws)" }.count == 1 && keys.contains("workspace:\(otherWorkspace)"))
        store.vault.forgetAll()
        try await expectWorkspaceKeysOpen(credentials, in: store)
        #expect(try await store.engine.read { db in try await store.credentials.openExtras(of: second, on: db) }["x"]?.unprotectedString == "extra")
        // Sealed after the rotation: under the new key.
        let entries = try await store.engine.read { db in try await store.audit.list(limit: 5, offset: 0, on: db) }
        #expect(entries.contains { $0.action == "workspace.key_rotated" && $0.targetID == ws })
        await #expect(throws: KeywardenError.self) { try await store.workspaceKeyRotation.run(workspaceID: "ws_missing", actor: "test") }
        await store.close()
    }
}
