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
    /// `.some(nil)` takes the workspace off its plan.
    public var plan: String??
    /// `.some(nil)` returns to the plan's setting (else the platform's default).
    public var platformFallback: PlatformFallback??

    public init(name: String? = nil, byokAllowed: Bool? = nil, exclusive: Bool? = nil, notificationEmail: String?? = nil, plan: String?? = nil,
                platformFallback: PlatformFallback?? = nil) {
        self.platformFallback = platformFallback
        self.plan = plan
        self.name = name
        self.byokAllowed = byokAllowed
        self.exclusive = exclusive
        self.notificationEmail = notificationEmail
    }
}

/// A workspace as the platform's list shows it: its settings and two counts.
public struct WorkspaceSummary: Sendable {
    public let workspace: Workspace
    /// The keys (credentials) the workspace stores.
    public let keys: Int
    /// The workspace's gateway calls (usage rows) since the first day of the current month, UTC.
    public let callsThisMonth: Int

    public init(workspace: Workspace, keys: Int, callsThisMonth: Int) {
        self.workspace = workspace
        self.keys = keys
        self.callsThisMonth = callsThisMonth
    }
}

/// What deleting a workspace removed.
public struct WorkspaceDeletion: Sendable, Equatable {
    /// Keys deleted, with their sealed secrets.
    public let keys: Int
    /// Members (live ones) removed.
    public let members: Int
    /// Tokens (live ones: members' and services') that stopped working.
    public let tokens: Int

    public init(keys: Int, members: Int, tokens: Int) {
        self.keys = keys
        self.members = members
        self.tokens = tokens
    }
}

/// Workspaces, their members and their tokens.
///
/// Guard rails live here, so the API and the admin UI share them: a workspace keeps at least one owner
/// (`last_owner`); a member never grants a role above their own, nor changes or removes someone above them
/// (`role_not_allowed`, by ``MemberRole/mayGrant(_:)``); a service token carries only permissions its creator holds
/// (`permission_not_held`). `actingRole` / `actingPermissions` name who acts; `nil` is a platform admin.
public struct WorkspaceService: Sendable {
    let app: AppServices
    var store: Store { app.store }
    let members = MemberRepository()

    /// The permissions a service token may carry. `members.manage` stays with people.
    public static let servicePermissions: Set<Permission> = Set(Permission.allCases).subtracting([.membersManage])

    // MARK: Workspaces

    /// Creates a workspace, on `plan` if given (in the same transaction: a refused plan leaves no workspace behind).
    public func create(name: String, byokAllowed: Bool, exclusive: Bool, plan: String? = nil, actor: String) async throws -> Workspace {
        let name = try Self.validName(name)
        let plan = try plan.map(Plan.validName)
        return try await store.engine.transaction { db in
            var workspace = try await self.app.createWorkspace(name: name, byokAllowed: byokAllowed, exclusive: exclusive, actor: actor, on: db)
            if let plan {
                guard try await self.store.plans.get(plan, on: db) != nil else { throw Self.unknownPlan(plan) }
                workspace.plan = plan
                try await self.store.workspaces.save(workspace, on: db)
                try await self.store.audit.append(AuditEvent(
                    actor: actor, action: "workspace.updated", targetType: "workspace", targetID: workspace.id, workspaceID: workspace.id,
                    details: ["plan": plan]
                ), on: db)
            }
            return workspace
        }
    }

