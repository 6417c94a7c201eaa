import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import SQLKit

/// What wraps the workspace's new key in a rotation.
public enum WorkspaceKeyWrapping: Sendable, Equatable {
    /// What wraps its newest key now: the master key, or its own KMS key (a routine rotation changes neither).
    case keep
    /// Keywarden's master key.
    case masterKey
    /// The workspace's own KMS key.
    case customerKey(CustomerKeyARN)
}

/// What a workspace-key rotation did.
public struct WorkspaceKeyRotationReport: Sendable, Equatable {
    /// The workspace's new key.
    public let newKeyID: String
    /// Data keys moved to it.
    public let rewrapped: Int
    /// Secrets that open under no key (left as they are, still naming their old key).
    public let unreadable: Int
    /// The workspace's older keys deleted, once no secret named them.
    public let retired: [String]
}

/// Rotates one workspace's key: a new key for the workspace, its secrets' data keys moved to it (the secrets are not
/// re-encrypted), then its older keys deleted once nothing names them.
///
/// Runs alone with master-key rotations (the same lock). The server keeps serving: each batch is one short transaction,
/// and the keys it changed are reloaded by every instance through the change log.
public struct WorkspaceKeyRotation: Sendable {
    let app: AppServices
    var store: Store { app.store }

    /// Rotates `workspaceID`'s key to a new one wrapped as `wrapping` says; `not_found` for an unknown workspace.
    ///
    /// First every key of the workspace under a customer's KMS key is checked with that KMS (not the copy in memory): a
    /// key its customer revoked stops the rotation (`customer_key_revoked`), unless `abandoningRevoked` (a platform
    /// admin's way out of a key that is gone for good: the secrets under it are left as they are, unreadable).
    public func run(workspaceID: String, actor: String, wrapping: WorkspaceKeyWrapping = .keep, abandoningRevoked: Bool = false,
                    batchSize: Int = 500) async throws -> WorkspaceKeyRotationReport {
        guard try await store.engine.read({ db in try await self.store.workspaces.get(workspaceID, on: db) }) != nil else {
            throw KeywardenError.notFound("workspace")
        }
        // Batches are small: each transaction keeps the ordinary deadline.
        return try await store.engine.withExclusiveLock(MasterKeyRotation.lockName) {
            try await self.runAlone(workspaceID: workspaceID, actor: actor, wrapping: wrapping, abandoningRevoked: abandoningRevoked,
                                    batchSize: max(1, batchSize))
        }
    }

