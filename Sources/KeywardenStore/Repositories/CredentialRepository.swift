import Foundation
import KeywardenCore
import KeywardenVault
import SQLKit

/// A key about to be stored.
public struct NewCredential: Sendable {
    public var scope: Scope
    public var providerID: String
    public var description: String
    public var apiKey: Secret?
    /// Filled extras; sealed together, never stored in the clear.
    public var extras: [String: Secret]
    public var defaultModel: String?
    public var role: CredentialRole
    public var weight: Int
    public var position: Int
    public var active: Bool
    /// When the vendor's key expires, if known.
    public var expiresAt: Date?
    /// Days the secret may serve before it is due for rotation.
    public var rotateByDays: Int?

    public init(
        scope: Scope, providerID: String, description: String, apiKey: Secret?, extras: [String: Secret] = [:],
        defaultModel: String? = nil, role: CredentialRole = .fallback, weight: Int = 1, position: Int = 0, active: Bool = false,
        expiresAt: Date? = nil, rotateByDays: Int? = nil
    ) {
        self.scope = scope
        self.providerID = providerID
        self.description = description
        self.apiKey = apiKey
        self.extras = extras
        self.defaultModel = defaultModel
        self.role = role
        self.weight = weight
        self.position = position
        self.active = active
        self.expiresAt = expiresAt
        self.rotateByDays = rotateByDays
    }
}

/// Changes to a stored credential. Leave-blank-to-keep: a `nil` or blank key, and a blank extra,
/// keep what is stored; a new value overwrites it. `clearExtras` removes extras explicitly.
public struct CredentialChanges: Sendable {
    public var description: String?
    public var apiKey: Secret?
    public var extras: [String: Secret]
    public var clearExtras: [String]
    /// `.some(nil)` clears the default model.
    public var defaultModel: String??
    public var role: CredentialRole?
    public var weight: Int?
    public var position: Int?
    public var active: Bool?
    /// `.some(nil)` clears the expiry date.
    public var expiresAt: Date??
    /// `.some(nil)` clears the rotate-by age.
    public var rotateByDays: Int??

    public init(
        description: String? = nil, apiKey: Secret? = nil, extras: [String: Secret] = [:], clearExtras: [String] = [],
        defaultModel: String?? = nil, role: CredentialRole? = nil, weight: Int? = nil, position: Int? = nil, active: Bool? = nil,
        expiresAt: Date?? = nil, rotateByDays: Int?? = nil
    ) {
        self.description = description
        self.apiKey = apiKey
        self.extras = extras
        self.clearExtras = clearExtras
        self.defaultModel = defaultModel
        self.role = role
        self.weight = weight
        self.position = position
        self.active = active
        self.expiresAt = expiresAt
        self.rotateByDays = rotateByDays
    }

    /// The new key, if one was given (blank means keep).
    package var replacementKey: Secret? { apiKey.flatMap { $0.isBlank ? nil : $0 } }
    /// The extras that overwrite stored ones (blank means keep).
    package var filledExtras: [String: Secret] { extras.filter { !$0.value.isBlank } }
}

/// How to sort a list of keys.
public enum CredentialSort: String, Sendable, CaseIterable {
    case description, provider, createdAt = "created_at", status
}

/// A page of a workspace's keys: filters, sort, and page.
public struct CredentialQuery: Sendable {
    public var search: String?
    /// Only these providers (a category filter becomes the category's providers).
    public var providerIDs: [String]?
    public var sort: CredentialSort
    public var descending: Bool
    public var page: Int
    public var perPage: Int

    public init(search: String? = nil, providerIDs: [String]? = nil, sort: CredentialSort = .createdAt, descending: Bool = false, page: Int = 1, perPage: Int = 20) {
        self.search = search
        self.providerIDs = providerIDs
        self.sort = sort
        self.descending = descending
        self.page = page
        self.perPage = perPage
    }
}

