import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import SQLKit

/// A workspace key as the API shows it: metadata, whether its key opens, and its provider's category.
public struct KeyDetails: Sendable {
    public let credential: Credential
    public let provider: ProviderDefinition?
    /// Whether the stored key opens; `nil` when none is stored.
    public let keyReadable: Bool?
    /// Whether the workspace's own KMS key refuses Keywarden now (its customer revoked access): the key is stored and
    /// not known bad, but does not open until access is restored.
    public var customerKeyRevoked = false

    public var hasKey: Bool { keyReadable == true }
    public var status: VerificationStatus { keyReadable == false ? .unreadable : credential.status }
    public var defaultModelIsCustom: Bool {
        guard let model = credential.defaultModel, let provider else { return false }
        return provider.isCustomModel(model)
    }
}

/// A key a workspace brings.
public struct NewKeyRequest: Sendable {
    public var providerID: String
    public var description: String
    public var apiKey: Secret?
    public var extras: [String: Secret]
    public var defaultModel: String?
    public var role: CredentialRole?
    public var weight: Int?
    public var active: Bool?
    /// When the vendor's key expires, if known.
    public var expiresAt: Date?
    /// Days the secret may serve before it is due for rotation.
    public var rotateByDays: Int?

    public init(providerID: String, description: String, apiKey: Secret?, extras: [String: Secret] = [:], defaultModel: String? = nil, role: CredentialRole? = nil, weight: Int? = nil, active: Bool? = nil,
                expiresAt: Date? = nil, rotateByDays: Int? = nil) {
        self.expiresAt = expiresAt
        self.rotateByDays = rotateByDays
        self.providerID = providerID
        self.description = description
        self.apiKey = apiKey
        self.extras = extras
        self.defaultModel = defaultModel
        self.role = role
        self.weight = weight
        self.active = active
    }
}

/// A workspace's own keys (BYOK): several per provider, one primary per provider, exclusive mode.
public struct KeyService: Sendable {
    let app: AppServices
    var store: Store { app.store }

    public static let maximumWeight = 1000

    /// A page of keys, filtered and sorted.
    public func list(workspaceID: String, query: CredentialQuery) async throws -> (items: [KeyDetails], total: Int) {
        let (items, total) = try await store.engine.read { db in
            guard try await self.store.workspaces.get(workspaceID, on: db) != nil else { throw KeywardenError.notFound("workspace") }
            let (items, total) = try await self.store.credentials.page(workspaceID: workspaceID, query: query, on: db)
            var details: [KeyDetails] = []
            for credential in items { details.append(try await self.details(credential, on: db)) }
            return (details, total)
        }
        return (try await markingCustomerKey(items, workspaceID: workspaceID), total)
    }

    public func get(workspaceID: String, keyID: String) async throws -> KeyDetails {
        let details = try await store.engine.read { db in
            let credential = try await self.credential(keyID, workspaceID: workspaceID, on: db)
            return try await self.details(credential, on: db)
        }
        return try await markingCustomerKey([details], workspaceID: workspaceID)[0]
    }

    /// `items` with ``KeyDetails/customerKeyRevoked`` set on stored keys while the workspace's own KMS key refuses
    /// Keywarden (asked outside the read: it may call the KMS, once per cache period).
    private func markingCustomerKey(_ items: [KeyDetails], workspaceID: String) async throws -> [KeyDetails] {
        guard items.contains(where: \.hasKey), try await app.customerKeys.status(workspaceID: workspaceID)?.isRevoked == true else { return items }
        return items.map { details in
            var marked = details
            marked.customerKeyRevoked = details.hasKey
            return marked
        }
    }

