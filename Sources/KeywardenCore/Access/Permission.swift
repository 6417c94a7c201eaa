/// One action a token may be allowed to take.
public enum Permission: String, Codable, Sendable, CaseIterable, Comparable {
    case keysCreate = "keys.create"
    case keysRead = "keys.read"
    case keysUpdate = "keys.update"
    case keysDelete = "keys.delete"
    case keysTest = "keys.test"
    /// Receive a plaintext key from the resolver; granted only explicitly, to service tokens.
    case keysReveal = "keys.reveal"
    case usageRead = "usage.read"
    case auditRead = "audit.read"
    case membersManage = "members.manage"
    /// Send AI calls through the gateway.
    case gatewayUse = "gateway.use"

    public static func < (lhs: Permission, rhs: Permission) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A workspace member's role; each grants a fixed set of permissions.
public enum MemberRole: String, Codable, Sendable, CaseIterable {
    case owner, admin, member, viewer

    /// What the role may do inside its workspace.
    public var permissions: Set<Permission> {
        switch self {
        case .viewer:
            return [.keysRead, .usageRead]
        case .member:
            return [.keysRead, .usageRead, .keysTest]
        case .admin:
            return [.keysRead, .keysCreate, .keysUpdate, .keysDelete, .keysTest, .usageRead, .auditRead]
        case .owner:
            return MemberRole.admin.permissions.union([.membersManage])
        }
    }

    /// The role's standing, the one ordering of roles: owner (3) > admin (2) > member (1) > viewer (0).
    public var rank: Int {
        switch self {
        case .owner: return 3
        case .admin: return 2
        case .member: return 1
        case .viewer: return 0
        }
    }

    /// Whether a member with this role may give `role` to someone, or change or remove someone who has it:
    /// never a role above one's own.
    public func mayGrant(_ role: MemberRole) -> Bool { role.rank <= rank }
}

/// What a token stands for.
public enum TokenKind: String, Codable, Sendable {
    /// Operates the whole platform: every workspace, the platform's own keys.
    case platformAdmin = "platform_admin"
    /// A person in one workspace, with a role.
    case member
    /// The platform's backend: explicit permissions, bound to one workspace or to the platform.
    case service
}
