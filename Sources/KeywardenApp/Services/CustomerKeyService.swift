import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import SQLKit

/// A workspace's own KMS key (a customer-managed key) and whether it lets Keywarden in now.
public struct CustomerKeyStatus: Sendable, Equatable {
    /// What the customer's key answers Keywarden now.
    public enum State: String, Sendable {
        /// It opens the workspace's key: the workspace's secrets open.
        case active
        /// It refuses Keywarden (disabled, scheduled for deletion, deleted, access taken away): the customer's decision.
        case revoked
        /// Its KMS cannot be reached or failed (or this instance is not configured for customer keys): not the customer's doing.
        case unavailable
        /// It answers, but the workspace key's box does not open under it (another key, tampered bytes).
        case unreadable
    }

    /// The key's ARN.
    public let keyARN: String
    /// The workspace key it wraps (the workspace's newest).
    public let workspaceKeyID: String
    /// When that workspace key was made (when the customer key was set).
    public let since: String
    public let state: State
    /// The KMS's stable code when not active (`kms_key_disabled`, `kms_access_denied`, `kms_unreachable`, …).
    public let code: String?
    /// What the KMS said, in words (the customer's KMS's own message; never key material). Shown to the workspace's
    /// owners only: it may name Keywarden's AWS principal or endpoint.
    public var detail: String?
    /// Secrets of the workspace not yet under its newest key (a move to or from the customer's key not finished: set
    /// or remove the key again to finish it).
    public let movingSecrets: Int
    /// Whether this key wraps the workspace's newest key; `false`: a removal not finished left secrets under it.
    public let inForce: Bool

    /// Whether the customer revoked Keywarden's access.
    public var isRevoked: Bool { state == .revoked }
}

/// What setting or removing a customer key did.
public struct CustomerKeyChange: Sendable {
    /// The key now in force (`nil` after a removal: the master key wraps the workspace's key).
    public let status: CustomerKeyStatus?
    /// The workspace-key rotation that moved the workspace's secrets.
    public let rotation: WorkspaceKeyRotationReport
}

/// Workspaces' own KMS keys: set one (the workspace's key is rotated to a new one the customer's key wraps), remove it
/// (rotated back under the master key), and read whether it lets Keywarden in.
///
/// The platform lets workspaces bring one with `KEYWARDEN_CUSTOMER_KEYS=aws-kms` (optionally only keys of the accounts
/// in `KEYWARDEN_CUSTOMER_KEY_ACCOUNTS`). The workspace's owners set and remove it (`members.manage`); anyone who reads
/// its keys reads its state.
public struct CustomerKeyService: Sendable {
    let app: AppServices
    var store: Store { app.store }

    /// Whether workspaces may bring their own KMS key on this platform.
    public var isOffered: Bool { store.vault.customerKeys != nil }

    /// The workspace's customer key and its state now (`nil`: no key of the workspace is under one). Asks the KMS only
    /// when the workspace key is not held (within the vault's cache) and no revocation is remembered (a few seconds).
    public func status(workspaceID: String) async throws -> CustomerKeyStatus? {
        let scope = Scope.workspace(workspaceID)
        let (keys, moving) = try await store.engine.read { db in
            guard try await self.store.workspaces.get(workspaceID, on: db) != nil else { throw KeywardenError.notFound("workspace") }
            let keys = try await ScopeKeyRepository().keys(of: scope, on: db)
            guard let newest = keys.first, keys.contains(where: \.isUnderCustomerKey) else { return (keys, 0) }
            let row = try await db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n").from(SealedSecretRepository.table)
                .where("scope", .equal, scope.description).where("master_key_id", .notEqual, newest.id).first()
            return (keys, try row?.decode(column: "n", as: Int.self) ?? 0)
        }
        // The newest key when a customer key wraps it; else an older one still holding secrets (a removal not finished).
        guard let stored = keys.first(where: \.isUnderCustomerKey), let key = stored.customerKey else { return nil }
        func status(_ state: CustomerKeyStatus.State, _ code: String? = nil, _ detail: String? = nil) -> CustomerKeyStatus {
            CustomerKeyStatus(keyARN: key.arn, workspaceKeyID: stored.id, since: stored.createdAt, state: state, code: code, detail: detail,
                              movingSecrets: moving, inForce: stored.id == keys.first?.id)
        }
        do {
            _ = try await store.vault.unwrap(stored)
            return status(.active)
        } catch .customerKeyRevoked(let code, let detail) {
            return status(.revoked, code, detail)
        } catch .custodyUnavailable(let code, let detail) {
            return status(.unavailable, code, detail)
        } catch {
            return status(.unreadable, error.code, error.description)
        }
    }

