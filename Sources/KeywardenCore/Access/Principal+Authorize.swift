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
}