    private func runAlone(workspaceID: String, actor: String, wrapping: WorkspaceKeyWrapping, abandoningRevoked: Bool,
                          batchSize: Int) async throws -> WorkspaceKeyRotationReport {
        let scope = Scope.workspace(workspaceID)
        let existing = try await store.engine.read { db in try await ScopeKeyRepository().keys(of: scope, on: db) }
        // Every key the secrets are under must open, by its KMS's answer now, before a new one becomes the workspace's
        // newest: a customer key that refuses would otherwise leave the secrets under it while the workspace seemed to
        // have moved off it, and a key revoked a moment ago would be moved off with the copy still held in memory.
        for stored in existing where stored.isUnderCustomerKey {
            do throws(VaultError) {
                try await store.vault.checkCustomerKey(stored)
            } catch {
                guard error.isCustomerKeyRevoked, abandoningRevoked else { throw error }
                store.logger.warning("workspace key under a revoked customer key abandoned: the secrets under it stay unreadable", metadata: [
                    "workspace": "\(workspaceID)", "workspace_key": "\(stored.id)", "reason": "\(error)",
                ])
            }
        }
        let customerKey: CustomerKeyARN? = switch wrapping {
        case .keep: existing.first?.customerKey
        case .masterKey: nil
        case .customerKey(let key): key
        }
        let newKey = try await store.vault.makeScopeKey(for: scope, keys: store.scopeKeys, customerKey: customerKey)
        var rewrapped = 0
        var unreadable = Set<[String]>()
        // Passes repeat until one moves nothing: a secret sealed meanwhile under an older key is caught by the next.
        while true {
            var movedThisPass = 0
            var after = ("", "")
            while true {
                try Task.checkCancellation()
                let rows = try await store.engine.read { [after] db in
                    try await db.select().columns("owner_id", "field", "wrapped_key").from(SealedSecretRepository.table)
                        .where("scope", .equal, scope.description).where("master_key_id", .notEqual, newKey.id)
                        .where(SQLBinaryExpression(SQLGroupExpression([SQLColumn("owner_id"), SQLColumn("field")]), .greaterThan,
                                                   SQLGroupExpression([SQLBind(after.0), SQLBind(after.1)])))
                        .orderBy("owner_id").orderBy("field").limit(batchSize).all()
                        .map { (try $0.decode(column: "owner_id", as: String.self), try $0.decode(column: "field", as: String.self),
                                Array(try $0.decode(column: "wrapped_key", as: Data.self))) }
                }
                guard let last = rows.last else { break }
                after = (last.0, last.1)
                var updates: [(owner: String, field: String, old: [UInt8], new: SealedSecret)] = []
                for (owner, field, wrapped) in rows {
                    let context = SecretContext(scope: scope, ownerID: owner, field: field)
                    do {
                        let moved = try await store.vault.rewrap(SealedSecret(wrappedKey: wrapped, ciphertext: []), in: context, to: newKey, keys: store.scopeKeys)
                        updates.append((owner, field, wrapped, moved))
                    } catch let error as VaultError where !error.isCustodyUnavailable || (abandoningRevoked && error.isCustomerKeyRevoked) {
                        if unreadable.insert([owner, field]).inserted {
                            store.logger.warning("secret does not open with its workspace's keys; left as it is", metadata: [
                                "owner": "\(owner)", "field": "\(field)", "reason": "\(error)",
                            ])
                        }
                    }
                }
                movedThisPass += try await store.engine.transaction { [updates] db in
                    var moved = 0
                    for update in updates {
                        // Only if nobody sealed it again meanwhile (the next pass takes that one).
                        let changed = try await db.update(SealedSecretRepository.table)
                            .set("master_key_id", to: newKey.id).set("wrapped_key", to: Data(update.new.wrappedKey)).set("updated_at", to: Timestamp.now)
                            .where("owner_id", .equal, update.owner).where("field", .equal, update.field).where("wrapped_key", .equal, Data(update.old))
                            .returning("owner_id").all()
                        if !changed.isEmpty {
                            // Instances holding this key's sealed copy read it again (its old workspace key is about to go).
                            ChangeLog.touch(.credential(update.owner))
                            moved += 1
                        }
                    }
                    return moved
                }
            }
            rewrapped += movedThisPass
            if movedThisPass == 0 { break }
        }
        // The older keys go once no secret names them (an unreadable one keeps its key).
        let retired: [String] = try await store.engine.transaction { [rewrapped, unreadable = unreadable.count] db in
            guard try await self.store.workspaces.get(workspaceID, on: db) != nil else { throw KeywardenError.notFound("workspace") }
            let candidates = try await db.select().column("id").from(ScopeKeyRepository.table)
                .where("scope", .equal, scope.description).where("id", .notEqual, newKey.id).all()
                .map { try $0.decode(column: "id", as: String.self) }
            var older: [String] = []
            for id in candidates {
                // One row naming it keeps it (by the index of data keys' wrapping keys).
                let named = try await db.select().column("owner_id").from(SealedSecretRepository.table).where("master_key_id", .equal, id).limit(1).first()
                if named == nil { older.append(id) }
            }
            for id in older { try await db.delete(from: ScopeKeyRepository.table).where("id", .equal, id).run() }
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "workspace.key_rotated", targetType: "workspace", targetID: workspaceID, workspaceID: workspaceID,
                details: ["workspace_key": newKey.id, "wrapped_by": customerKey.map { "customer key \($0.arn)" } ?? "master key", "rewrapped": "\(rewrapped)", "unreadable": "\(unreadable)", "retired": older.joined(separator: ",")]
            ), on: db)
            return older
        }
        return WorkspaceKeyRotationReport(newKeyID: newKey.id, rewrapped: rewrapped, unreadable: unreadable.count, retired: retired)
    }
}

extension AppServices {
    /// A rotation of one workspace's key.
    public var workspaceKeyRotation: WorkspaceKeyRotation { WorkspaceKeyRotation(app: self) }
}
