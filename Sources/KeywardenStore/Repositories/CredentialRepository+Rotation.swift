import Foundation
import KeywardenCore
import KeywardenVault
import SQLKit

extension CredentialRepository {
    // MARK: Guided rotation: the key keeps its id; its secrets move between vault fields

    /// Opens one of a credential's secret fields: `nil` when none is stored, ``VaultError`` when it does not open.
    public func openSecret(of credential: Credential, field: String, on db: any SQLDatabase) async throws -> Secret? {
        let context = Self.context(credential, field: field)
        guard let sealed = try await secrets.get(context, on: db) else { return nil }
        return try await vault.open(sealed, in: context, on: db)
    }

    /// Stages a new secret beside the current one (replacing one staged before), in the caller's transaction.
    public func stage(_ key: Secret, on credential: Credential, actor: String, on db: any SQLDatabase) async throws -> Credential {
        let context = Self.context(credential, field: Self.stagedKeyField)
        try await secrets.put(try await vault.seal(key, in: context, on: db), for: context, on: db)
        var updated = credential
        updated.lifecycle.staged = StagedKey(hint: key.maskedHint, fingerprint: fingerprinter?.fingerprint(of: key), stagedAt: Date(), stagedBy: actor)
        updated.updatedAt = Date()
        updated.updatedBy = actor
        try await write(updated, on: db)
        return updated
    }

    /// Promotes the staged secret: it becomes the key's secret (with its test's verdict), and the secret it replaces
    /// is kept as the key's fallback until `graceUntil`. Every secret is opened and sealed again under its new field
    /// (a ciphertext is bound to its field).
    public func promoteStaged(of credential: Credential, graceUntil: Date, actor: String, on db: any SQLDatabase) async throws -> Credential {
        guard let staged = credential.lifecycle.staged,
              let next = try await openSecret(of: credential, field: Self.stagedKeyField, on: db) else {
            throw KeywardenError(.conflict, code: "nothing_staged", message: "No new key is staged for this key; add one first.")
        }
        let now = Date()
        var updated = credential
        if let current = try await VaultError.unlessUnreadable({ try await openSecret(of: credential, field: Self.keyField, on: db) }) ?? nil, !credential.hint.isEmpty {
            let context = Self.context(credential, field: Self.previousKeyField)
            try await secrets.put(try await vault.seal(current, in: context, on: db), for: context, on: db)
            updated.lifecycle.previous = PreviousKey(hint: credential.hint, until: graceUntil)
        } else {
            // A current secret that does not open cannot serve as a fallback: it is replaced outright.
            try await dropSecret(of: credential, field: Self.previousKeyField, on: db)
            updated.lifecycle.previous = nil
        }
        let context = Self.context(credential, field: Self.keyField)
        try await secrets.put(try await vault.seal(next, in: context, on: db), for: context, on: db)
        try await dropSecret(of: credential, field: Self.stagedKeyField, on: db)
        updated.hint = staged.hint
        updated.fingerprint = staged.fingerprint
        updated.status = staged.status
        updated.lastVerifiedAt = staged.checkedAt
        updated.lastError = staged.status == .valid ? nil : staged.message
        updated.lifecycle.staged = nil
        updated.lifecycle.keySetAt = now
        // The expiry date was the old secret's; the new one's is set anew if it has one.
        updated.lifecycle.expiresAt = nil
        updated.lifecycle.expiryNoticeFor = nil
        updated.updatedAt = now
        updated.updatedBy = actor
        try await write(updated, on: db)
        return updated
    }

    /// Removes a secret field of a credential, if stored.
    public func dropSecret(of credential: Credential, field: String, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.credential(credential.id))
        try await db.delete(from: SealedSecretRepository.table)
            .where("owner_id", .equal, credential.id).where("field", .equal, field).run()
    }

    /// Keys the lifecycle sweep has something to do for at `now`: a grace period ended, an expiry within
    /// `noticeDays` not announced yet, a rotation due not announced yet (indexed comparisons; every other key is not read).
    public func dueForLifecycle(now: Date, noticeDays: Int, on db: any SQLDatabase) async throws -> [Credential] {
        let moment = Timestamp.string(now)
        let horizon = Timestamp.string(now.addingTimeInterval(TimeInterval(noticeDays) * 86_400))
        return try await db.select().column("*").from(Self.table)
            .where { group in
                group.where("previous_until", .lessThanOrEqual, moment)
                    .orWhere { expiring in
                        expiring.where("expires_at", .lessThanOrEqual, horizon)
                            .where { $0.where("expiry_notice_for", .is, SQLLiteral.null).orWhere(SQLColumn("expiry_notice_for"), .notEqual, SQLColumn("expires_at")) }
                    }
                    .orWhere { due in
                        due.where("rotation_due_at", .lessThanOrEqual, moment)
                            .where { $0.where("rotation_notice_for", .is, SQLLiteral.null).orWhere(SQLColumn("rotation_notice_for"), .notEqual, SQLColumn("key_set_at")) }
                    }
            }
            .orderBy("id")
            .limit(1000)
            .all().map(Self.decode)
    }
}