    /// Puts the workspace's secrets under `keyARN`, the workspace's own KMS key: a new workspace key is wrapped by it
    /// (after Keywarden encrypted and decrypted with it), the secrets' data keys move to it, the older workspace keys go.
    public func set(workspaceID: String, keyARN text: String, actor: String) async throws -> CustomerKeyChange {
        guard let customerKeys = store.vault.customerKeys else {
            throw KeywardenError(.conflict, code: "customer_keys_not_offered",
                                 message: "This platform does not let workspaces bring their own KMS key (KEYWARDEN_CUSTOMER_KEYS is off).")
        }
        let key: CustomerKeyARN
        switch CustomerKeyARN.parse(text) {
        case .success(let parsed): key = parsed
        case .failure(let problem): throw KeywardenError.invalid("key_arn", "The key \(problem).", code: "invalid_customer_key")
        }
        guard customerKeys.allows(key) else {
            throw KeywardenError.invalid("key_arn", "Keys of AWS account \(key.account) are not accepted on this platform.", code: "customer_key_account_not_allowed")
        }
        guard customerKeys.reaches(key) else {
            throw KeywardenError.invalid("key_arn", "The key is in \(key.region); this platform's KMS endpoint serves another region.", code: "invalid_customer_key")
        }
        // The platform's master key is not the customer's to revoke.
        let masterKeys = ([store.vault.custodian.activeKeyID] + store.vault.custodian.decryptOnlyKeyIDs)
            .filter { $0.hasPrefix("kms:") }.map { String($0.dropFirst(4)) }
        if masterKeys.contains(where: { $0 == key.arn || $0 == key.keyID || $0.hasSuffix("/" + key.keyID) }) {
            throw KeywardenError.invalid("key_arn", "That is Keywarden's own master key; name a key of the workspace's own.", code: "invalid_customer_key")
        }
        try await checkCurrentKeys(workspaceID: workspaceID)
        let rotation: WorkspaceKeyRotationReport
        do {
            rotation = try await app.workspaceKeyRotation.run(workspaceID: workspaceID, actor: actor, wrapping: .customerKey(key))
        } catch VaultError.customerKeyRevoked(let code, let detail) {
            throw KeywardenError(.unprocessable, code: "customer_key_refused",
                                 message: "The KMS key refused Keywarden (\(code)): \(detail). Enable the key, and grant Keywarden's AWS principal kms:Encrypt and kms:Decrypt in its policy.",
                                 field: "key_arn")
        }
        try await audit(actor: actor, action: "workspace.customer_key_set", workspaceID: workspaceID,
                        details: ["key_arn": key.arn, "workspace_key": rotation.newKeyID, "rewrapped": "\(rotation.rewrapped)"])
        return CustomerKeyChange(status: try await status(workspaceID: workspaceID), rotation: rotation)
    }

