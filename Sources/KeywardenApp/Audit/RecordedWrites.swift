import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import SQLKit

/// The store's writes people must be able to trace, each with its audit entry, in the caller's transaction.
/// Repositories write rows; this layer (and only this one) says who did what in the audit log.
extension AppServices {
    /// Stores a new credential and its sealed secrets, audited with the key's fingerprint.
    public func createCredential(_ new: NewCredential, actor: String, on db: any SQLDatabase) async throws -> Credential {
        let credential = try await store.credentials.insert(new, actor: actor, on: db)
        try await store.audit.append(AuditEvent(
            actor: actor, action: "credential.created", targetType: "credential", targetID: credential.id,
            workspaceID: credential.scope.workspaceID,
            details: ["provider": credential.providerID, "hint": credential.hint, "extras": credential.extrasSet.joined(separator: ",")],
            secretFingerprint: credential.fingerprint
        ), on: db)
        return credential
    }

    /// Applies changes (leave-blank-to-keep), audited with what changed (and the new key's fingerprint); nothing is
    /// written, nor audited, when nothing changed.
    public func updateCredential(_ credential: Credential, with changes: CredentialChanges, actor: String, on db: any SQLDatabase) async throws -> (Credential, [String]) {
        let (updated, changed) = try await store.credentials.update(credential, with: changes, actor: actor, on: db)
        guard !changed.isEmpty else { return (updated, changed) }
        try await store.audit.append(AuditEvent(
            actor: actor, action: "credential.updated", targetType: "credential", targetID: credential.id,
            workspaceID: credential.scope.workspaceID,
            details: ["provider": credential.providerID, "changed": changed.joined(separator: ",")]
                .merging(Self.changes(from: credential, to: updated, changed)) { $1 },
            secretFingerprint: changed.contains("api_key") ? updated.fingerprint : nil
        ), on: db)
        return (updated, changed)
    }

    /// Deletes a credential and its sealed secrets, audited.
    public func deleteCredential(_ credential: Credential, actor: String, on db: any SQLDatabase) async throws {
        try await store.credentials.delete(credential, actor: actor, on: db)
        try await store.audit.append(AuditEvent(
            actor: actor, action: "credential.deleted", targetType: "credential", targetID: credential.id,
            workspaceID: credential.scope.workspaceID,
            details: ["provider": credential.providerID, "hint": credential.hint],
            secretFingerprint: credential.fingerprint
        ), on: db)
    }

    /// Issues a token (the returned value is the only copy), audited without it.
    public func issueToken(
        name: String, kind: TokenKind, workspaceID: String? = nil, memberID: String? = nil, role: MemberRole? = nil,
        permissions: [Permission] = [], actor: String, on db: any SQLDatabase
    ) async throws -> (AccessToken, TokenRecord) {
        let (token, record) = try await store.tokens.issue(
            name: name, kind: kind, workspaceID: workspaceID, memberID: memberID, role: role, permissions: permissions, actor: actor, on: db
        )
        try await store.audit.append(AuditEvent(
            actor: actor, action: "token.created", targetType: "token", targetID: record.id, workspaceID: workspaceID,
            details: [
                "kind": kind.rawValue, "name": name, "prefix": record.displayPrefix,
                "role": role?.rawValue ?? "", "permissions": record.permissions.map(\.rawValue).joined(separator: ","),
            ]
        ), on: db)
        return (token, record)
    }

    /// Revokes a live token, audited; whether one was revoked.
    public func revokeToken(_ id: String, actor: String, on db: any SQLDatabase) async throws -> Bool {
        guard let record = try await store.tokens.get(id, on: db), try await store.tokens.revoke(id, actor: actor, on: db) else { return false }
        try await store.audit.append(AuditEvent(
            actor: actor, action: "token.revoked", targetType: "token", targetID: id, workspaceID: record.workspaceID,
            details: ["kind": record.kind.rawValue, "name": record.name, "prefix": record.displayPrefix]
        ), on: db)
        return true
    }

    /// Creates a workspace, audited.
    public func createWorkspace(name: String, byokAllowed: Bool, exclusive: Bool, actor: String, on db: any SQLDatabase) async throws -> Workspace {
        let workspace = try await store.workspaces.create(name: name, byokAllowed: byokAllowed, exclusive: exclusive, actor: actor, on: db)
        try await store.audit.append(AuditEvent(
            actor: actor, action: "workspace.created", targetType: "workspace", targetID: workspace.id, workspaceID: workspace.id,
            details: ["name": name, "byok_allowed": "\(byokAllowed)", "exclusive": "\(exclusive)"]
        ), on: db)
        return workspace
    }
}

extension AppServices {
    /// What changed, as `before.<field>` and `after.<field>` (`-` for none): the key itself by fingerprint, never by
    /// value; an extra only by name (extras are sealed like the key).
    static func changes(from before: Credential, to after: Credential, _ changed: [String]) -> [String: String] {
        func day(_ date: Date?) -> String { date.map { String(Timestamp.string($0).prefix(10)) } ?? "-" }
        var details: [String: String] = [:]
        for field in changed {
            let pair: (String, String)? = switch field {
            case "description": (before.description, after.description)
            case "api_key": (before.fingerprint.map { "fingerprint " + $0 } ?? "-", after.fingerprint.map { "fingerprint " + $0 } ?? "-")
            case "default_model": (before.defaultModel ?? "-", after.defaultModel ?? "-")
            case "role": (before.role.rawValue, after.role.rawValue)
            case "weight": (String(before.weight), String(after.weight))
            case "active": (String(before.active), String(after.active))
            case "expires_at": (day(before.lifecycle.expiresAt), day(after.lifecycle.expiresAt))
            case "rotate_by_days": (before.lifecycle.rotateByDays.map(String.init) ?? "-", after.lifecycle.rotateByDays.map(String.init) ?? "-")
            default: nil
            }
            guard let (old, new) = pair else { continue }
            details["before.\(field)"] = old
            details["after.\(field)"] = new
        }
        return details
    }
}

extension AppServices {
    /// The values of a key's settings that are not secret (a default max tokens, an API version, a region, an
    /// endpoint: every extra field whose kind is not `secret`), opened to be shown and edited; an extra that does not
    /// open, or a URL carrying credentials, is left out (its field stays "saved — leave blank to keep").
    public func visibleExtras(of credential: Credential) async throws -> [String: String] {
        guard let provider = store.catalog.provider(credential.providerID) else { return [:] }
        let visible = Set(provider.extraFields.filter { $0.kind != .secret }.map(\.id))
        guard !visible.isDisjoint(with: credential.extrasSet) else { return [:] }
        let opened = try await store.engine.read { db in try await VaultError.unlessUnreadable { try await self.store.credentials.openExtras(of: credential, on: db) } } ?? [:]
        // A URL that carries credentials (a user and password, a query such as `?api_key=`) stays masked.
        let urls = Set(provider.extraFields.filter { $0.kind == .url }.map(\.id))
        return opened.filter { visible.contains($0.key) }.mapValues(\.unprotectedString).filter { id, value in
            guard urls.contains(id) else { return true }
            guard let components = URLComponents(string: value) else { return false }
            return components.user == nil && components.password == nil && components.query == nil && components.fragment == nil
        }
    }
}
