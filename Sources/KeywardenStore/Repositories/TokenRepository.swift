import Foundation
import KeywardenCore
import KeywardenVault
import SQLKit

/// A stored token: its digest and who it belongs to, never the token itself.
public struct TokenRecord: Sendable, Equatable {
    public let id: String
    public let displayPrefix: String
    public var name: String
    public let kind: TokenKind
    public let workspaceID: String?
    public let memberID: String?
    public var role: MemberRole?
    public var permissions: [Permission]
    public let createdAt: String
    public let createdBy: String
    public var lastUsedAt: String?
    public var revokedAt: String?

    /// The identity this token grants; a member's permissions come from its role.
    public var principal: Principal {
        let granted: Set<Permission> = kind == .member ? (role?.permissions ?? []) : Set(permissions)
        return Principal(tokenID: id, kind: kind, workspaceID: workspaceID, role: role, permissions: granted, name: name)
    }
}

/// The `tokens` table.
public struct TokenRepository: Sendable {
    package static let table = "tokens"

    public init() {}

    /// Issues a new token and stores its digest; the returned token is the only copy.
    public func issue(
        name: String, kind: TokenKind, workspaceID: String? = nil, memberID: String? = nil, role: MemberRole? = nil,
        permissions: [Permission] = [], actor: String, on db: any SQLDatabase
    ) async throws -> (AccessToken, TokenRecord) {
        let token = AccessToken.generate()
        let record = TokenRecord(
            id: Identifier.make("tok"), displayPrefix: token.displayPrefix, name: name, kind: kind,
            workspaceID: workspaceID, memberID: memberID, role: role, permissions: permissions.sorted(),
            createdAt: Timestamp.now, createdBy: actor, lastUsedAt: nil, revokedAt: nil
        )
        ChangeLog.touch(.token(record.id))
        try await db.insert(into: Self.table)
            .columns("id", "digest", "display_prefix", "name", "kind", "workspace_id", "member_id", "role", "permissions", "created_at", "created_by")
            .values(
                SQLBind(record.id), SQLBind(token.digest), SQLBind(record.displayPrefix), SQLBind(name),
                SQLBind(kind.rawValue), SQLBind(workspaceID), SQLBind(memberID), SQLBind(role?.rawValue),
                SQLBind(JSONList.encode(record.permissions.map(\.rawValue))), SQLBind(record.createdAt), SQLBind(actor)
            )
            .run()
        return (token, record)
    }

    /// The live (not revoked) token whose digest matches the presented text.
    public func find(presented text: String, on db: any SQLDatabase) async throws -> TokenRecord? {
        let digest = AccessToken.digest(of: text)
        guard let row = try await db.select().column("*").from(Self.table)
            .where("digest", .equal, digest).where("revoked_at", .is, SQLLiteral.null).first()
        else { return nil }
        // The index found the row; compare again in constant time so timing says nothing about the digest.
        guard AccessToken.digestsMatch(try row.decode(column: "digest", as: String.self), digest) else { return nil }
        return try Self.decode(row)
    }

    /// One token by id, revoked or not.
    public func get(_ id: String, on db: any SQLDatabase) async throws -> TokenRecord? {
        try await db.select().column("*").from(Self.table).where("id", .equal, id).first().map(Self.decode)
    }

    /// Live tokens of a workspace (or of the platform, for `nil`), optionally of one kind, oldest first.
    public func list(workspaceID: String?, kind: TokenKind? = nil, on db: any SQLDatabase) async throws -> [TokenRecord] {
        var query = db.select().column("*").from(Self.table).where("revoked_at", .is, SQLLiteral.null)
        if let workspaceID {
            query = query.where("workspace_id", .equal, workspaceID)
        } else {
            query = query.where("workspace_id", .is, SQLLiteral.null)
        }
        if let kind { query = query.where("kind", .equal, kind.rawValue) }
        return try await query.orderBy("created_at").orderBy("id").all().map(Self.decode)
    }

    /// Revokes one token at once; returns whether a live token was revoked.
    public func revoke(_ id: String, actor: String, on db: any SQLDatabase) async throws -> Bool {
        guard let record = try await get(id, on: db), record.revokedAt == nil else { return false }
        ChangeLog.touch(.token(id))
        try await db.update(Self.table).set("revoked_at", to: Timestamp.now).where("id", .equal, id).run()
        return true
    }

