import Foundation
import KeywardenCore
import KeywardenProviders
import KeywardenStore
import KeywardenVault
import SQLKit

/// The guided rotation of a vendor key under its stable id: stage the new secret → test it → promote it (the old
/// secret stays the key's fallback for a grace period) → finish (the old secret is removed; the lifecycle sweep does
/// it when the grace period ends). Bindings and callers keep naming the same key throughout.
public struct KeyRotationService: Sendable {
    /// Which key a rotation is about: a workspace's own key, or the platform's key of a provider (its card).
    public enum Reference: Sendable, Equatable {
        case workspace(workspaceID: String, keyID: String)
        case platform(providerID: String)

        /// The scope whose key seals the key's secrets.
        var scope: Scope {
            switch self {
            case .workspace(let workspaceID, _): return .workspace(workspaceID)
            case .platform: return .platform
            }
        }
    }

    let app: AppServices
    var store: Store { app.store }

    /// The grace period when none is given.
    public static let defaultGraceHours = 24
    /// The longest grace period, in hours.
    public static let maximumGraceHours = KeyLifecycle.maximumDays * 24

    /// Stages `key` as the key's next secret (replacing one staged before); the current secret keeps serving.
    public func stage(_ reference: Reference, key: Secret, actor: String) async throws -> Credential {
        guard !key.isBlank else { throw KeywardenError.missing("api_key", "api_key is required: the new key to rotate to.") }
        try await store.vault.prepare(reference.scope, keys: store.scopeKeys)
        return try await store.engine.transaction { db in
            let credential = try await self.credential(reference, on: db)
            guard let provider = self.store.catalog.provider(credential.providerID) else { throw KeywardenError.unknownProvider(credential.providerID) }
            guard provider.keyField != nil else {
                throw KeywardenError(.conflict, code: "no_key_field", message: "\(provider.displayName) takes no API key to rotate.")
            }
            try provider.validateKey(key)
            let fingerprint = self.store.credentials.fingerprint(of: key)
            if let fingerprint, fingerprint == credential.fingerprint {
                throw KeywardenError(.conflict, code: "same_key", message: "This is the key already in use; rotate to a new one.", field: "api_key")
            }
            try await self.app.keys.refuseDuplicate(fingerprint: fingerprint, in: credential.scope, except: credential.id, on: db)
            let staged = try await self.store.credentials.stage(key, on: credential, actor: actor, on: db)
            try await self.audit("key.rotation_staged", staged, actor: actor, details: ["staged_hint": staged.lifecycle.staged?.hint ?? ""],
                                 fingerprint: staged.lifecycle.staged?.fingerprint, on: db)
            return staged
        }
    }

    /// Records the verdict of the staged secret's test, unless it was replaced or promoted meanwhile.
    public func recordStagedTest(_ reference: Reference, hint: String, stagedAt: Date, result: VerificationResult, actor: String) async throws -> Credential {
        try await store.engine.transaction { db in
            var credential = try await self.credential(reference, on: db)
            guard var staged = credential.lifecycle.staged, staged.hint == hint, staged.stagedAt == stagedAt else { return credential }
            staged.status = result.status
            staged.message = result.status == .valid ? nil : result.message
            staged.checkedAt = result.checkedAt
            credential.lifecycle.staged = staged
            try await self.store.credentials.write(credential, on: db)
            try await self.audit("key.rotation_tested", credential, actor: actor, details: ["status": result.status.rawValue],
                                 fingerprint: staged.fingerprint, on: db)
            return credential
        }
    }

    /// Promotes the staged secret: it serves from now on, and the secret it replaces stays the key's fallback for
    /// `graceHours` (0: removed at once). Refused while the staged secret's last test did not pass, unless `force`.
    public func promote(_ reference: Reference, graceHours: Int?, force: Bool, actor: String) async throws -> Credential {
        let hours = graceHours ?? Self.defaultGraceHours
        try NumberField.check(hours, field: "grace_hours", in: 0...Self.maximumGraceHours)
        try await store.vault.prepare(reference.scope, keys: store.scopeKeys)
        return try await store.engine.transaction { db in
            let credential = try await self.credential(reference, on: db)
            guard let staged = credential.lifecycle.staged else {
                throw KeywardenError(.conflict, code: "nothing_staged", message: "No new key is staged for this key; add one first.")
            }
            let testable = self.store.catalog.provider(credential.providerID)?.verification.available == true
            if testable, staged.status != .valid, !force {
                let said = staged.status == .unverified ? "it has not been tested yet" : "its last test said \(staged.status.rawValue)"
                throw KeywardenError(.conflict, code: "staged_key_not_verified",
                                     message: "Test the new key before promoting it (\(said)), or promote with force.")
            }
            // A current secret this instance cannot open (a master key not distributed yet) would be lost, not kept.
            if !credential.hint.isEmpty, hours > 0, try await self.store.credentials.keyIsReadable(credential, on: db) == false, !force {
                throw KeywardenError(.conflict, code: "current_key_unreadable",
                                     message: "The key's current secret cannot be opened here, so it cannot stay as the fallback; promote with force to replace it outright.")
            }
            // Another key may have taken the same secret since it was staged.
            try await self.app.keys.refuseDuplicate(fingerprint: staged.fingerprint, in: credential.scope, except: credential.id, subject: "The new key", on: db)
            let until = Date().addingTimeInterval(TimeInterval(hours) * 3600)
            let replacedPrevious = credential.lifecycle.previous?.hint
            var promoted = try await self.store.credentials.promoteStaged(of: credential, graceUntil: until, actor: actor, on: db)
            if hours == 0, promoted.lifecycle.previous != nil {
                try await self.store.credentials.dropSecret(of: promoted, field: CredentialRepository.previousKeyField, on: db)
                promoted.lifecycle.previous = nil
                try await self.store.credentials.write(promoted, on: db)
            }
            var details = ["previous_hint": credential.hint, "hint": promoted.hint]
            // An old secret kept from an earlier rotation is replaced (a key keeps one fallback secret).
            if let replacedPrevious { details["dropped_previous_hint"] = replacedPrevious }
            if let expiry = credential.lifecycle.expiresAt { details["cleared_expires_at"] = Timestamp.string(expiry) }
            if let previous = promoted.lifecycle.previous { details["previous_until"] = Timestamp.string(previous.until) }
            try await self.audit("key.rotation_promoted", promoted, actor: actor, details: details, fingerprint: promoted.fingerprint, on: db)
            return promoted
        }
    }