/// The `credentials` table and the sealed secrets that belong to each row.
public struct CredentialRepository: Sendable {
    package static let table = "credentials"
    /// The vault field of a credential's API key.
    public static let keyField = ProviderDefinition.keyFieldID
    /// The vault field of a credential's extras (one sealed JSON object).
    public static let extrasField = "extras"
    /// The vault field of a secret staged for rotation.
    public static let stagedKeyField = ProviderDefinition.keyFieldID + ".next"
    /// The vault field of the secret a rotation replaced, during its grace period.
    public static let previousKeyField = ProviderDefinition.keyFieldID + ".previous"

    let vault: Vault
    let fingerprinter: SecretFingerprinter?
    let secrets = SealedSecretRepository()

    public init(vault: Vault, fingerprinter: SecretFingerprinter?) {
        self.vault = vault
        self.fingerprinter = fingerprinter
    }

    /// The vault context of a credential's field.
    public static func context(_ credential: Credential, field: String) -> SecretContext {
        SecretContext(scope: credential.scope, ownerID: credential.id, field: field)
    }

    /// Stores a new credential and its sealed secrets, in the caller's transaction (the application audits it).
    public func insert(_ new: NewCredential, actor: String, on db: any SQLDatabase) async throws -> Credential {
        ChangeLog.touch(ChangeScope(new.scope))
        let now = Date()
        let key = new.apiKey.flatMap { $0.isBlank ? nil : $0 }
        let filledExtras = new.extras.filter { !$0.value.isBlank }
        let credential = Credential(
            id: Identifier.make("key"), scope: new.scope, providerID: new.providerID, description: new.description,
            defaultModel: new.defaultModel, role: new.role, weight: new.weight, position: new.position, active: new.active,
            hint: key?.maskedHint ?? "", fingerprint: key.flatMap { fingerprinter?.fingerprint(of: $0) },
            extrasSet: filledExtras.keys.sorted(), createdAt: now, createdBy: actor, updatedAt: now, updatedBy: actor,
            lifecycle: KeyLifecycle(expiresAt: new.expiresAt, rotateByDays: new.rotateByDays, keySetAt: key == nil ? nil : now)
        )
        try await db.insert(into: Self.table).columns(Self.columns).values(Self.binds(credential)).run()
        if let key {
            let context = Self.context(credential, field: Self.keyField)
            try await secrets.put(try await vault.seal(key, in: context, on: db), for: context, on: db)
        }
        if !filledExtras.isEmpty {
            let context = Self.context(credential, field: Self.extrasField)
            try await secrets.put(try await vault.seal(Self.encodeExtras(filledExtras), in: context, on: db), for: context, on: db)
        }
        return credential
    }

    /// One credential's metadata.
    public func get(_ id: String, on db: any SQLDatabase) async throws -> Credential? {
        try await db.select().column("*").from(Self.table).where("id", .equal, id).first().map(Self.decode)
    }

    /// How a key is named where its id is shown (the request log): its nickname and provider.
    public struct Label: Sendable, Equatable {
        public let name: String
        public let providerID: String
        public let workspaceID: String?
    }

    /// The labels of the keys among `ids` that still exist.
    public func labels(ids: [String], on db: any SQLDatabase) async throws -> [String: Label] {
        guard !ids.isEmpty else { return [:] }
        var labels: [String: Label] = [:]
        for row in try await db.select().columns("id", "description", "provider_id", "workspace_id").from(Self.table).where("id", .in, ids).all() {
            labels[try row.decode(column: "id", as: String.self)] = Label(
                name: try row.decode(column: "description", as: String.self), providerID: try row.decode(column: "provider_id", as: String.self),
                workspaceID: try row.decode(column: "workspace_id", as: String?.self))
        }
        return labels
    }

    /// Every credential of a scope.
    public func list(scope: Scope, on db: any SQLDatabase) async throws -> [Credential] {
        var query = db.select().column("*").from(Self.table)
        switch scope {
        case .platform: query = query.where("scope", .equal, "platform")
        case .workspace(let id): query = query.where("workspace_id", .equal, id)
        }
        return try await query.orderBy("created_at").all().map(Self.decode)
    }