    /// Revokes every live token of a member.
    public func revokeAll(memberID: String, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.tokens)
        try await db.update(Self.table).set("revoked_at", to: Timestamp.now)
            .where("member_id", .equal, memberID).where("revoked_at", .is, SQLLiteral.null).run()
    }

    /// Moves the live tokens of a member to a new role: the next call made with them has its permissions.
    public func setRole(memberID: String, role: MemberRole, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.tokens)
        try await db.update(Self.table).set("role", to: role.rawValue)
            .where("member_id", .equal, memberID).where("revoked_at", .is, SQLLiteral.null).run()
    }

    /// Notes that a live token was used at `at` (a revoked token is left as it is; the time only moves forward).
    /// Names no change scope: no cache holds the time, so the caller writes it in a transaction that changes no state.
    public func markUsed(_ id: String, at: String, on db: any SQLDatabase) async throws {
        try await db.update(Self.table).set("last_used_at", to: at)
            .where("id", .equal, id).where("revoked_at", .is, SQLLiteral.null)
            .where { group in group.where("last_used_at", .is, SQLLiteral.null).orWhere("last_used_at", .lessThan, at) }
            .run()
    }

    /// Deletes every token of a workspace (members' and services', live or revoked) and the admin UI sessions signed in
    /// with them; returns how many were live.
    @discardableResult
    public func deleteAll(workspaceID: String, on db: any SQLDatabase) async throws -> Int {
        ChangeLog.touch(.tokens)
        let rows = try await db.select().columns("id", "revoked_at").from(Self.table).where("workspace_id", .equal, workspaceID).all()
        let ids = try rows.map { try $0.decode(column: "id", as: String.self) }
        let live = try rows.filter { try $0.decode(column: "revoked_at", as: String?.self) == nil }.count
        for start in stride(from: 0, to: ids.count, by: 500) {
            let slice = Array(ids[start..<min(start + 500, ids.count)])
            try await db.delete(from: Self.sessionsTable).where("token_id", .in, slice).run()
        }
        try await db.delete(from: Self.table).where("workspace_id", .equal, workspaceID).run()
        return live
    }

    /// The admin UI's sessions, each tied to the token it signed in with.
    static let sessionsTable = "sessions"

    /// How many live tokens of a kind exist.
    public func countLive(kind: TokenKind, on db: any SQLDatabase) async throws -> Int {
        let row = try await db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n").from(Self.table)
            .where("kind", .equal, kind.rawValue).where("revoked_at", .is, SQLLiteral.null).first()
        return try row?.decode(column: "n", as: Int.self) ?? 0
    }

    static func decode(_ row: any SQLRow) throws -> TokenRecord {
        let kindText = try row.decode(column: "kind", as: String.self)
        // An unknown kind, role or permission grants nothing: it is an error, never a guess.
        guard let kind = TokenKind(rawValue: kindText) else {
            throw StoreError.conflict("token has an unknown kind '\(kindText)'")
        }
        let roleText = try row.decode(column: "role", as: String?.self)
        let role = try roleText.map { text in
            guard let role = MemberRole(rawValue: text) else { throw StoreError.conflict("token has an unknown role '\(text)'") }
            return role
        }
        let permissions = try JSONList.decode(try row.decode(column: "permissions", as: String.self)).map { text in
            guard let permission = Permission(rawValue: text) else { throw StoreError.conflict("token has an unknown permission '\(text)'") }
            return permission
        }
        return TokenRecord(
            id: try row.decode(column: "id", as: String.self),
            displayPrefix: try row.decode(column: "display_prefix", as: String.self),
            name: try row.decode(column: "name", as: String.self),
            kind: kind,
            workspaceID: try row.decode(column: "workspace_id", as: String?.self),
            memberID: try row.decode(column: "member_id", as: String?.self),
            role: role,
            permissions: permissions,
            createdAt: try row.decode(column: "created_at", as: String.self),
            createdBy: try row.decode(column: "created_by", as: String.self),
            lastUsedAt: try row.decode(column: "last_used_at", as: String?.self),
            revokedAt: try row.decode(column: "revoked_at", as: String?.self)
        )
    }
}
