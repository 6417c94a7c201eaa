import Foundation
import KeywardenCore
import SQLKit

/// A person in a workspace, with a role. Their token is issued once, at creation.
public struct Member: Sendable, Equatable {
    public let id: String
    public let workspaceID: String
    public var name: String
    public var role: MemberRole
    public let createdAt: String
    public let createdBy: String
    public var revokedAt: String?

    public init(id: String, workspaceID: String, name: String, role: MemberRole, createdAt: String, createdBy: String, revokedAt: String? = nil) {
        self.id = id
        self.workspaceID = workspaceID
        self.name = name
        self.role = role
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.revokedAt = revokedAt
    }
}

/// The `members` table.
public struct MemberRepository: Sendable {
    package static let table = "members"

    public init() {}

    public func insert(_ member: Member, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.tokens)
        try await db.insert(into: Self.table)
            .columns("id", "workspace_id", "name", "role", "created_at", "created_by")
            .values(
                SQLBind(member.id), SQLBind(member.workspaceID), SQLBind(member.name), SQLBind(member.role.rawValue),
                SQLBind(member.createdAt), SQLBind(member.createdBy)
            )
            .run()
    }

    /// A live member of a workspace.
    public func get(_ id: String, workspaceID: String, on db: any SQLDatabase) async throws -> Member? {
        try await db.select().column("*").from(Self.table)
            .where("id", .equal, id).where("workspace_id", .equal, workspaceID).where("revoked_at", .is, SQLLiteral.null)
            .first().map(Self.decode)
    }

    /// The live members of a workspace, oldest first.
    public func list(workspaceID: String, on db: any SQLDatabase) async throws -> [Member] {
        try await db.select().column("*").from(Self.table)
            .where("workspace_id", .equal, workspaceID).where("revoked_at", .is, SQLLiteral.null)
            .orderBy("created_at").orderBy("id").all().map(Self.decode)
    }

    public func revoke(_ id: String, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.tokens)
        try await db.update(Self.table).set("revoked_at", to: Timestamp.now).where("id", .equal, id).run()
    }

    /// Gives a live member another role (the application moves their tokens' role with it).
    public func setRole(_ id: String, role: MemberRole, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.tokens)
        try await db.update(Self.table).set("role", to: role.rawValue)
            .where("id", .equal, id).where("revoked_at", .is, SQLLiteral.null).run()
    }

    /// How many live members of a workspace have a role.
    public func countLive(workspaceID: String, role: MemberRole, on db: any SQLDatabase) async throws -> Int {
        let row = try await db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n").from(Self.table)
            .where("workspace_id", .equal, workspaceID).where("role", .equal, role.rawValue).where("revoked_at", .is, SQLLiteral.null)
            .first()
        return try row?.decode(column: "n", as: Int.self) ?? 0
    }

    /// Deletes every member row of a workspace (live or removed); returns how many were live. Their tokens go first
    /// (``TokenRepository/deleteAll(workspaceID:on:)``).
    @discardableResult
    public func deleteAll(workspaceID: String, on db: any SQLDatabase) async throws -> Int {
        ChangeLog.touch(.tokens)
        let live = try await list(workspaceID: workspaceID, on: db).count
        try await db.delete(from: Self.table).where("workspace_id", .equal, workspaceID).run()
        return live
    }

    static func decode(_ row: any SQLRow) throws -> Member {
        let roleText = try row.decode(column: "role", as: String.self)
        guard let role = MemberRole(rawValue: roleText) else { throw StoreError.conflict("member has an unknown role '\(roleText)'") }
        return Member(
            id: try row.decode(column: "id", as: String.self),
            workspaceID: try row.decode(column: "workspace_id", as: String.self),
            name: try row.decode(column: "name", as: String.self),
            role: role,
            createdAt: try row.decode(column: "created_at", as: String.self),
            createdBy: try row.decode(column: "created_by", as: String.self),
            revokedAt: try row.decode(column: "revoked_at", as: String?.self)
        )
    }
}
