import KeywardenCore
import KeywardenVault

extension KeyRotationService.Reference {
    /// Allows `permission` on the key: a workspace's key by that permission in its workspace, the platform's card key by
    /// a platform admin.
    public func authorize(_ principal: Principal, _ permission: Permission) throws {
        switch self {
        case .workspace(let workspaceID, _): try principal.authorize(permission, inWorkspace: workspaceID)
        case .platform: try principal.authorizePlatform()
        }
    }
}

/// The doors' entry points to a guided rotation: each step authorizes the principal (`keys.update`; the platform's card
/// key, platform admins), then acts as it.
extension KeyRotationService {
    /// Stages a new key beside the current one.
    public func stage(_ reference: Reference, key: Secret, principal: Principal) async throws -> Credential {
        try reference.authorize(principal, .keysUpdate)
        return try await stage(reference, key: key, actor: principal.actor)
    }

    /// Promotes the staged key; the old one serves as its fallback for `graceHours`.
    public func promote(_ reference: Reference, graceHours: Int?, force: Bool, principal: Principal) async throws -> Credential {
        try reference.authorize(principal, .keysUpdate)
        return try await promote(reference, graceHours: graceHours, force: force, actor: principal.actor)
    }

    /// Removes the old key before its grace ends.
    public func finish(_ reference: Reference, principal: Principal) async throws -> Credential {
        try reference.authorize(principal, .keysUpdate)
        return try await finish(reference, actor: principal.actor)
    }

    /// Discards the staged key.
    public func cancel(_ reference: Reference, principal: Principal) async throws -> Credential {
        try reference.authorize(principal, .keysUpdate)
        return try await cancel(reference, actor: principal.actor)
    }
}