    /// Opens a credential's API key: `nil` when none is stored, ``VaultError/unreadable(_:)`` when it does not open.
    public func openKey(of credential: Credential, on db: any SQLDatabase) async throws -> Secret? {
        let context = Self.context(credential, field: Self.keyField)
        guard let sealed = try await secrets.get(context, on: db) else { return nil }
        return try await vault.open(sealed, in: context, on: db)
    }

    /// Opens a credential's extras (empty when none are stored).
    public func openExtras(of credential: Credential, on db: any SQLDatabase) async throws -> [String: Secret] {
        let context = Self.context(credential, field: Self.extrasField)
        guard let sealed = try await secrets.get(context, on: db) else { return [:] }
        return try Self.decodeExtras(try await vault.open(sealed, in: context, on: db))
    }

    /// Which sealed key and extras a credential holds now: a verdict reached with one version is not recorded on another.
    public func keyVersion(of credential: Credential, on db: any SQLDatabase) async throws -> KeyVersion {
        KeyVersion(
            key: try await secrets.get(Self.context(credential, field: Self.keyField), on: db)?.ciphertext,
            extras: try await secrets.get(Self.context(credential, field: Self.extrasField), on: db)?.ciphertext
        )
    }

    /// Applies changes (leave-blank-to-keep) in the caller's transaction; returns the credential and the names of what changed.
    public func update(_ credential: Credential, with changes: CredentialChanges, actor: String, on db: any SQLDatabase) async throws -> (Credential, [String]) {
        ChangeLog.touch(ChangeScope(credential.scope))
        var updated = credential
        var changed: [String] = []

        /// Sets a field when a new value was given and differs, naming it in `changed`.
        func apply<T: Equatable>(_ value: T?, _ field: WritableKeyPath<Credential, T>, _ name: String) {
            guard let value, value != updated[keyPath: field] else { return }
            updated[keyPath: field] = value
            changed.append(name)
        }
        apply(changes.description, \.description, "description")
        if let key = changes.replacementKey {
            let context = Self.context(credential, field: Self.keyField)
            try await secrets.put(try await vault.seal(key, in: context, on: db), for: context, on: db)
            updated.hint = key.maskedHint
            updated.fingerprint = fingerprinter?.fingerprint(of: key)
            updated.status = .unverified
            updated.lastVerifiedAt = nil
            updated.lastError = nil
            updated.lifecycle.keySetAt = Date()
            changed.append("api_key")
        }
        let filled = changes.filledExtras
        let cleared = changes.clearExtras.filter { credential.extrasSet.contains($0) }
        if !filled.isEmpty || !cleared.isEmpty {
            // Unreadable stored extras cannot be merged; the new values replace them.
            var extras = try await VaultError.unlessUnreadable { try await openExtras(of: credential, on: db) } ?? [:]
            for id in cleared { extras[id] = nil }
            for (id, value) in filled { extras[id] = value }
            let context = Self.context(credential, field: Self.extrasField)
            if extras.isEmpty {
                try await db.delete(from: SealedSecretRepository.table)
                    .where("owner_id", .equal, credential.id).where("field", .equal, Self.extrasField).run()
            } else {
                try await secrets.put(try await vault.seal(Self.encodeExtras(extras), in: context, on: db), for: context, on: db)
            }
            updated.extrasSet = extras.keys.sorted()
            // The key's verification depended on the extras (an organization, an endpoint).
            if updated.status != .unverified, !updated.hint.isEmpty {
                updated.status = .unverified
                updated.lastVerifiedAt = nil
            }
            changed.append(contentsOf: (Array(filled.keys) + cleared).sorted().map { "extras.\($0)" })
        }
        apply(changes.defaultModel, \.defaultModel, "default_model")
        apply(changes.role, \.role, "role")
        apply(changes.weight, \.weight, "weight")
        apply(changes.position, \.position, "position")
        apply(changes.active, \.active, "active")
        apply(changes.expiresAt, \.lifecycle.expiresAt, "expires_at")
        apply(changes.rotateByDays, \.lifecycle.rotateByDays, "rotate_by_days")
        guard !changed.isEmpty else { return (credential, []) }
        updated.updatedAt = Date()
        updated.updatedBy = actor
        try await write(updated, on: db)
        return (updated, changed)
    }