    /// Stores a new key. With `switchExclusive`, activating it in an exclusive workspace turns the other provider off.
    public func create(workspaceID: String, _ request: NewKeyRequest, switchExclusive: Bool = false, actor: String) async throws -> KeyDetails {
        guard let provider = store.catalog.provider(request.providerID) else { throw KeywardenError.unknownProvider(request.providerID) }
        let description = try Self.validDescription(request.description)
        let key = request.apiKey.flatMap { $0.isBlank ? nil : $0 }
        if provider.keyField != nil, provider.requiresKey, key == nil { throw KeywardenError.missing("api_key", "api_key is required.") }
        if let key { try provider.validateKey(key) }
        try provider.validateExtras(request.extras)
        try await ensureAllowedTargets(provider, request.extras)
        let model = try Self.validModel(request.defaultModel)
        let weight = try Self.validWeight(request.weight)
        try KeyLifecycle.check(expiresAt: request.expiresAt, rotateByDays: request.rotateByDays)
        let active = request.active ?? true
        let extras = request.extras.filter { !$0.value.isBlank }
        // The workspace's key unwrapped before the write lock is taken (no device call while it is held).
        try await store.vault.prepare(.workspace(workspaceID), keys: store.scopeKeys)

        return try await store.engine.transaction { db in
            guard let workspace = try await self.store.workspaces.get(workspaceID, on: db) else { throw KeywardenError.notFound("workspace") }
            guard workspace.byokAllowed else {
                throw KeywardenError(.conflict, code: "byok_not_allowed", message: "This workspace's plan does not include bringing its own keys.")
            }
            if let key { try await self.refuseDuplicate(fingerprint: self.store.credentials.fingerprint(of: key), in: .workspace(workspaceID), except: nil, on: db) }
            let siblings = try await self.store.credentials.list(scope: .workspace(workspaceID), providerID: provider.id, on: db)
            let role = request.role ?? (siblings.contains { $0.role == .primary } ? .fallback : .primary)
            if active {
                try PlatformCardService.ensureActivatable(provider: provider, hasKey: key != nil, keyStored: false, extrasSet: Array(extras.keys))
                try await self.ensureExclusive(workspace, activating: provider.id, switching: switchExclusive, actor: actor, on: db)
            }
            if role == .primary { try await self.demotePrimary(of: siblings, actor: actor, on: db) }
            let position = (siblings.map(\.position).max() ?? -1) + 1
            let credential = try await self.app.createCredential(NewCredential(
                scope: .workspace(workspaceID), providerID: provider.id, description: description, apiKey: key, extras: extras,
                defaultModel: model, role: role, weight: weight, position: position, active: active,
                expiresAt: request.expiresAt, rotateByDays: request.rotateByDays
            ), actor: actor, on: db)
            return try await self.details(credential, on: db)
        }
    }

