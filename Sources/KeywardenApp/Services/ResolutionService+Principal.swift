import KeywardenCore

/// The doors' entry points to bindings and to explaining resolution: each authorizes the principal it is given.
extension ResolutionService {
    /// Allows asking which key would serve a call in a workspace (`nil`: the platform's keys alone): a caller that may
    /// send calls there (`gateway.use`) or read its keys (`keys.read`); for the platform, a platform token with
    /// `gateway.use` or a platform admin.
    public static func authorizeExplaining(_ principal: Principal, workspaceID: String?) throws {
        if let workspaceID {
            if principal.decide(.gatewayUse, inWorkspace: workspaceID) != .allowed { try principal.authorize(.keysRead, inWorkspace: workspaceID) }
        } else if principal.decidePlatform(.gatewayUse) != .allowed {
            try principal.authorizePlatform()
        }
    }

    /// The state resolution reads for a workspace, for a principal that may read its keys (`keys.read`).
    public func view(for workspaceID: String, principal: Principal) async throws -> ResolutionView {
        try principal.authorize(.keysRead, inWorkspace: workspaceID)
        return try await view(for: workspaceID)
    }

    /// The workspace's bindings (`keys.read`).
    public func listBindings(workspaceID: String, principal: Principal) async throws -> [Binding] {
        try principal.authorize(.keysRead, inWorkspace: workspaceID)
        return try await listBindings(workspaceID: workspaceID)
    }

    /// Binds a consumer (and modality) to a key, or to the provider's main chain with `keyID` nil (`keys.update`).
    public func bind(workspaceID: String, consumer: String, modality: Modality?, keyID: String?, principal: Principal) async throws -> Binding {
        try principal.authorize(.keysUpdate, inWorkspace: workspaceID)
        return try await bind(workspaceID: workspaceID, consumer: consumer, modality: modality, keyID: keyID, actor: principal.actor)
    }

    /// Removes a binding (`keys.update`).
    public func unbind(workspaceID: String, consumer: String, modality: Modality?, principal: Principal) async throws {
        try principal.authorize(.keysUpdate, inWorkspace: workspaceID)
        try await unbind(workspaceID: workspaceID, consumer: consumer, modality: modality, actor: principal.actor)
    }
}