    /// Writes a credential's metadata row as it is.
    package func write(_ credential: Credential, on db: any SQLDatabase) async throws {
        ChangeLog.touch(ChangeScope(credential.scope))
        var update = db.update(Self.table)
        for (column, bind) in zip(Self.columns, Self.binds(credential)) where column != "id" {
            update = update.set(SQLIdentifier(column), to: bind)
        }
        try await update.where("id", .equal, credential.id).run()
    }

    /// Takes the lease of a key's periodic health check until `until`, unless another instance holds it or checked
    /// the key since it was read (`lastVerifiedAt` still the one seen): one check per key per round, whatever the
    /// number of instances.
    public func claimHealthCheck(_ credential: Credential, now: Date, until: Date, on db: any SQLDatabase) async throws -> Bool {
        // The two lease conditions are one group: `id = ? AND (lease IS NULL OR lease < ?) AND last_verified_at = ?`.
        var update = db.update(Self.table).set("health_lease_until", to: Timestamp.string(until))
            .where("id", .equal, credential.id)
            .where { $0.where("health_lease_until", .is, SQLLiteral.null).orWhere("health_lease_until", .lessThan, Timestamp.string(now)) }
        if let last = credential.lastVerifiedAt {
            update = update.where("last_verified_at", .equal, Timestamp.string(last))
        } else {
            update = update.where("last_verified_at", .is, SQLLiteral.null)
        }
        return !(try await update.returning("id").all().isEmpty)
    }

    /// Gives a check's lease back once the check is done: the next check (a key out of quota is looked at again within
    /// minutes) need not wait for the lease to run out. Another instance's claim still needs the version it read.
    public func releaseHealthCheck(_ id: String, on db: any SQLDatabase) async throws {
        try await db.update(Self.table).set("health_lease_until", to: SQLLiteral.null).where("id", .equal, id).run()
    }

    /// Sets the active flag of several credentials at once (no secrets change).
    public func setActive(_ active: Bool, ids: [String], actor: String, on db: any SQLDatabase) async throws {
        guard !ids.isEmpty else { return }
        for id in ids { ChangeLog.touch(.credential(id)) }
        try await db.update(Self.table)
            .set("active", to: active).set("updated_at", to: Timestamp.now).set("updated_by", to: actor)
            .where("id", .in, ids).run()
    }

    /// Turns keys off for an exclusive-mode switch to another provider, remembering that a switch did it (``unpark``).
    public func park(ids: [String], actor: String, on db: any SQLDatabase) async throws {
        guard !ids.isEmpty else { return }
        for id in ids { ChangeLog.touch(.credential(id)) }
        try await db.update(Self.table)
            .set("active", to: false).set("parked", to: true).set("updated_at", to: Timestamp.now).set("updated_by", to: actor)
            .where("id", .in, ids).run()
    }

