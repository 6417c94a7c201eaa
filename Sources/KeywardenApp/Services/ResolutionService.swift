import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import SQLKit
import Synchronization

/// Bindings, and the in-memory snapshot resolution reads: key metadata (never a secret), plans,
/// cards, bindings. The snapshot is rebuilt as soon as this process commits a change (the engine's
/// change counter), and at least once a second for changes made by another process (the CLI).
public struct ResolutionService: Sendable {
    let app: AppServices
    var store: Store { app.store }
    let bindings = BindingRepository()

    /// The current snapshot, rebuilt if anything changed.
    public func snapshot() async throws -> ResolutionSnapshot {
        try await current().snapshot
    }

    /// The snapshot and the sealed secrets of its keys, rebuilt if anything changed.
    func current() async throws -> SnapshotCache.Entry {
        let generation = store.engine.changes.value
        switch app.snapshotCache.lookup(generation: generation) {
        case .fresh(let entry), .refreshing(let entry):
            return entry
        case .reload:
            do {
                let entry = try await load(generation: generation)
                app.snapshotCache.store(entry)
                return entry
            } catch {
                app.snapshotCache.reloadFailed()
                throw error
            }
        }
    }

    /// Opens a credential's key and extras for one call, from the sealed copies held with the snapshot
    /// (no database read). Throws ``VaultError/unreadable(_:)`` when they do not open.
    public func openSecrets(of credential: Credential) async throws -> (key: Secret?, extras: [String: Secret], version: KeyVersion) {
        let sealed = try await current().sealed
        let keyContext = CredentialRepository.context(credential, field: CredentialRepository.keyField)
        let extrasContext = CredentialRepository.context(credential, field: CredentialRepository.extrasField)
        let sealedKey = sealed[credential.id + "/" + keyContext.field]
        let sealedExtras = sealed[credential.id + "/" + extrasContext.field]
        do {
            let key = try sealedKey.map { try store.vault.open($0, in: keyContext) }
            let extras = try sealedExtras.map { try CredentialRepository.decodeExtras(try store.vault.open($0, in: extrasContext)) } ?? [:]
            return (key, extras, KeyVersion(key: sealedKey?.ciphertext, extras: sealedExtras?.ciphertext))
        } catch let error as VaultError {
            // The master key the data key is wrapped by names what is missing (an instance without the newest keyring).
            throw UnreadableSecret(reason: error, masterKeyID: sealedKey?.masterKeyID ?? sealedExtras?.masterKeyID)
        }
    }