    /// Ends a rotation's grace period now: the old secret is removed.
    public func finish(_ reference: Reference, actor: String) async throws -> Credential {
        try await store.engine.transaction { db in
            let credential = try await self.credential(reference, on: db)
            guard credential.lifecycle.previous != nil else {
                throw KeywardenError(.conflict, code: "no_previous_key", message: "This key keeps no previous secret; there is nothing to finish.")
            }
            return try await self.dropPrevious(credential, actor: actor, reason: "finished", on: db)
        }
    }

    /// Drops the staged secret (before it is promoted).
    public func cancel(_ reference: Reference, actor: String) async throws -> Credential {
        try await store.engine.transaction { db in
            var credential = try await self.credential(reference, on: db)
            guard let staged = credential.lifecycle.staged else {
                throw KeywardenError(.conflict, code: "nothing_staged", message: "No new key is staged for this key.")
            }
            try await self.store.credentials.dropSecret(of: credential, field: CredentialRepository.stagedKeyField, on: db)
            credential.lifecycle.staged = nil
            credential.updatedAt = Date()
            credential.updatedBy = actor
            try await self.store.credentials.write(credential, on: db)
            try await self.audit("key.rotation_cancelled", credential, actor: actor, details: ["staged_hint": staged.hint],
                                 fingerprint: staged.fingerprint, on: db)
            return credential
        }
    }

    /// Opens the staged secret and the key's extras, for its test.
    public func openStaged(_ credential: Credential) async throws -> (key: Secret, extras: [String: Secret]) {
        try await store.engine.read { db in
            guard let key = try await self.store.credentials.openSecret(of: credential, field: CredentialRepository.stagedKeyField, on: db) else {
                throw KeywardenError(.conflict, code: "nothing_staged", message: "No new key is staged for this key; add one first.")
            }
            return (key, try await VaultError.unlessUnreadable { try await self.store.credentials.openExtras(of: credential, on: db) } ?? [:])
        }
    }

    // MARK: Shared steps

    /// Removes the old secret of a promoted key and records why (`finished` by a person, `grace_ended` by the sweep).
    func dropPrevious(_ credential: Credential, actor: String, reason: String, on db: any SQLDatabase) async throws -> Credential {
        var credential = credential
        let hint = credential.lifecycle.previous?.hint ?? ""
        try await store.credentials.dropSecret(of: credential, field: CredentialRepository.previousKeyField, on: db)
        credential.lifecycle.previous = nil
        try await store.credentials.write(credential, on: db)
        try await audit("key.rotation_finished", credential, actor: actor, details: ["previous_hint": hint, "reason": reason], fingerprint: nil, on: db)
        return credential
    }

    /// The key a reference names, in the caller's transaction (404 across workspaces).
    public func credential(_ reference: Reference, on db: any SQLDatabase) async throws -> Credential {
        switch reference {
        case .workspace(let workspaceID, let keyID):
            guard let credential = try await store.credentials.get(keyID, scope: .workspace(workspaceID), on: db) else { throw KeywardenError.notFound("key") }
            return credential
        case .platform(let providerID):
            guard store.catalog.provider(providerID) != nil else { throw KeywardenError.notFound("provider") }
            guard let credential = try await app.platformCards.platformCredential(providerID, on: db) else {
                throw KeywardenError(.conflict, code: "key_required", message: "Add an API key before rotating it.", field: "api_key")
            }
            return credential
        }
    }

    func audit(_ action: String, _ credential: Credential, actor: String, details: [String: String], fingerprint: String?, on db: any SQLDatabase) async throws {
        var details = details
        details["provider"] = credential.providerID
        try await store.audit.append(AuditEvent(
            actor: actor, action: action, targetType: "credential", targetID: credential.id,
            workspaceID: credential.scope.workspaceID, details: details, secretFingerprint: fingerprint
        ), on: db)
        // The steps that open or seal the key's secrets are in its workspace's custody log (a staged secret's test as a
        // test); a cancel or a finish only drops one.
        switch action {
        case "key.rotation_tested": try await app.custody.record(.test, of: credential, actor: actor, on: db)
        case "key.rotation_staged", "key.rotation_promoted": try await app.custody.record(.rotation, of: credential, actor: actor, on: db)
        default: break
        }
    }
}
