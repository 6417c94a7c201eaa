import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import SQLKit
import Synchronization

/// Bindings, and the parts of resolution in memory: key metadata (never an opened secret), plans, cards, bindings,
/// the sealed secrets of the keys. The platform's part is always held; a workspace's is read on its first call and
/// kept while in use. A committed change replaces only the parts it touched (see ``ChangeFollower``).
public struct ResolutionService: Sendable {
    let app: AppServices
    var store: Store { app.store }
    let bindings = BindingRepository()

    /// What a call of `workspaceID` (or of no workspace) reads.
    public func view(for workspaceID: String?) async throws -> ResolutionView {
        let platform = try await platformPart()
        guard let workspaceID else { return ResolutionView(workspace: nil, platform: platform.resolution) }
        return ResolutionView(workspace: try await workspacePart(workspaceID).resolution, platform: platform.resolution)
    }

    /// Opens a credential's key and extras for one call, from the sealed copies held with its part (no database
    /// read when the part is held). Throws ``VaultError/unreadable(_:)`` when they do not open. `slot` chooses the key's
    /// own secret or the one a rotation replaced (its grace period).
    public func openSecrets(of credential: Credential, slot: KeySlot = .current) async throws -> (key: Secret?, extras: [String: Secret], version: KeyVersion) {
        let sealed: [String: SealedSecret]
        if let workspaceID = credential.scope.workspaceID {
            sealed = try await workspacePart(workspaceID).sealed
        } else {
            sealed = try await platformPart().sealed
        }
        let keyContext = CredentialRepository.context(credential, field: slot == .current ? CredentialRepository.keyField : CredentialRepository.previousKeyField)
        let extrasContext = CredentialRepository.context(credential, field: CredentialRepository.extrasField)
        let sealedKey = sealed[credential.id + "/" + keyContext.field]
        let sealedExtras = sealed[credential.id + "/" + extrasContext.field]
        do {
            var key: Secret?
            if let sealedKey { key = try await store.vault.open(sealedKey, in: keyContext, keys: store.scopeKeys) }
            var extras: [String: Secret] = [:]
            if let sealedExtras { extras = try CredentialRepository.decodeExtras(try await store.vault.open(sealedExtras, in: extrasContext, keys: store.scopeKeys)) }
            return (key, extras, KeyVersion(key: sealedKey?.ciphertext, extras: sealedExtras?.ciphertext))
        } catch let error as VaultError {
            // The key the data key is wrapped by names what is missing (a scope key shredded or under a master key this
            // instance lacks; in format 1, a master key of a newer keyring).
            throw UnreadableSecret(reason: error, wrappingKeyID: sealedKey?.wrappingKeyID ?? sealedExtras?.wrappingKeyID)
        }
    }

    /// The tag (``KeyVersion/tag``) of the key this instance holds for a credential, when its part is held; `nil` when
    /// it is not held here (nothing to compare with).
    public func heldKeyTag(of credentialID: String) -> String? {
        let field = credentialID + "/" + CredentialRepository.keyField
        if let part = app.resolutionState.workspace(forCredential: credentialID) { return part.sealed[field].map { KeyVersion.tag(of: $0.ciphertext) } }
        if app.resolutionState.platform?.resolution.credential(credentialID) != nil {
            return app.resolutionState.platform?.sealed[field].map { KeyVersion.tag(of: $0.ciphertext) }
        }
        return nil
    }

    // MARK: Parts

    /// The platform's part, read if not held yet.
    func platformPart() async throws -> ResolutionState.PlatformPart {
        if let part = app.resolutionState.platform { return part }
        return try await reloadPlatform()
    }

    /// Reads the platform's part (cards, keys, their sealed secrets) and holds it.
    @discardableResult
    func reloadPlatform() async throws -> ResolutionState.PlatformPart {
        let mark = app.resolutionState.beginPlatformRead()
        let part = try await store.engine.read(consistent: true) { db in
            let cards = try await self.store.providers.all(on: db)
            let keys = try await self.store.credentials.list(scope: .platform, on: db)
            let sealed = try await self.store.secrets.all(ownerIDs: keys.map(\.id), fields: Self.sealedFields, on: db)
            let plans = try await self.store.plans.all(on: db)
            let routes = try await self.store.routes.list(workspaceID: nil, on: db)
            let resolution = PlatformResolution(
                cards: Dictionary(cards.map { ($0.providerID, ResolutionSnapshot.PlatformCard(active: $0.active, defaultModel: $0.defaultModel)) }) { $1 },
                credentials: keys, managedDefault: self.store.configuration.managedDefault,
                plans: Dictionary(plans.map { ($0.name, $0) }) { $1 }, routes: routes, defaultFallback: self.store.configuration.platformFallback
            )
            return ResolutionState.PlatformPart(resolution: resolution, sealed: sealed)
        }
        app.resolutionState.setPlatform(part, read: mark)
        return part
    }