    /// A plan that does not exist (yet): a matter of state, not of the request's form.
    static func unknownPlan(_ plan: String) -> KeywardenError {
        KeywardenError(.unprocessable, code: "unknown_plan", message: "There is no plan '\(plan)'; create it first (PUT /api/v1/platform/plans/\(plan)).",
                       field: "plan")
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

    /// One page of the workspaces whose name contains `search` (case-insensitive; `%`, `_` and `\` are matched
    /// literally; surrounding whitespace is ignored, and an empty search matches all), ordered by name then id, with
    /// each one's key count and its calls this month (UTC); and how many workspaces match in all.
    ///
    /// Four queries whatever the page holds: the total, the page, and one grouped count each for keys and calls.
    public func page(search: String?, pagination: Pagination) async throws -> (items: [WorkspaceSummary], total: Int) {
        if let search, search.unicodeScalars.count > 200 { throw KeywardenError.invalid("search", "search is longer than 200 characters.") }
        let search = search?.trimmingCharacters(in: .whitespacesAndNewlines)
        let monthStart = Self.startOfMonth(Date())
        return try await store.engine.read(consistent: true) { db in
            let (workspaces, total) = try await self.store.workspaces.page(
                search: search, limit: pagination.perPage, offset: pagination.offset, on: db
            )
            let ids = workspaces.map(\.id)
            let keys = try await self.store.credentials.countByWorkspace(ids, on: db)
            let calls = try await self.store.usageRows.countByWorkspace(ids, since: monthStart, on: db)
            let items = workspaces.map { WorkspaceSummary(workspace: $0, keys: keys[$0.id] ?? 0, callsThisMonth: calls[$0.id] ?? 0) }
            return (items, total)
        }
    }

    /// Deletes a workspace and everything it owns, in one transaction: its keys (each with its sealed secrets, each
    /// audited as `credential.deleted` with its fingerprint), its bindings and routes, its webhooks (with their signing secrets),
    /// its members, and its tokens (members' and services', with the admin UI sessions signed in with them) — they stop
    /// working at once, here and, through the change log, on every instance — and its workspace keys (shredding: see
    /// docs/vault.md). Audited as `workspace.deleted` with the counts.
    ///
    /// Kept: the usage rows (the workspace's billing history), its events and their deliveries, and the audit log.
    /// An unknown id is `not_found`.
    public func delete(_ id: String, actor: String) async throws -> WorkspaceDeletion {
        let deletion = try await store.engine.transaction { db in
            guard let workspace = try await self.store.workspaces.get(id, on: db) else { throw KeywardenError.notFound("workspace") }
            let bindings = try await self.store.bindings.deleteAll(workspaceID: id, on: db)
            try await self.store.routes.deleteAll(workspaceID: id, on: db)
            let hooks = try await self.store.webhooks.list(workspaceID: id, on: db)
            for hook in hooks {
                try await self.store.webhooks.delete(hook.id, on: db)
                try await self.store.secrets.deleteAll(ownerID: hook.id, on: db)
            }
            let keys = try await self.store.credentials.list(scope: .workspace(id), on: db)
            for key in keys { try await self.app.deleteCredential(key, actor: actor, on: db) }
            let tokens = try await self.store.tokens.deleteAll(workspaceID: id, on: db)
            let members = try await self.store.members.deleteAll(workspaceID: id, on: db)
            try await self.store.workspaces.delete(id, on: db)
            // Shredding: the workspace's keys go with it, so its sealed secrets open nowhere (in a copy of the database
            // taken before, once the master key that wrapped them is rotated away).
            let shredded = try await ScopeKeyRepository().deleteAll(of: .workspace(id), on: db)
            let deletion = WorkspaceDeletion(keys: keys.count, members: members, tokens: tokens)
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "workspace.deleted", targetType: "workspace", targetID: id, workspaceID: id,
                details: [
                    "name": workspace.name, "keys": "\(deletion.keys)", "members": "\(deletion.members)", "tokens": "\(deletion.tokens)",
                    "bindings": "\(bindings)", "webhooks": "\(hooks.count)", "workspace_keys_shredded": "\(shredded)",
                ]
            ), on: db)
            return deletion
        }
        store.vault.forget(scope: .workspace(id))
        return deletion
    }

    /// The first instant of `date`'s month, UTC.
    static func startOfMonth(_ date: Date) -> Date {
        // Stored times are UTC text (`2026-11-22T14:57:00.123Z`): the month's first instant keeps `2026-11-` and sets the rest.
        Timestamp.date(String(Timestamp.string(date).prefix(8)) + "01T00:00:00.000Z") ?? date
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
                // Out of exclusive mode no switch comes back for parked keys: they stay off, as a person left them.
                if !exclusive { try await self.store.credentials.forgetParked(workspaceID: id, on: db) }
                workspace.exclusive = exclusive
                changed["exclusive"] = "\(exclusive)"
            }
            if let plan = changes.plan, plan != workspace.plan {
                if let plan, try await self.store.plans.get(try Plan.validName(plan), on: db) == nil { throw Self.unknownPlan(plan) }
                workspace.plan = plan
                changed["plan"] = plan ?? "none"
            }
            if let fallback = changes.platformFallback, fallback != workspace.platformFallback {
                changed["platform_fallback"] = "\(workspace.platformFallback?.rawValue ?? "plan") → \(fallback?.rawValue ?? "plan")"
                workspace.platformFallback = fallback
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

    /// Adds a member and issues their token (returned once). `actingRole` is the role of who adds them (`nil`: a
    /// platform admin); no one grants a role above their own (`role_not_allowed`).
    public func addMember(workspaceID: String, name: String, role: MemberRole, actor: String, actingRole: MemberRole?) async throws -> (Member, AccessToken) {
        let name = try Self.validName(name)
        try Self.ensureMayGrant(role, actingRole: actingRole)
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

    /// The live members of a workspace, oldest first.
    public func listMembers(workspaceID: String) async throws -> [Member] {
        try await store.engine.read { db in
            guard try await self.store.workspaces.get(workspaceID, on: db) != nil else { throw KeywardenError.notFound("workspace") }
            return try await self.members.list(workspaceID: workspaceID, on: db)
        }
    }

    /// Gives a member another role, and their live tokens with it: the next call made with them has the new
    /// permissions (the token cache drops them through the change log). Audited as `member.role_changed` with the
    /// roles from and to; the same role is no change (nothing written). Refused: a role above the acting one, or a
    /// member above it (`role_not_allowed`); demoting the workspace's last owner (`last_owner`).
    public func changeMemberRole(workspaceID: String, memberID: String, role: MemberRole, actor: String, actingRole: MemberRole?) async throws -> Member {
        try Self.ensureMayGrant(role, actingRole: actingRole)
        return try await store.engine.transaction { db in
            guard try await self.store.workspaces.get(workspaceID, on: db) != nil else { throw KeywardenError.notFound("workspace") }
            guard var member = try await self.members.get(memberID, workspaceID: workspaceID, on: db) else {
                throw KeywardenError.notFound("member")
            }
            try Self.ensureMayManage(member, actingRole: actingRole)
            guard member.role != role else { return member }
            if member.role == .owner {
                try await self.ensureAnotherOwner(workspaceID: workspaceID, on: db, action: "demoting")
            }
            let previous = member.role
            try await self.members.setRole(member.id, role: role, on: db)
            try await self.store.tokens.setRole(memberID: member.id, role: role, on: db)
            member.role = role
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "member.role_changed", targetType: "member", targetID: member.id, workspaceID: workspaceID,
                details: ["name": member.name, "from": previous.rawValue, "to": role.rawValue]
            ), on: db)
            return member
        }
    }

    /// Removes a member and revokes their tokens at once. Refused: a member above the acting role
    /// (`role_not_allowed`); the workspace's last owner (`last_owner`).
    public func removeMember(workspaceID: String, memberID: String, actor: String, actingRole: MemberRole?) async throws {
        try await store.engine.transaction { db in
            guard let member = try await self.members.get(memberID, workspaceID: workspaceID, on: db) else {
                throw KeywardenError.notFound("member")
            }
            try Self.ensureMayManage(member, actingRole: actingRole)
            if member.role == .owner {
                try await self.ensureAnotherOwner(workspaceID: workspaceID, on: db, action: "removing")
            }
            try await self.members.revoke(member.id, on: db)
            try await self.store.tokens.revokeAll(memberID: member.id, on: db)
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "member.removed", targetType: "member", targetID: member.id, workspaceID: workspaceID,
                details: ["name": member.name, "role": member.role.rawValue]
            ), on: db)
        }
    }

    /// No one grants a role above their own (`nil`: a platform admin, who may grant any).
    static func ensureMayGrant(_ role: MemberRole, actingRole: MemberRole?) throws(KeywardenError) {
        guard let actingRole, !actingRole.mayGrant(role) else { return }
        throw KeywardenError(.forbidden, code: "role_not_allowed",
            message: "A member with the \(actingRole.rawValue) role cannot grant the \(role.rawValue) role.", field: "role")
    }

    /// No one changes or removes a member whose role is above their own.
    static func ensureMayManage(_ member: Member, actingRole: MemberRole?) throws(KeywardenError) {
        guard let actingRole, !actingRole.mayGrant(member.role) else { return }
        throw KeywardenError(.forbidden, code: "role_not_allowed",
            message: "A member with the \(actingRole.rawValue) role cannot change or remove a member with the \(member.role.rawValue) role.")
    }

    /// A workspace keeps at least one owner: the owner about to go must not be the last.
    func ensureAnotherOwner(workspaceID: String, on db: any SQLDatabase, action: String) async throws {
        guard try await members.countLive(workspaceID: workspaceID, role: .owner, on: db) <= 1 else { return }
        throw KeywardenError(.conflict, code: "last_owner",
            message: "A workspace keeps at least one owner; make another member an owner before \(action) this one.")
    }

    // MARK: Service tokens

    /// Issues a service token bound to a workspace, or to the platform when `workspaceID` is `nil`.
    /// `keys.reveal` may be granted only when `mayGrantReveal` (a platform admin asks). `actingPermissions` are those of
    /// who asks (`nil`: a platform admin, or the command line): a token carries none they do not hold
    /// (`permission_not_held`).
    public func createServiceToken(
        workspaceID: String?, name: String, permissions: [Permission], mayGrantReveal: Bool, actor: String,
        actingPermissions: Set<Permission>? = nil
    ) async throws -> (TokenRecord, AccessToken) {
        let name = try Self.validName(name)
        guard !permissions.isEmpty else { throw KeywardenError.missing("permissions", "Give the token at least one permission.") }
        for permission in permissions where !Self.servicePermissions.contains(permission) {
            throw KeywardenError.invalid("permissions", "A service token cannot have \(permission.rawValue).")
        }
        if permissions.contains(.keysReveal), !mayGrantReveal {
            throw KeywardenError(.forbidden, code: "forbidden", message: "Only a platform admin can grant keys.reveal.", field: "permissions")
        }
        if actingPermissions != nil {
            let grantable = grantablePermissions(actingPermissions: actingPermissions, forWorkspace: workspaceID != nil)
            let missing = Set(permissions).subtracting(grantable).subtracting([.keysReveal]).map(\.rawValue).sorted()
            if !missing.isEmpty {
                throw KeywardenError(.forbidden, code: "permission_not_held",
                    message: "A token cannot be given a permission its creator does not hold: \(missing.joined(separator: ", ")).",
                    field: "permissions")
            }
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

    /// The permissions who acts may give a service token (`nil`: a platform admin, or the command line: any). Anyone
    /// else gives only what they hold — and a workspace's owner (who manages its members) also `gateway.use`, where the
    /// platform allows it (`KEYWARDEN_OWNERS_MINT_GATEWAY_TOKENS`, on by default): such calls are held to the
    /// workspace's budget and limits. `keys.reveal` is a platform admin's alone.
    public func grantablePermissions(actingPermissions: Set<Permission>?, forWorkspace: Bool) -> Set<Permission> {
        guard var acting = actingPermissions else { return Set(Self.servicePermissions) }
        if forWorkspace, acting.contains(.membersManage), store.configuration.ownersMintGatewayTokens { acting.insert(.gatewayUse) }
        return Set(Self.servicePermissions).intersection(acting).subtracting([.keysReveal])
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
            // A member's token goes with the member (removing them): revoking it here would leave a member, perhaps the
            // workspace's last owner, with no way in, around the last-owner rule.
            if workspaceID != nil, record.kind == .member {
                throw KeywardenError(.conflict, code: "member_token",
                    message: "This token belongs to a member; remove the member (or change their role) instead.")
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
