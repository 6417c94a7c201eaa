import KeywardenCore
import KeywardenStore

/// The doors' entry points: each authorizes the principal it is given, then acts as it. The API and the pages call
/// these, so one check serves both; the command line (the operator at the machine) and Keywarden's own work call the
/// `actor:` forms.
extension KeyService {
    /// A page of the workspace's keys (`keys.read`).
    public func list(workspaceID: String, query: CredentialQuery, principal: Principal) async throws -> (items: [KeyDetails], total: Int) {
        try principal.authorize(.keysRead, inWorkspace: workspaceID)
        return try await list(workspaceID: workspaceID, query: query)
    }

    /// One key (`keys.read`).
    public func get(workspaceID: String, keyID: String, principal: Principal) async throws -> KeyDetails {
        try principal.authorize(.keysRead, inWorkspace: workspaceID)
        return try await get(workspaceID: workspaceID, keyID: keyID)
    }

    /// Stores a new key (`keys.create`).
    public func create(workspaceID: String, _ request: NewKeyRequest, switchExclusive: Bool = false, principal: Principal) async throws -> KeyDetails {
        try principal.authorize(.keysCreate, inWorkspace: workspaceID)
        return try await create(workspaceID: workspaceID, request, switchExclusive: switchExclusive, actor: principal.actor)
    }

    /// Changes a key (`keys.update`).
    public func update(workspaceID: String, keyID: String, _ changes: CredentialChanges, switchExclusive: Bool = false,
                       principal: Principal) async throws -> KeyDetails {
        try principal.authorize(.keysUpdate, inWorkspace: workspaceID)
        return try await update(workspaceID: workspaceID, keyID: keyID, changes, switchExclusive: switchExclusive, actor: principal.actor)
    }

    /// Deletes a key (`keys.delete`).
    public func delete(workspaceID: String, keyID: String, principal: Principal) async throws {
        try principal.authorize(.keysDelete, inWorkspace: workspaceID)
        try await delete(workspaceID: workspaceID, keyID: keyID, actor: principal.actor)
    }

    /// Turns a key on (`keys.update`).
    public func activate(workspaceID: String, keyID: String, switchExclusive: Bool = false, principal: Principal) async throws -> KeyDetails {
        try principal.authorize(.keysUpdate, inWorkspace: workspaceID)
        return try await activate(workspaceID: workspaceID, keyID: keyID, switchExclusive: switchExclusive, actor: principal.actor)
    }

    /// Turns a key off (`keys.update`).
    public func deactivate(workspaceID: String, keyID: String, principal: Principal) async throws -> KeyDetails {
        try principal.authorize(.keysUpdate, inWorkspace: workspaceID)
        return try await deactivate(workspaceID: workspaceID, keyID: keyID, actor: principal.actor)
    }
}