    /// Turns back on the keys of a workspace's provider that a switch turned off: its chain as it was. A key that cannot
    /// serve now (refused by its vendor since, or unreadable) stays off and is no longer parked. Their ids.
    public func unpark(workspaceID: String, providerID: String, actor: String, on db: any SQLDatabase) async throws -> [String] {
        let parked = try await db.select().columns("id", "status").from(Self.table)
            .where("workspace_id", .equal, workspaceID).where("provider_id", .equal, providerID).where("parked", .equal, true)
            .all().map { (try $0.decode(column: "id", as: String.self), VerificationStatus(rawValue: try $0.decode(column: "status", as: String.self))) }
        guard !parked.isEmpty else { return [] }
        let refused: Set<VerificationStatus> = [.invalid, .unreadable, .noPermission, .quotaExceeded]
        let restored = parked.filter { !refused.contains($0.1 ?? .unverified) }.map(\.0)
        for (id, _) in parked { ChangeLog.touch(.credential(id)) }
        if !restored.isEmpty {
            try await db.update(Self.table)
                .set("active", to: true).set("parked", to: false).set("updated_at", to: Timestamp.now).set("updated_by", to: actor)
                .where("id", .in, restored).run()
        }
        try await db.update(Self.table).set("parked", to: false).where("id", .in, parked.map(\.0)).run()
        return restored
    }

    /// Forgets every parked key of a workspace (exclusive mode turned off).
    public func forgetParked(workspaceID: String, on db: any SQLDatabase) async throws {
        try await db.update(Self.table).set("parked", to: false).where("workspace_id", .equal, workspaceID).where("parked", .equal, true).run()
    }

    /// Forgets that a switch turned a key off: a person chose its state since.
    public func clearParked(_ id: String, on db: any SQLDatabase) async throws {
        try await db.update(Self.table).set("parked", to: false).where("id", .equal, id).where("parked", .equal, true).run()
    }

    /// Deletes a credential and its sealed secrets (the application audits it).
    public func delete(_ credential: Credential, actor: String, on db: any SQLDatabase) async throws {
        ChangeLog.touch(ChangeScope(credential.scope))
        try await secrets.deleteAll(ownerID: credential.id, on: db)
        try await db.delete(from: Self.table).where("id", .equal, credential.id).run()
    }

    /// Active workspace keys never checked or last checked before `cutoff`, at most `limit` (the health checker's
    /// round reads these, not every key).
    public func dueForCheck(before cutoff: Date, quotaExceededBefore quotaCutoff: Date? = nil, limit: Int, on db: any SQLDatabase) async throws -> [Credential] {
        let due = try await dueForCheck(before: cutoff, limit: limit, on: db)
        guard let quotaCutoff, quotaCutoff > cutoff, due.count < limit else { return due }
        // Keys whose quota ran out are due sooner (their own interval): read after the others, never twice.
        return due + (try await quotaExceededDue(before: quotaCutoff, notBefore: cutoff, limit: limit - due.count, on: db))
    }

    /// Active workspace keys recorded `quota_exceeded` whose last check is older than `cutoff` (and not older than
    /// `notBefore`), oldest first.
    public func quotaExceededDue(before cutoff: Date, notBefore: Date? = nil, limit: Int, on db: any SQLDatabase) async throws -> [Credential] {
        var select = db.select().column("*").from(Self.table)
            .where("scope", .notEqual, "platform").where("active", .equal, true).where("status", .equal, VerificationStatus.quotaExceeded.rawValue)
            .where("last_verified_at", .lessThan, Timestamp.string(cutoff))
        if let notBefore { select = select.where("last_verified_at", .greaterThanOrEqual, Timestamp.string(notBefore)) }
        return try await select.orderBy("last_verified_at").limit(limit).all().map(Self.decode)
    }

    private func dueForCheck(before cutoff: Date, limit: Int, on db: any SQLDatabase) async throws -> [Credential] {
        // Never checked first, then the oldest checks (two reads: engines sort NULL differently).
        let never = try await db.select().column("*").from(Self.table)
            .where("scope", .notEqual, "platform").where("active", .equal, true).where("last_verified_at", .is, SQLLiteral.null)
            .limit(limit).all().map(Self.decode)
        guard never.count < limit else { return never }
        let oldest = try await db.select().column("*").from(Self.table)
            .where("scope", .notEqual, "platform").where("active", .equal, true).where("last_verified_at", .lessThan, Timestamp.string(cutoff))
            .orderBy("last_verified_at").limit(limit - never.count).all().map(Self.decode)
        return never + oldest
    }

