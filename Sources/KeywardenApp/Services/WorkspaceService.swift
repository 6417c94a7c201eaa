import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import SQLKit

/// Changes to a workspace's settings; `nil` keeps a value.
public struct WorkspaceChanges: Sendable {
    public var name: String?
    public var byokAllowed: Bool?
    public var exclusive: Bool?
    /// `.some(nil)` clears the address.
    public var notificationEmail: String??

    public init(name: String? = nil, byokAllowed: Bool? = nil, exclusive: Bool? = nil, notificationEmail: String?? = nil) {
        self.name = name
        self.byokAllowed = byokAllowed
        self.exclusive = exclusive
        self.notificationEmail = notificationEmail
    }
}

/// Workspaces, their members and their tokens.
public struct WorkspaceService: Sendable {
    let app: AppServices
    var store: Store { app.store }
    let members = MemberRepository()

    /// The permissions a service token may carry. `members.manage` stays with people.
    public static let servicePermissions: Set<Permission> = Set(Permission.allCases).subtracting([.membersManage])

    // MARK: Workspaces

    public func create(name: String, byokAllowed: Bool, exclusive: Bool, actor: String) async throws -> Workspace {
        let name = try Self.validName(name)
        return try await store.engine.transaction { db in
            try await self.app.createWorkspace(name: name, byokAllowed: byokAllowed, exclusive: exclusive, actor: actor, on: db)
        }
    }

    public func get(_ id: String) async throws -> Workspace {
        guard let workspace = try await store.engine.read({ db in try await self.store.workspaces.get(id, on: db) }) else {
            throw KeywardenError.notFound("workspace")
        }
        return workspace
    }

    public func list() async throws -> [Workspace] {
        try await store.engine.read { db in try await self.store.workspaces.list(on: db) }
    }

