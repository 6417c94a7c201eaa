/// Who is calling: the identity behind a presented token, and what it may do where.
public struct Principal: Sendable, Equatable {
    public let tokenID: String
    public let kind: TokenKind
    /// The workspace the token belongs to; `nil` for platform admins and platform-bound service tokens.
    public let workspaceID: String?
    public let role: MemberRole?
    /// What the token may do (inside its workspace when it has one).
    public let permissions: Set<Permission>
    public let name: String

    public init(tokenID: String, kind: TokenKind, workspaceID: String?, role: MemberRole?, permissions: Set<Permission>, name: String) {
        self.tokenID = tokenID
        self.kind = kind
        self.workspaceID = workspaceID
        self.role = role
        self.permissions = permissions
        self.name = name
    }

    /// The actor recorded in audit entries.
    public var actor: String { "token:\(tokenID)" }

    public var isPlatformAdmin: Bool { kind == .platformAdmin }

    /// The role this principal acts with when it manages members (see ``MemberRole/mayGrant(_:)``): `nil` for a
    /// platform admin, who may grant any role; a member's own role; the lowest role for anything else (a token
    /// without a role grants nothing above it).
    public var actingRole: MemberRole? { isPlatformAdmin ? nil : (role ?? .viewer) }

    /// The permissions this principal may pass on to a service token it creates: `nil` for a platform admin
    /// (anything a service token may carry); otherwise only those it holds itself.
    public var actingPermissions: Set<Permission>? { isPlatformAdmin ? nil : permissions }

    /// The answer to "may this principal do that, there?".
    public enum Decision: Sendable, Equatable {
        case allowed
        /// The principal may see the workspace but not do this (403).
        case forbidden
        /// The workspace is not the principal's: answer as if it did not exist (404).
        case notFound
    }

    /// Whether the principal can reach a workspace at all.
    public func canSee(workspace id: String) -> Bool {
        switch kind {
        case .platformAdmin: return true
        case .member: return workspaceID == id
        case .service: return workspaceID == nil || workspaceID == id
        }
    }

    /// Decides an action inside a workspace: another workspace is `notFound`, never `forbidden`.
    public func decide(_ permission: Permission, inWorkspace id: String) -> Decision {
        guard canSee(workspace: id) else { return .notFound }
        if kind == .platformAdmin { return permission == .keysReveal ? .forbidden : .allowed }
        return permissions.contains(permission) ? .allowed : .forbidden
    }

    /// Decides a platform-level action (platform cards, creating workspaces): platform admins only,
    /// except where a platform-bound service token was granted the permission.
    public func decidePlatform(_ permission: Permission? = nil) -> Decision {
        if kind == .platformAdmin { return .allowed }
        if kind == .service, workspaceID == nil, let permission, permissions.contains(permission) { return .allowed }
        return .forbidden
    }
}