    /// Puts the workspace's secrets back under a workspace key the master key wraps (also finishes a removal that
    /// stopped half way). The customer's key must still let Keywarden decrypt, by its KMS's answer now (the secrets are
    /// under it until they moved): a revoked key is `customer_key_revoked`.
    ///
    /// `abandoning` (platform admins) is the way out of a key that is gone for good: the workspace gets a new key the
    /// master key wraps, so it can store keys again; the secrets under the revoked key stay unreadable ("No key").
    public func remove(workspaceID: String, abandoning: Bool = false, actor: String) async throws -> CustomerKeyChange {
        guard let current = try await status(workspaceID: workspaceID) else { throw KeywardenError.notFound("customer key") }
        let rotation = try await app.workspaceKeyRotation.run(workspaceID: workspaceID, actor: actor, wrapping: .masterKey, abandoningRevoked: abandoning)
        try await audit(actor: actor, action: abandoning ? "workspace.customer_key_abandoned" : "workspace.customer_key_removed", workspaceID: workspaceID,
                        details: ["key_arn": current.keyARN, "workspace_key": rotation.newKeyID, "rewrapped": "\(rotation.rewrapped)",
                                  "unreadable": "\(rotation.unreadable)"])
        return CustomerKeyChange(status: try await status(workspaceID: workspaceID), rotation: rotation)
    }

    /// Checks each key of the workspace under a customer's KMS key with that KMS now: a revoked one stops a change of
    /// the workspace's key (the secrets under it could not move) with `customer_key_revoked`, naming the current key.
    private func checkCurrentKeys(workspaceID: String) async throws {
        let keys = try await store.engine.read { db in try await ScopeKeyRepository().keys(of: .workspace(workspaceID), on: db) }
        for stored in keys where stored.isUnderCustomerKey {
            do throws(VaultError) {
                try await store.vault.checkCustomerKey(stored)
            } catch {
                guard error.isCustomerKeyRevoked else { throw error }
                throw KeywardenError(.forbidden, code: "customer_key_revoked",
                                     message: "The workspace's current KMS key (\(stored.customerKey?.arn ?? stored.masterKeyID)) refuses Keywarden, so the secrets under it cannot move; restore access to it first.")
            }
        }
    }

    private func audit(actor: String, action: String, workspaceID: String, details: [String: String]) async throws {
        _ = try await store.engine.transaction { db in
            try await self.store.audit.append(AuditEvent(actor: actor, action: action, targetType: "workspace", targetID: workspaceID,
                                                         workspaceID: workspaceID, details: details), on: db)
        }
    }
}

extension CustomerKeyService {
    /// The workspace's customer key and its state, for a principal who reads its keys (`keys.read`); the KMS's own
    /// words only for its owners (`members.manage`).
    public func status(workspaceID: String, principal: Principal) async throws -> CustomerKeyStatus? {
        try principal.authorize(.keysRead, inWorkspace: workspaceID)
        guard var status = try await status(workspaceID: workspaceID) else { return nil }
        if principal.decide(.membersManage, inWorkspace: workspaceID) != .allowed { status.detail = nil }
        return status
    }

    /// Sets the workspace's own KMS key (its owners: `members.manage`; platform admins).
    public func set(workspaceID: String, keyARN: String, principal: Principal) async throws -> CustomerKeyChange {
        try principal.authorize(.membersManage, inWorkspace: workspaceID)
        return try await set(workspaceID: workspaceID, keyARN: keyARN, actor: principal.actor)
    }

    /// Removes the workspace's own KMS key (its owners: `members.manage`; platform admins); abandoning a revoked one
    /// is the platform's (platform admins).
    public func remove(workspaceID: String, abandoning: Bool = false, principal: Principal) async throws -> CustomerKeyChange {
        try principal.authorize(.membersManage, inWorkspace: workspaceID)
        if abandoning { try principal.authorizePlatform() }
        return try await remove(workspaceID: workspaceID, abandoning: abandoning, actor: principal.actor)
    }
}

extension AppServices {
    /// Workspaces' own KMS keys.
    public var customerKeys: CustomerKeyService { CustomerKeyService(app: self) }
}
