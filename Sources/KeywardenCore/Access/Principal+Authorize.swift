/// Decisions turned into the errors every door answers with: the one check services run on the principal they are given.
extension Principal {
    /// Allows an action in a workspace (`nil`: the platform's), or throws `404 not_found` for a workspace that is not
    /// the principal's and `403 forbidden` otherwise.
    public func authorize(_ permission: Permission, inWorkspace id: String?) throws(KeywardenError) {
        switch id.map({ decide(permission, inWorkspace: $0) }) ?? decidePlatform(permission) {
        case .allowed: return
        case .notFound: throw KeywardenError.notFound("workspace")
        case .forbidden: throw KeywardenError(.forbidden, code: "forbidden", message: "This token may not do \(permission.rawValue) here.")
        }
    }

    /// Allows a platform-level action: a platform admin, or a platform-bound service token granted `permission` (none:
    /// platform admins only); `403 forbidden` otherwise.
    public func authorizePlatform(_ permission: Permission? = nil) throws(KeywardenError) {
        guard decidePlatform(permission) == .allowed else {
            throw KeywardenError(.forbidden, code: "forbidden", message: permission.map { "This token may not do \($0.rawValue) for the platform." }
                                 ?? "Only a platform admin may do this.")
        }
    }

    /// The workspace a read of workspace-scoped records (audit log, events, usage) covers, `nil` for all of them.
    ///
    /// Platform admins read every workspace or the one they name; a workspace's token reads its own (naming another is
    /// `not_found`); a platform-bound service token names one, or — only with `platformWide` — reads them all with the
    /// permission granted at platform level.
    public func readableScope(_ permission: Permission, requested: String?, platformWide: Bool) throws(KeywardenError) -> String? {
        if isPlatformAdmin { return requested }
        if let own = workspaceID {
            if let requested, requested != own { throw KeywardenError.notFound("workspace") }
            try authorize(permission, inWorkspace: own)
            return own
        }
        if let requested {
            try authorize(permission, inWorkspace: requested)
            return requested
        }
        guard platformWide else { throw KeywardenError.missing("workspace", "Name the workspace: ?workspace=…") }
        try authorizePlatform(permission)
        return nil
    }
}