    /// A workspace's part: the one held, else read now.
    func workspacePart(_ id: String) async throws -> ResolutionState.WorkspacePart {
        if let part = app.resolutionState.workspace(id) { return part }
        return try await loadWorkspace(id)
    }

    /// Reads a workspace's part (plan, keys, bindings, sealed secrets; a workspace that does not exist has no plan)
    /// and holds it, unless a change to it was applied while it was read.
    @discardableResult
    func loadWorkspace(_ id: String) async throws -> ResolutionState.WorkspacePart {
        let mark = app.resolutionState.mark()
        let part = try await store.engine.read(consistent: true) { db in
            let workspace = try await self.store.workspaces.get(id, on: db)
            let keys = workspace == nil ? [] : try await self.store.credentials.list(scope: .workspace(id), on: db)
            let bound = workspace == nil ? [] : try await self.bindings.list(workspaceID: id, on: db)
            let routes = workspace == nil ? [] : try await self.store.routes.list(workspaceID: id, on: db)
            let sealed = try await self.store.secrets.all(ownerIDs: keys.map(\.id), fields: Self.sealedFields, on: db)
            let resolution = WorkspaceResolution(id: id, policy: workspace.map { .init(byokAllowed: $0.byokAllowed, budget: $0.budget, rateLimits: $0.rateLimits, plan: $0.plan, budgetCycle: $0.budgetCycle, platformFallback: $0.platformFallback) }, credentials: keys, bindings: bound, routes: routes)
            return ResolutionState.WorkspacePart(resolution: resolution, sealed: sealed)
        }
        app.resolutionState.insert(part, readAfter: mark)
        return part
    }

    /// The sealed fields a call opens.
    static let sealedFields = [CredentialRepository.keyField, CredentialRepository.extrasField, CredentialRepository.previousKeyField]

    /// Opens a key for a caller allowed to see it (`keys.reveal`), recording who, which key and its fingerprint.
    public func reveal(_ credential: Credential, source: KeySource, actor: String) async throws -> Secret {
        try await store.engine.transaction(changesState: false) { db in
            guard let key = try await self.store.credentials.openKey(of: credential, on: db) else { throw KeywardenError.notFound("key") }
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "key.revealed", targetType: "credential", targetID: credential.id,
                workspaceID: credential.scope.workspaceID, details: ["provider": credential.providerID, "source": source.rawValue],
                secretFingerprint: credential.fingerprint
            ), on: db)
            try await self.app.custody.record(.reveal, of: credential, actor: actor, on: db)
            return key
        }
    }

    /// Resolves a call against the parts it reads.
    public func resolve(_ query: ResolutionQuery, coolingDown: Set<String> = []) async throws -> Result<[Candidate], ResolutionFailure> {
        Resolver.resolve(query, in: try await view(for: query.workspaceID), catalog: store.catalog, coolingDown: coolingDown)
    }

    /// Every part read from scratch, as one snapshot: what the held parts must always equal (tests compare them).
    public func rebuiltSnapshot() async throws -> ResolutionSnapshot {
        try await store.engine.read { db in
            let workspaces = try await self.store.workspaces.list(on: db)
            let credentials = try await self.store.credentials.all(on: db)
            let cards = try await self.store.providers.all(on: db)
            return ResolutionSnapshot(
                workspaces: Dictionary(uniqueKeysWithValues: workspaces.map { ($0.id, .init(byokAllowed: $0.byokAllowed, budget: $0.budget, rateLimits: $0.rateLimits, plan: $0.plan, budgetCycle: $0.budgetCycle, platformFallback: $0.platformFallback)) }),
                credentials: credentials,
                platformCards: Dictionary(uniqueKeysWithValues: cards.map { ($0.providerID, .init(active: $0.active, defaultModel: $0.defaultModel)) }),
                bindings: try await self.bindings.list(workspaceID: nil, on: db),
                managedDefault: self.store.configuration.managedDefault,
                plans: Dictionary(uniqueKeysWithValues: try await self.store.plans.all(on: db).map { ($0.name, $0) }),
                defaultFallback: self.store.configuration.platformFallback
            )
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


/// A stored secret that does not open here, with the id of the key that wrapped its data key (a workspace key `wk-…`,
/// or in format 1 a master key `mk-…`; never key material).
public struct UnreadableSecret: Error, Sendable, CustomStringConvertible {
    public let reason: VaultError
    public let wrappingKeyID: String?

    /// Whether the master key's device could not be used (the secret itself may be fine: a 503, not a bad key).
    public var isCustodyUnavailable: Bool { reason.isCustodyUnavailable }

    public var description: String { "\(reason), data key wrapped by \(wrappingKeyID ?? "?")" }
}
