import KeywardenCore
import KeywardenStore
import KeywardenVault

/// The doors' entry points to members and tokens: each authorizes the principal it is given (`members.manage` in the
/// workspace; the platform's tokens, a platform admin), then acts as it, granting no more than it holds. The API and the
/// pages call these; the command line calls the `actor:` forms.
extension WorkspaceService {
    // MARK: Workspaces

    /// Creates a workspace (platform admins).
    public func create(name: String, byokAllowed: Bool, exclusive: Bool, plan: String? = nil, principal: Principal) async throws -> Workspace {
        try principal.authorizePlatform()
        return try await create(name: name, byokAllowed: byokAllowed, exclusive: exclusive, plan: plan, actor: principal.actor)
    }

    /// A workspace the principal can see (another is `not_found`).
    public func get(_ id: String, principal: Principal) async throws -> Workspace {
        guard principal.canSee(workspace: id) else { throw KeywardenError.notFound("workspace") }
        return try await get(id)
    }

    /// One page of every workspace, with counts (platform admins and platform-bound tokens).
    public func page(search: String?, pagination: Pagination, principal: Principal) async throws -> (items: [WorkspaceSummary], total: Int) {
        guard principal.isPlatformAdmin || (principal.kind == .service && principal.workspaceID == nil) else { throw KeywardenError.forbidden }
        return try await page(search: search, pagination: pagination)
    }

    /// Changes a workspace's settings, each by its owner: the plan, BYOK and who pays when its own keys cannot are the
    /// platform's (admins only); exclusive mode is about keys (`keys.update`); the name and the notification address are
    /// the team's (`members.manage`).
    public func update(_ id: String, _ changes: WorkspaceChanges, principal: Principal) async throws -> Workspace {
        guard principal.canSee(workspace: id) else { throw KeywardenError.notFound("workspace") }
        if !principal.isPlatformAdmin {
            func platformOnly(_ field: String, _ message: String) -> KeywardenError {
                KeywardenError(.forbidden, code: "forbidden", message: message, field: field)
            }
            if changes.byokAllowed != nil { throw platformOnly("byok_allowed", "Only a platform admin can change the plan's BYOK setting.") }
            if changes.plan != nil { throw platformOnly("plan", "Only a platform admin can change a workspace's plan.") }
            // Who pays when the workspace's own keys cannot is the platform's money.
            if changes.platformFallback != nil { throw platformOnly("platform_fallback", "Only a platform admin can change when the platform's keys stand in.") }
            if changes.exclusive != nil { try principal.authorize(.keysUpdate, inWorkspace: id) }
            if changes.name != nil || changes.notificationEmail != nil { try principal.authorize(.membersManage, inWorkspace: id) }
        }
        return try await update(id, changes, actor: principal.actor)
    }

    /// Deletes a workspace with everything it owns (platform admins; another workspace's token is told it does not exist).
    public func delete(_ id: String, principal: Principal) async throws -> WorkspaceDeletion {
        guard principal.canSee(workspace: id) else { throw KeywardenError.notFound("workspace") }
        try principal.authorizePlatform()
        return try await delete(id, actor: principal.actor)
    }

    // MARK: Members and tokens

    /// The workspace's members (anyone who can see the workspace).
    public func listMembers(workspaceID: String, principal: Principal) async throws -> [Member] {
        guard principal.canSee(workspace: workspaceID) else { throw KeywardenError.notFound("workspace") }
        return try await listMembers(workspaceID: workspaceID)
    }

    /// Adds a member with a role the principal may grant; their sign-in token, shown once.
    public func addMember(workspaceID: String, name: String, role: MemberRole, principal: Principal) async throws -> (Member, AccessToken) {
        try principal.authorize(.membersManage, inWorkspace: workspaceID)
        return try await addMember(workspaceID: workspaceID, name: name, role: role, actor: principal.actor, actingRole: principal.actingRole)
    }

    /// Gives a member another role the principal may grant.
    public func changeMemberRole(workspaceID: String, memberID: String, role: MemberRole, principal: Principal) async throws -> Member {
        try principal.authorize(.membersManage, inWorkspace: workspaceID)
        return try await changeMemberRole(workspaceID: workspaceID, memberID: memberID, role: role, actor: principal.actor, actingRole: principal.actingRole)
    }

    /// Removes a member (their tokens stop working at once).
    public func removeMember(workspaceID: String, memberID: String, principal: Principal) async throws {
        try principal.authorize(.membersManage, inWorkspace: workspaceID)
        try await removeMember(workspaceID: workspaceID, memberID: memberID, actor: principal.actor, actingRole: principal.actingRole)
    }

    /// Issues a service token of the workspace (`nil`: the platform's) carrying only permissions the principal holds.
    public func createServiceToken(workspaceID: String?, name: String, permissions: [Permission], principal: Principal) async throws -> (TokenRecord, AccessToken) {
        try principal.authorize(.membersManage, inWorkspace: workspaceID)
        return try await createServiceToken(workspaceID: workspaceID, name: name, permissions: permissions, mayGrantReveal: principal.isPlatformAdmin,
                                            actor: principal.actor, actingPermissions: principal.actingPermissions)
    }

    /// The workspace's tokens (`nil`: the platform's).
    public func listTokens(workspaceID: String?, principal: Principal) async throws -> [TokenRecord] {
        try principal.authorize(.membersManage, inWorkspace: workspaceID)
        return try await listTokens(workspaceID: workspaceID)
    }

    /// Revokes a service token of the workspace (`nil`: the platform's).
    public func revokeToken(workspaceID: String?, tokenID: String, principal: Principal) async throws {
        try principal.authorize(.membersManage, inWorkspace: workspaceID)
        try await revokeToken(workspaceID: workspaceID, tokenID: tokenID, actor: principal.actor)
    }
}
