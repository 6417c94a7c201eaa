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
    /// What the KMS said, in words (the customer's KMS's own message; never key material).
    public let detail: String?

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

    /// The workspace's customer key and its state now (`nil`: its key is wrapped by the master key). Asks the KMS only
    /// when the workspace key is not held (within the vault's cache) and no refusal is remembered (a few seconds).
    public func status(workspaceID: String) async throws -> CustomerKeyStatus? {
        let stored = try await store.engine.read { db in
            guard try await self.store.workspaces.get(workspaceID, on: db) != nil else { throw KeywardenError.notFound("workspace") }
            return try await ScopeKeyRepository().activeKey(for: .workspace(workspaceID), on: db)
        }
        guard let stored, let key = stored.customerKey else { return nil }
        func status(_ state: CustomerKeyStatus.State, _ code: String? = nil, _ detail: String? = nil) -> CustomerKeyStatus {
            CustomerKeyStatus(keyARN: key.arn, workspaceKeyID: stored.id, since: stored.createdAt, state: state, code: code, detail: detail)
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
        // The platform's master key is not the customer's to revoke.
        let masterKeys = ([store.vault.custodian.activeKeyID] + store.vault.custodian.decryptOnlyKeyIDs)
            .filter { $0.hasPrefix("kms:") }.map { String($0.dropFirst(4)) }
        if masterKeys.contains(where: { $0 == key.arn || $0 == key.keyID || $0.hasSuffix("/" + key.keyID) }) {
            throw KeywardenError.invalid("key_arn", "That is Keywarden's own master key; name a key of the workspace's own.", code: "invalid_customer_key")
        }
        let rotation: WorkspaceKeyRotationReport
        do {
            rotation = try await app.workspaceKeyRotation.run(workspaceID: workspaceID, actor: actor, customerKey: key)
        } catch VaultError.customerKeyRevoked(let code, let detail) {
            throw KeywardenError(.unprocessable, code: "customer_key_refused",
                                 message: "The KMS key refused Keywarden (\(code)): \(detail). Enable the key, and grant Keywarden's AWS principal kms:Encrypt and kms:Decrypt in its policy.",
                                 field: "key_arn")
        }
        try await audit(actor: actor, action: "workspace.customer_key_set", workspaceID: workspaceID,
                        details: ["key_arn": key.arn, "workspace_key": rotation.newKeyID, "rewrapped": "\(rotation.rewrapped)"])
        return CustomerKeyChange(status: try await status(workspaceID: workspaceID), rotation: rotation)
    }

    /// Puts the workspace's secrets back under a workspace key the master key wraps. The customer's key must still let
    /// Keywarden decrypt (the secrets are under it until they moved): a revoked key is `customer_key_revoked`.
    public func remove(workspaceID: String, actor: String) async throws -> CustomerKeyChange {
        guard let current = try await status(workspaceID: workspaceID) else { throw KeywardenError.notFound("customer key") }
        let rotation = try await app.workspaceKeyRotation.run(workspaceID: workspaceID, actor: actor, customerKey: nil)
        try await audit(actor: actor, action: "workspace.customer_key_removed", workspaceID: workspaceID,
                        details: ["key_arn": current.keyARN, "workspace_key": rotation.newKeyID, "rewrapped": "\(rotation.rewrapped)"])
        return CustomerKeyChange(status: nil, rotation: rotation)
    }

    private func audit(actor: String, action: String, workspaceID: String, details: [String: String]) async throws {
        _ = try await store.engine.transaction { db in
            try await self.store.audit.append(AuditEvent(actor: actor, action: action, targetType: "workspace", targetID: workspaceID,
                                                         workspaceID: workspaceID, details: details), on: db)
        }
    }
}

extension CustomerKeyService {
    /// The workspace's customer key and its state, for a principal who reads its keys (`keys.read`).
    public func status(workspaceID: String, principal: Principal) async throws -> CustomerKeyStatus? {
        try principal.authorize(.keysRead, inWorkspace: workspaceID)
        return try await status(workspaceID: workspaceID)
    }

    /// Sets the workspace's own KMS key (its owners: `members.manage`; platform admins).
    public func set(workspaceID: String, keyARN: String, principal: Principal) async throws -> CustomerKeyChange {
        try principal.authorize(.membersManage, inWorkspace: workspaceID)
        return try await set(workspaceID: workspaceID, keyARN: keyARN, actor: principal.actor)
    }

    /// Removes the workspace's own KMS key (its owners: `members.manage`; platform admins).
    public func remove(workspaceID: String, principal: Principal) async throws -> CustomerKeyChange {
        try principal.authorize(.membersManage, inWorkspace: workspaceID)
        return try await remove(workspaceID: workspaceID, actor: principal.actor)
    }
}

extension AppServices {
    /// Workspaces' own KMS keys.
    public var customerKeys: CustomerKeyService { CustomerKeyService(app: self) }
}