    /// Changes a key with leave-blank-to-keep.
    public func update(workspaceID: String, keyID: String, _ changes: CredentialChanges, switchExclusive: Bool = false, actor: String) async throws -> KeyDetails {
        var changes = changes
        if let description = changes.description { changes.description = try Self.validDescription(description) }
        if case .some(.some(let model)) = changes.defaultModel { changes.defaultModel = .some(try Self.validModel(model)) }
        if let weight = changes.weight { changes.weight = try Self.validWeight(weight) }
        try KeyLifecycle.check(expiresAt: changes.expiresAt ?? nil, rotateByDays: changes.rotateByDays ?? nil)
        let validated = changes
        // Judged before the write transaction: resolving a host name must not hold the writer.
        if validated.extras.values.contains(where: { !$0.isBlank }) {
            let current = try await store.engine.read { db in try await self.credential(keyID, workspaceID: workspaceID, on: db) }
            if let provider = store.catalog.provider(current.providerID) {
                try provider.validateExtras(validated.extras)
                try await ensureAllowedTargets(provider, validated.extras)
            }
        }
        try await store.vault.prepare(.workspace(workspaceID), keys: store.scopeKeys)
        return try await store.engine.transaction { db in
            let credential = try await self.credential(keyID, workspaceID: workspaceID, on: db)
            guard let provider = self.store.catalog.provider(credential.providerID) else { throw KeywardenError.unknownProvider(credential.providerID) }
            if let key = validated.replacementKey {
                try provider.validateKey(key)
                try await self.refuseDuplicate(fingerprint: self.store.credentials.fingerprint(of: key), in: .workspace(workspaceID), except: keyID, on: db)
            }
            try provider.validateExtras(validated.extras)
            for id in validated.clearExtras where !provider.extraFields.contains(where: { $0.id == id }) {
                throw KeywardenError.invalid("clear_extras", "\(provider.displayName) has no field '\(id)'.", code: "unknown_field")
            }
            let workspace = try await self.workspace(workspaceID, on: db)
            if validated.role == .primary, credential.role != .primary {
                let siblings = try await self.store.credentials.list(scope: .workspace(workspaceID), providerID: provider.id, on: db)
                try await self.demotePrimary(of: siblings.filter { $0.id != keyID }, actor: actor, on: db)
            }
            let (updated, _) = try await self.app.updateCredential(credential, with: validated, actor: actor, on: db)
            // A person set its state: a later switch back no longer restores it on its own.
            if validated.active != nil { try await self.store.credentials.clearParked(keyID, on: db) }
            if updated.active {
                let readable = try await self.store.credentials.keyIsReadable(updated, on: db)
                if validated.active == true, !credential.active {
                    try PlatformCardService.ensureActivatable(provider: provider, hasKey: readable == true, keyStored: readable != nil, extrasSet: updated.extrasSet)
                    try await self.ensureExclusive(workspace, activating: provider.id, switching: switchExclusive, actor: actor, on: db)
                }
            }
            return try await self.details(updated, on: db)
        }
    }

    public func delete(workspaceID: String, keyID: String, actor: String) async throws {
        try await store.engine.transaction { db in
            let credential = try await self.credential(keyID, workspaceID: workspaceID, on: db)
            try await self.app.deleteCredential(credential, actor: actor, on: db)
        }
    }

    /// Turns a key on: refuses without a key (`key_required`) and, in exclusive mode, while another provider is active.
    public func activate(workspaceID: String, keyID: String, switchExclusive: Bool = false, actor: String) async throws -> KeyDetails {
        try await update(workspaceID: workspaceID, keyID: keyID, CredentialChanges(active: true), switchExclusive: switchExclusive, actor: actor)
    }

    public func deactivate(workspaceID: String, keyID: String, actor: String) async throws -> KeyDetails {
        try await update(workspaceID: workspaceID, keyID: keyID, CredentialChanges(active: false), actor: actor)
    }

    // MARK: Rules

    /// Refuses a secret another key of `scope` (other than `except`) already holds, matched by keyed fingerprint:
    /// `409 duplicate_key` naming that key. `subject` says which secret ("This key", "The new key").
    func refuseDuplicate(fingerprint: String?, in scope: Scope, except: String?, subject: String = "This key", on db: any SQLDatabase) async throws {
        guard let fingerprint,
              let duplicate = try await store.credentials.withFingerprint(fingerprint, scope: scope, on: db).first(where: { $0.id != except }) else { return }
        throw KeywardenError(.conflict, code: "duplicate_key", message: "\(subject) is already stored as '\(duplicate.description)'.", field: "api_key")
    }