    /// A credential of a scope: another scope's credential is not found.
    public func get(_ id: String, scope: Scope, on db: any SQLDatabase) async throws -> Credential? {
        guard let credential = try await get(id, on: db), credential.scope == scope else { return nil }
        return credential
    }

    /// The credentials of a scope for one provider, primary first, then by position.
    public func list(scope: Scope, providerID: String, on db: any SQLDatabase) async throws -> [Credential] {
        try await list(scope: scope, on: db).filter { $0.providerID == providerID }.sorted(by: Self.mainFirst)
    }

    /// Every credential of every scope, in one query.
    public func all(on db: any SQLDatabase) async throws -> [Credential] {
        try await db.select().column("*").from(Self.table).orderBy("created_at").all().map(Self.decode)
    }

    /// The order of a provider's keys within a scope: the primary first, then by position, then oldest.
    public static func mainFirst(_ a: Credential, _ b: Credential) -> Bool {
        (a.role == .primary ? 0 : 1, a.position, a.createdAt) < (b.role == .primary ? 0 : 1, b.position, b.createdAt)
    }

    /// A page of a workspace's credentials and the total that match.
    public func page(workspaceID: String, query: CredentialQuery, on db: any SQLDatabase) async throws -> (items: [Credential], total: Int) {
        func filtered(_ select: SQLSelectBuilder) -> SQLSelectBuilder {
            var select = select.from(Self.table).where("workspace_id", .equal, workspaceID)
            if let search = query.search?.trimmingCharacters(in: .whitespaces), !search.isEmpty {
                select = select.where(ContainsPattern.predicate(column: "description", contains: search))
            }
            if let providers = query.providerIDs {
                select = providers.isEmpty ? select.where(SQLRaw("1 = 0")) : select.where("provider_id", .in, providers)
            }
            return select
        }
        let countRow = try await filtered(db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n")).first()
        let total = try countRow?.decode(column: "n", as: Int.self) ?? 0
        let column: String
        switch query.sort {
        case .description: column = "description"
        case .provider: column = "provider_id"
        case .createdAt: column = "created_at"
        case .status: column = "status"
        }
        let direction: SQLDirection = query.descending ? .descending : .ascending
        let rows = try await filtered(db.select().column("*"))
            .orderBy(SQLFunction("lower", args: SQLColumn(column)), direction).orderBy("id", direction)
            .limit(query.perPage).offset((query.page - 1) * query.perPage)
            .all()
        return (try rows.map(Self.decode), total)
    }

    /// How many keys each of the given workspaces stores (a workspace with none is absent), in grouped queries.
    public func countByWorkspace(_ workspaceIDs: [String], on db: any SQLDatabase) async throws -> [String: Int] {
        try await GroupedCount.byWorkspace(in: Self.table, workspaceIDs, on: db)
    }

    /// How many workspaces have an active key of their own for a provider.
    public func workspacesWithActiveKey(providerID: String, on db: any SQLDatabase) async throws -> Int {
        let row = try await db.select().column(SQLFunction("count", args: SQLDistinct(SQLColumn("workspace_id"))), as: "n").from(Self.table)
            .where("provider_id", .equal, providerID).where("active", .equal, true).where("workspace_id", .isNot, SQLLiteral.null).first()
        return try row?.decode(column: "n", as: Int.self) ?? 0
    }

    /// The providers with an active key in a workspace.
    public func activeProviders(workspaceID: String, on db: any SQLDatabase) async throws -> [String] {
        try await db.select().distinct().column("provider_id").from(Self.table)
            .where("workspace_id", .equal, workspaceID).where("active", .equal, true)
            .orderBy("provider_id").all().map { try $0.decode(column: "provider_id", as: String.self) }
    }

    /// Whether a credential's stored key opens: `nil` when none is stored. A key above it that cannot be used now (the
    /// master key's device away, the workspace's own KMS key revoked by its customer) is no verdict on the secret: it
    /// counts as readable, so a list of keys still shows them (with what their custody says).
    public func keyIsReadable(_ credential: Credential, on db: any SQLDatabase) async throws -> Bool? {
        let context = Self.context(credential, field: Self.keyField)
        guard let sealed = try await secrets.get(context, on: db) else { return nil }
        do {
            return try await VaultError.unlessUnreadable { try await vault.open(sealed, in: context, on: db) } != nil
        } catch let error as VaultError where error.isCustodyUnavailable {
            return true
        }
    }

    /// The credentials of a scope whose key has this fingerprint.
    public func withFingerprint(_ fingerprint: String, scope: Scope, on db: any SQLDatabase) async throws -> [Credential] {
        var select = db.select().column("*").from(Self.table).where("fingerprint", .equal, fingerprint)
        if let workspaceID = scope.workspaceID {
            select = select.where("workspace_id", .equal, workspaceID)
        } else {
            select = select.where("scope", .equal, "platform")
        }
        return try await select.all().map(Self.decode)
    }

    /// The fingerprint a key would have, when fingerprints are available.
    public func fingerprint(of key: Secret) -> String? {
        fingerprinter?.fingerprint(of: key)
    }

    /// A MAC of `text` under a key derived for `purpose` from the vault's fingerprint key (shared by every instance on
    /// the database); `nil` when there is no fingerprint key.
    public func signature(of text: String, purpose: String) -> String? {
        fingerprinter?.signature(of: text, purpose: purpose)
    }

    // MARK: Row mapping

    static let columns = [
        "id", "scope", "workspace_id", "provider_id", "description", "default_model", "role", "weight", "position",
        "active", "status", "last_verified_at", "last_error", "hint", "fingerprint", "extras_set",
        "created_at", "created_by", "updated_at", "updated_by",
        "expires_at", "rotate_by_days", "key_set_at", "rotation_due_at", "staged_hint", "staged_fingerprint", "staged_at", "staged_by", "staged_status",
        "staged_error", "staged_checked_at", "previous_hint", "previous_until", "expiry_notice_for", "rotation_notice_for",
    ]

    static func binds(_ c: Credential) -> [any SQLExpression] {
        [
            SQLBind(c.id), SQLBind(c.scope.workspaceID == nil ? "platform" : "workspace"), SQLBind(c.scope.workspaceID),
            SQLBind(c.providerID), SQLBind(c.description), SQLBind(c.defaultModel), SQLBind(c.role.rawValue),
            SQLBind(c.weight), SQLBind(c.position), SQLBind(c.active), SQLBind(c.status.rawValue),
            SQLBind(c.lastVerifiedAt.map(Timestamp.string)), SQLBind(c.lastError), SQLBind(c.hint), SQLBind(c.fingerprint),
            SQLBind(JSONList.encode(c.extrasSet)), SQLBind(Timestamp.string(c.createdAt)), SQLBind(c.createdBy),
            SQLBind(Timestamp.string(c.updatedAt)), SQLBind(c.updatedBy),
        ] + lifecycleBinds(c.lifecycle)
    }

    static func lifecycleBinds(_ l: KeyLifecycle) -> [any SQLExpression] {
        let staged = l.staged
        return [
            SQLBind(l.expiresAt.map(Timestamp.string)), SQLBind(l.rotateByDays), SQLBind(l.keySetAt.map(Timestamp.string)),
            SQLBind(l.rotationDueAt.map(Timestamp.string)),
            SQLBind(staged?.hint), SQLBind(staged?.fingerprint), SQLBind(staged.map { Timestamp.string($0.stagedAt) }), SQLBind(staged?.stagedBy),
            SQLBind(staged?.status.rawValue), SQLBind(staged?.message), SQLBind(staged?.checkedAt.map(Timestamp.string)),
            SQLBind(l.previous?.hint), SQLBind(l.previous.map { Timestamp.string($0.until) }),
            SQLBind(l.expiryNoticeFor.map(Timestamp.string)), SQLBind(l.rotationNoticeFor.map(Timestamp.string)),
        ]
    }

    static func decodeLifecycle(_ row: any SQLRow) throws -> KeyLifecycle {
        func date(_ column: String) throws -> Date? { try row.decode(column: column, as: String?.self).flatMap(Timestamp.date) }
        var lifecycle = KeyLifecycle(
            expiresAt: try date("expires_at"), rotateByDays: try row.decode(column: "rotate_by_days", as: Int?.self),
            keySetAt: try date("key_set_at"), expiryNoticeFor: try date("expiry_notice_for"), rotationNoticeFor: try date("rotation_notice_for")
        )
        if let hint = try row.decode(column: "staged_hint", as: String?.self), let at = try date("staged_at") {
            lifecycle.staged = StagedKey(
                hint: hint, fingerprint: try row.decode(column: "staged_fingerprint", as: String?.self), stagedAt: at,
                stagedBy: try row.decode(column: "staged_by", as: String?.self) ?? "",
                status: (try row.decode(column: "staged_status", as: String?.self)).flatMap(VerificationStatus.init(rawValue:)) ?? .unverified,
                message: try row.decode(column: "staged_error", as: String?.self), checkedAt: try date("staged_checked_at")
            )
        }
        if let hint = try row.decode(column: "previous_hint", as: String?.self), let until = try date("previous_until") {
            lifecycle.previous = PreviousKey(hint: hint, until: until)
        }
        return lifecycle
    }

    static func decode(_ row: any SQLRow) throws -> Credential {
        let workspaceID = try row.decode(column: "workspace_id", as: String?.self)
        return Credential(
            id: try row.decode(column: "id", as: String.self),
            scope: workspaceID.map(Scope.workspace) ?? .platform,
            providerID: try row.decode(column: "provider_id", as: String.self),
            description: try row.decode(column: "description", as: String.self),
            defaultModel: try row.decode(column: "default_model", as: String?.self),
            role: CredentialRole(rawValue: try row.decode(column: "role", as: String.self)) ?? .fallback,
            weight: try row.decode(column: "weight", as: Int.self),
            position: try row.decode(column: "position", as: Int.self),
            active: try row.decode(column: "active", as: Bool.self),
            status: VerificationStatus(rawValue: try row.decode(column: "status", as: String.self)) ?? .unverified,
            lastVerifiedAt: try row.decode(column: "last_verified_at", as: String?.self).flatMap(Timestamp.date),
            lastError: try row.decode(column: "last_error", as: String?.self),
            hint: try row.decode(column: "hint", as: String.self),
            fingerprint: try row.decode(column: "fingerprint", as: String?.self),
            extrasSet: JSONList.decode(try row.decode(column: "extras_set", as: String.self)),
            createdAt: Timestamp.date(try row.decode(column: "created_at", as: String.self)) ?? .distantPast,
            createdBy: try row.decode(column: "created_by", as: String.self),
            updatedAt: Timestamp.date(try row.decode(column: "updated_at", as: String.self)) ?? .distantPast,
            updatedBy: try row.decode(column: "updated_by", as: String.self),
            lifecycle: try decodeLifecycle(row)
        )
    }

    /// Extras travel sealed as one JSON object; the values leave `Secret` only inside this encoding.
    package static func encodeExtras(_ extras: [String: Secret]) -> Secret {
        let plain = extras.mapValues(\.unprotectedString)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Secret(bytes: Array((try? encoder.encode(plain)) ?? Data("{}".utf8)))
    }

    package static func decodeExtras(_ secret: Secret) throws -> [String: Secret] {
        let plain = try secret.withPlaintext { try JSONDecoder().decode([String: String].self, from: Data($0)) }
        return plain.mapValues(Secret.init)
    }
}