    /// Opens a key for a caller allowed to see it (`keys.reveal`), recording who, which key and its fingerprint.
    public func reveal(_ credential: Credential, source: KeySource, actor: String) async throws -> Secret {
        try await store.engine.transaction(changesState: false) { db in
            guard let key = try await self.store.credentials.openKey(of: credential, on: db) else { throw KeywardenError.notFound("key") }
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "key.revealed", targetType: "credential", targetID: credential.id,
                workspaceID: credential.scope.workspaceID, details: ["provider": credential.providerID, "source": source.rawValue],
                secretFingerprint: credential.fingerprint
            ), on: db)
            return key
        }
    }

    /// Resolves a call against the current snapshot.
    public func resolve(_ query: ResolutionQuery, coolingDown: Set<String> = []) async throws -> Result<[Candidate], ResolutionFailure> {
        Resolver.resolve(query, in: try await snapshot(), catalog: store.catalog, coolingDown: coolingDown)
    }

    func load(generation: UInt64) async throws -> SnapshotCache.Entry {
        try await store.engine.read { db in
            let workspaces = try await self.store.workspaces.list(on: db)
            let credentials = try await self.store.credentials.all(on: db)
            let cards = try await self.store.providers.all(on: db)
            let snapshot = ResolutionSnapshot(
                workspaces: Dictionary(uniqueKeysWithValues: workspaces.map { ($0.id, .init(byokAllowed: $0.byokAllowed)) }),
                credentials: credentials,
                platformCards: Dictionary(uniqueKeysWithValues: cards.map { ($0.providerID, .init(active: $0.active, defaultModel: $0.defaultModel)) }),
                bindings: try await self.bindings.list(workspaceID: nil, on: db),
                managedDefault: self.store.configuration.managedDefault
            )
            let sealed = try await self.store.secrets.all(fields: [CredentialRepository.keyField, CredentialRepository.extrasField], on: db)
            return SnapshotCache.Entry(snapshot: snapshot, sealed: sealed, stamp: CacheStamp(generation: generation))
        }
    }

    // MARK: Bindings

    /// Pins a consumer's calls (of one modality, or all) to a key of the workspace, or to the main chain (`keyID == nil`).
    public func bind(workspaceID: String, consumer: String, modality: Modality?, keyID: String?, actor: String) async throws -> Binding {
        let consumer = consumer.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !consumer.isEmpty, consumer.unicodeScalars.count <= 200 else { throw KeywardenError.invalid("consumer", "consumer must be 1 to 200 characters.") }
        return try await store.engine.transaction { db in
            guard try await self.store.workspaces.get(workspaceID, on: db) != nil else { throw KeywardenError.notFound("workspace") }
            if let keyID, try await self.store.credentials.get(keyID, scope: .workspace(workspaceID), on: db) == nil {
                throw KeywardenError(.notFound, code: "not_found", message: "The key was not found in this workspace.", field: "key_id")
            }
            let binding = Binding(workspaceID: workspaceID, consumer: consumer, modality: modality, credentialID: keyID)
            try await self.bindings.put(binding, actor: actor, on: db)
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "binding.set", targetType: "binding", targetID: consumer, workspaceID: workspaceID,
                details: ["modality": modality?.rawValue ?? "*", "key": keyID ?? "provider_main"]
            ), on: db)
            return binding
        }
    }

    public func unbind(workspaceID: String, consumer: String, modality: Modality?, actor: String) async throws {
        try await store.engine.transaction { db in
            guard try await self.bindings.delete(workspaceID: workspaceID, consumer: consumer, modality: modality, on: db) else {
                throw KeywardenError.notFound("binding")
            }
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "binding.removed", targetType: "binding", targetID: consumer, workspaceID: workspaceID,
                details: ["modality": modality?.rawValue ?? "*"]
            ), on: db)
        }
    }

    public func listBindings(workspaceID: String) async throws -> [Binding] {
        try await store.engine.read { db in
            guard try await self.store.workspaces.get(workspaceID, on: db) != nil else { throw KeywardenError.notFound("workspace") }
            return try await self.bindings.list(workspaceID: workspaceID, on: db)
        }
    }
}


/// The last resolution snapshot, the sealed secrets of its keys (never opened ones), and when it was built.
final class SnapshotCache: Sendable {
    struct Entry: Sendable {
        let snapshot: ResolutionSnapshot
        /// Sealed secrets by `owner id/field`.
        let sealed: [String: SealedSecret]
        let stamp: CacheStamp
    }

    /// What a caller does with the cache.
    enum Lookup {
        /// Use it.
        case fresh(Entry)
        /// Use it: this process changed nothing since, it is only older than the age rule, and another caller
        /// is already rebuilding it (so a burst of calls at the turn of the second makes one rebuild, not one each).
        case refreshing(Entry)
        /// Rebuild it: this caller does (after a local change, every caller waits for its own rebuild, so
        /// a change is seen by the next request).
        case reload
    }

    private struct State {
        var entry: Entry?
        var refreshing = false
    }

    private let state = Mutex(State())

    func lookup(generation: UInt64) -> Lookup {
        state.withLock { state in
            guard let entry = state.entry, entry.stamp.generation == generation else { return .reload }
            if entry.stamp.isFresh(generation: generation) { return .fresh(entry) }
            if state.refreshing { return .refreshing(entry) }
            state.refreshing = true
            return .reload
        }
    }

    func store(_ new: Entry) {
        state.withLock { state in
            // A slower rebuild of an older generation does not replace a newer one.
            if let old = state.entry, old.stamp.generation > new.stamp.generation { return }
            state.entry = new
            state.refreshing = false
        }
    }

    func reloadFailed() {
        state.withLock { $0.refreshing = false }
    }
}

/// A stored secret that does not open here, with the id of the master key that wrapped it (never key material).
public struct UnreadableSecret: Error, Sendable, CustomStringConvertible {
    public let reason: VaultError
    public let masterKeyID: String?

    public var description: String { "\(reason), wrapped by master key \(masterKeyID ?? "?")" }
}
