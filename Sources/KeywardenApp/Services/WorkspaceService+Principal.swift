import KeywardenCore
import KeywardenStore
import KeywardenVault

/// The doors' entry points to members and tokens: each authorizes the principal it is given (`members.manage` in the
/// workspace; the platform's tokens, a platform admin), then acts as it, granting no more than it holds. The API and the
/// pages call these; the command line calls the `actor:` forms.
extension WorkspaceService {
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
