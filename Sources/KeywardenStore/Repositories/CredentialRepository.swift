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

    public init(
        scope: Scope, providerID: String, description: String, apiKey: Secret?, extras: [String: Secret] = [:],
        defaultModel: String? = nil, role: CredentialRole = .fallback, weight: Int = 1, position: Int = 0, active: Bool = false
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
    }
}

/// The `credentials` table and the sealed secrets that belong to each row.
public struct CredentialRepository: Sendable {
    static let table = "credentials"
    /// The vault field of a credential's API key.
    public static let keyField = ProviderDefinition.keyFieldID
    /// The vault field of a credential's extras (one sealed JSON object).
    public static let extrasField = "extras"

    let vault: Vault
    let fingerprinter: SecretFingerprinter?
    let secrets = SealedSecretRepository()
    let audit = AuditLog()

    public init(vault: Vault, fingerprinter: SecretFingerprinter?) {
        self.vault = vault
        self.fingerprinter = fingerprinter
    }

    /// The vault context of a credential's field.
    public static func context(_ credential: Credential, field: String) -> SecretContext {
        SecretContext(scope: credential.scope, ownerID: credential.id, field: field)
    }

    /// Stores a new credential, its sealed secrets and an audit entry, in the caller's transaction.
    public func insert(_ new: NewCredential, actor: String, on db: any SQLDatabase) async throws -> Credential {
        let now = Date()
        let key = new.apiKey.flatMap { $0.isBlank ? nil : $0 }
        let filledExtras = new.extras.filter { !$0.value.isBlank }
        let credential = Credential(
            id: Identifier.make("key"), scope: new.scope, providerID: new.providerID, description: new.description,
            defaultModel: new.defaultModel, role: new.role, weight: new.weight, position: new.position, active: new.active,
            hint: key?.maskedHint ?? "", fingerprint: key.flatMap { fingerprinter?.fingerprint(of: $0) },
            extrasSet: filledExtras.keys.sorted(), createdAt: now, createdBy: actor, updatedAt: now, updatedBy: actor
        )
        try await db.insert(into: Self.table).columns(Self.columns).values(Self.binds(credential)).run()
        if let key {
            let context = Self.context(credential, field: Self.keyField)
            try await secrets.put(try vault.seal(key, in: context), for: context, on: db)
        }
        if !filledExtras.isEmpty {
            let context = Self.context(credential, field: Self.extrasField)
            try await secrets.put(try vault.seal(Self.encodeExtras(filledExtras), in: context), for: context, on: db)
        }
        try await audit.append(AuditEvent(
            actor: actor, action: "credential.created", targetType: "credential", targetID: credential.id,
            workspaceID: credential.scope.workspaceID,
            details: ["provider": credential.providerID, "hint": credential.hint, "extras": credential.extrasSet.joined(separator: ",")],
            secretFingerprint: credential.fingerprint
        ), on: db)
        return credential
    }

    /// One credential's metadata.
    public func get(_ id: String, on db: any SQLDatabase) async throws -> Credential? {
        try await db.select().column("*").from(Self.table).where("id", .equal, id).first().map(Self.decode)
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
        return try vault.open(sealed, in: context)
    }

    /// Opens a credential's extras (empty when none are stored).
    public func openExtras(of credential: Credential, on db: any SQLDatabase) async throws -> [String: Secret] {
        let context = Self.context(credential, field: Self.extrasField)
        guard let sealed = try await secrets.get(context, on: db) else { return [:] }
        return try Self.decodeExtras(try vault.open(sealed, in: context))
    }

    // MARK: Row mapping

    static let columns = [
        "id", "scope", "workspace_id", "provider_id", "description", "default_model", "role", "weight", "position",
        "active", "status", "last_verified_at", "last_error", "hint", "fingerprint", "extras_set",
        "created_at", "created_by", "updated_at", "updated_by",
    ]

    static func binds(_ c: Credential) -> [any SQLExpression] {
        [
            SQLBind(c.id), SQLBind(c.scope.workspaceID == nil ? "platform" : "workspace"), SQLBind(c.scope.workspaceID),
            SQLBind(c.providerID), SQLBind(c.description), SQLBind(c.defaultModel), SQLBind(c.role.rawValue),
            SQLBind(c.weight), SQLBind(c.position), SQLBind(c.active), SQLBind(c.status.rawValue),
            SQLBind(c.lastVerifiedAt.map(Timestamp.string)), SQLBind(c.lastError), SQLBind(c.hint), SQLBind(c.fingerprint),
            SQLBind(encodeList(c.extrasSet)), SQLBind(Timestamp.string(c.createdAt)), SQLBind(c.createdBy),
            SQLBind(Timestamp.string(c.updatedAt)), SQLBind(c.updatedBy),
        ]
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
            extrasSet: decodeList(try row.decode(column: "extras_set", as: String.self)),
            createdAt: Timestamp.date(try row.decode(column: "created_at", as: String.self)) ?? .distantPast,
            createdBy: try row.decode(column: "created_by", as: String.self),
            updatedAt: Timestamp.date(try row.decode(column: "updated_at", as: String.self)) ?? .distantPast,
            updatedBy: try row.decode(column: "updated_by", as: String.self)
        )
    }

    static func encodeList(_ list: [String]) -> String {
        (try? String(decoding: JSONEncoder().encode(list), as: UTF8.self)) ?? "[]"
    }

    static func decodeList(_ text: String) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }

    /// Extras travel sealed as one JSON object; the values leave `Secret` only inside this encoding.
    static func encodeExtras(_ extras: [String: Secret]) -> Secret {
        let plain = extras.mapValues(\.unprotectedString)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Secret(bytes: Array((try? encoder.encode(plain)) ?? Data("{}".utf8)))
    }

    static func decodeExtras(_ secret: Secret) throws -> [String: Secret] {
        let plain = try secret.withPlaintext { try JSONDecoder().decode([String: String].self, from: Data($0)) }
        return plain.mapValues(Secret.init)
    }
}