    public func update(_ id: String, _ changes: WorkspaceChanges, actor: String) async throws -> Workspace {
        let name = try changes.name.map(Self.validName)
        if case .some(.some(let email)) = changes.notificationEmail, !Self.looksLikeEmail(email) {
            throw KeywardenError.invalid("notification_email", "notification_email must be an e-mail address.")
        }
        return try await store.engine.transaction { db in
            guard var workspace = try await self.store.workspaces.get(id, on: db) else { throw KeywardenError.notFound("workspace") }
            var changed: [String: String] = [:]
            if let name, name != workspace.name { workspace.name = name; changed["name"] = name }
            if let byok = changes.byokAllowed, byok != workspace.byokAllowed { workspace.byokAllowed = byok; changed["byok_allowed"] = "\(byok)" }
            if let exclusive = changes.exclusive, exclusive != workspace.exclusive {
                if exclusive {
                    let active = try await self.store.credentials.activeProviders(workspaceID: id, on: db)
                    if active.count > 1 {
                        let names = active.map { self.store.catalog.provider($0)?.displayName ?? $0 }.joined(separator: ", ")
                        throw KeywardenError(.conflict, code: "exclusive_conflict",
                            message: "Several providers are active (\(names)); deactivate all but one before turning on exclusive mode.",
                            field: "exclusive")
                    }
                }
                workspace.exclusive = exclusive
                changed["exclusive"] = "\(exclusive)"
            }
            if let email = changes.notificationEmail, email != workspace.notificationEmail {
                workspace.notificationEmail = email
                changed["notification_email"] = email == nil ? "cleared" : "set"
            }
            guard !changed.isEmpty else { return workspace }
            workspace.updatedAt = Timestamp.now
            try await self.store.workspaces.save(workspace, on: db)
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "workspace.updated", targetType: "workspace", targetID: id, workspaceID: id, details: changed
            ), on: db)
            return workspace
        }
    }

    // MARK: Members

    /// Adds a member and issues their token (returned once).
    public func addMember(workspaceID: String, name: String, role: MemberRole, actor: String) async throws -> (Member, AccessToken) {
        let name = try Self.validName(name)
        return try await store.engine.transaction { db in
            guard try await self.store.workspaces.get(workspaceID, on: db) != nil else { throw KeywardenError.notFound("workspace") }
            let member = Member(
                id: Identifier.make("mem"), workspaceID: workspaceID, name: name, role: role,
                createdAt: Timestamp.now, createdBy: actor, revokedAt: nil
            )
            try await self.members.insert(member, on: db)
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "member.added", targetType: "member", targetID: member.id, workspaceID: workspaceID,
                details: ["name": name, "role": role.rawValue]
            ), on: db)
            let (token, _) = try await self.app.issueToken(
                name: name, kind: .member, workspaceID: workspaceID, memberID: member.id, role: role, actor: actor, on: db
            )
            return (member, token)
        }
    }

    public func listMembers(workspaceID: String) async throws -> [Member] {
        try await store.engine.read { db in
            guard try await self.store.workspaces.get(workspaceID, on: db) != nil else { throw KeywardenError.notFound("workspace") }
            return try await self.members.list(workspaceID: workspaceID, on: db)
        }
    }

    /// Removes a member and revokes their tokens at once.
    public func removeMember(workspaceID: String, memberID: String, actor: String) async throws {
        try await store.engine.transaction { db in
            guard let member = try await self.members.get(memberID, workspaceID: workspaceID, on: db) else {
                throw KeywardenError.notFound("member")
            }
            try await self.members.revoke(member.id, on: db)
            try await self.store.tokens.revokeAll(memberID: member.id, on: db)
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "member.removed", targetType: "member", targetID: member.id, workspaceID: workspaceID,
                details: ["name": member.name, "role": member.role.rawValue]
            ), on: db)
        }
    }

    // MARK: Service tokens

    /// Issues a service token bound to a workspace, or to the platform when `workspaceID` is `nil`.
    /// `keys.reveal` may be granted only when `mayGrantReveal` (a platform admin asks).
    public func createServiceToken(
        workspaceID: String?, name: String, permissions: [Permission], mayGrantReveal: Bool, actor: String
    ) async throws -> (TokenRecord, AccessToken) {
        let name = try Self.validName(name)
        guard !permissions.isEmpty else { throw KeywardenError.missing("permissions", "Give the token at least one permission.") }
        for permission in permissions where !Self.servicePermissions.contains(permission) {
            throw KeywardenError.invalid("permissions", "A service token cannot have \(permission.rawValue).")
        }
        if permissions.contains(.keysReveal), !mayGrantReveal {
            throw KeywardenError(.forbidden, code: "forbidden", message: "Only a platform admin can grant keys.reveal.", field: "permissions")
        }
        return try await store.engine.transaction { db in
            if let workspaceID, try await self.store.workspaces.get(workspaceID, on: db) == nil {
                throw KeywardenError.notFound("workspace")
            }
            let (token, record) = try await self.app.issueToken(
                name: name, kind: .service, workspaceID: workspaceID, permissions: Array(Set(permissions)), actor: actor, on: db
            )
            return (record, token)
        }
    }

    /// Live tokens of a workspace (or the platform's own, for `nil`), members' included.
    public func listTokens(workspaceID: String?) async throws -> [TokenRecord] {
        try await store.engine.read { db in
            if let workspaceID, try await self.store.workspaces.get(workspaceID, on: db) == nil {
                throw KeywardenError.notFound("workspace")
            }
            return try await self.store.tokens.list(workspaceID: workspaceID, on: db)
        }
    }

    /// Revokes a token of a workspace (or of the platform); another scope's token is not found.
    public func revokeToken(workspaceID: String?, tokenID: String, actor: String) async throws {
        try await store.engine.transaction { db in
            guard let record = try await self.store.tokens.get(tokenID, on: db), record.workspaceID == workspaceID, record.revokedAt == nil else {
                throw KeywardenError.notFound("token")
            }
            // The last platform-admin token is the only way into the API: keep it (`keywarden tokens create --admin` issues another).
            if record.kind == .platformAdmin, try await self.store.tokens.countLive(kind: .platformAdmin, on: db) <= 1 {
                throw KeywardenError(.conflict, code: "last_admin_token",
                    message: "This is the last platform-admin token; issue another one before revoking it.")
            }
            _ = try await self.app.revokeToken(tokenID, actor: actor, on: db)
        }
    }

    // MARK: Validation

    static func validName(_ name: String) throws(KeywardenError) -> String {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw .missing("name") }
        guard trimmed.unicodeScalars.count <= 200 else { throw .invalid("name", "name is longer than 200 characters.") }
        return trimmed
    }

    /// One `@` between a non-empty local part and a domain with a dot, no whitespace, at most 254 characters.
    /// Judged by Unicode scalar: as Characters, an `@` followed by a combining mark is not an `@`.
    static func looksLikeEmail(_ text: String) -> Bool {
        let scalars = text.unicodeScalars
        let parts = scalars.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !scalars.contains(where: { $0.properties.isWhitespace })
            && scalars.count <= 254
    }
}