    /// In exclusive mode at most one provider is active: another active provider is a conflict,
    /// or, when switching, is turned off in the same transaction.
    func ensureExclusive(_ workspace: Workspace, activating providerID: String, switching: Bool, actor: String, on db: any SQLDatabase) async throws {
        guard workspace.exclusive else { return }
        let others = try await store.credentials.activeProviders(workspaceID: workspace.id, on: db).filter { $0 != providerID }
        guard !others.isEmpty else {
            // Nothing to switch from (its keys were turned off by hand since): the provider comes back as it was parked.
            _ = try await store.credentials.unpark(workspaceID: workspace.id, providerID: providerID, actor: actor, on: db)
            return
        }
        let names = others.map { store.catalog.provider($0)?.displayName ?? $0 }.joined(separator: ", ")
        guard switching else {
            throw KeywardenError(.conflict, code: "exclusive_provider_active",
                message: "Only one provider can be active in this workspace and \(names) is active. Deactivate it first, or switch with ?switch=true.")
        }
        let active = try await store.credentials.list(scope: .workspace(workspace.id), on: db)
            .filter { $0.active && others.contains($0.providerID) }
        // Parked, not just turned off: a switch back to that provider turns on its whole chain as it was.
        try await store.credentials.park(ids: active.map(\.id), actor: actor, on: db)
        let restored = try await store.credentials.unpark(workspaceID: workspace.id, providerID: providerID, actor: actor, on: db)
        try await store.audit.append(AuditEvent(
            actor: actor, action: "workspace.exclusive_switched", targetType: "workspace", targetID: workspace.id,
            workspaceID: workspace.id,
            details: ["activated": providerID, "deactivated": others.joined(separator: ","), "keys": active.map(\.id).joined(separator: ","),
                      "restored": restored.joined(separator: ",")]
        ), on: db)
    }

    /// Demotes the current primary of a provider to the first fallback.
    func demotePrimary(of siblings: [Credential], actor: String, on db: any SQLDatabase) async throws {
        for primary in siblings where primary.role == .primary {
            let firstPosition = (siblings.filter { $0.role == .fallback }.map(\.position).min() ?? 1) - 1
            _ = try await app.updateCredential(primary, with: CredentialChanges(role: .fallback, position: firstPosition), actor: actor, on: db)
        }
    }

    /// A workspace's URL fields (base URL, endpoint) may not point inside the network.
    func ensureAllowedTargets(_ provider: ProviderDefinition, _ extras: [String: Secret]) async throws {
        for field in provider.extraFields where field.kind == .url {
            if let value = extras[field.id], !value.isBlank {
                try await store.configuration.ensureAllowedTarget(value.unprotectedString.trimmingCharacters(in: .whitespacesAndNewlines), field: "extras.\(field.id)")
            }
        }
    }

    // MARK: Loading

    func workspace(_ id: String, on db: any SQLDatabase) async throws -> Workspace {
        guard let workspace = try await store.workspaces.get(id, on: db) else { throw KeywardenError.notFound("workspace") }
        return workspace
    }

    /// A key of this workspace; another workspace's key, or a platform key, is not found.
    func credential(_ id: String, workspaceID: String, on db: any SQLDatabase) async throws -> Credential {
        guard try await store.workspaces.get(workspaceID, on: db) != nil,
              let credential = try await store.credentials.get(id, scope: .workspace(workspaceID), on: db)
        else { throw KeywardenError.notFound("key") }
        return credential
    }

    func details(_ credential: Credential, on db: any SQLDatabase) async throws -> KeyDetails {
        KeyDetails(
            credential: credential, provider: store.catalog.provider(credential.providerID),
            keyReadable: try await store.credentials.keyIsReadable(credential, on: db)
        )
    }

    // MARK: Validation

    static func validDescription(_ text: String) throws(KeywardenError) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw .missing("description") }
        guard trimmed.unicodeScalars.count <= 200 else { throw .invalid("description", "description is longer than 200 characters.") }
        return trimmed
    }

    static func validModel(_ model: String?) throws(KeywardenError) -> String? {
        guard let model = model?.trimmingCharacters(in: .whitespaces), !model.isEmpty else { return nil }
        guard model.unicodeScalars.count <= 200 else { throw .invalid("default_model", "default_model is longer than 200 characters.") }
        return model
    }

    static func validWeight(_ weight: Int?) throws(KeywardenError) -> Int {
        guard let weight else { return 1 }
        guard (1...maximumWeight).contains(weight) else { throw .invalid("weight", "weight must be between 1 and \(maximumWeight).") }
        return weight
    }
}
