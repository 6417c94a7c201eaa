import Foundation
import KeywardenCore
import KeywardenVault
import SQLKit

/// What a token lets its holder be.
public enum TokenKind: String, Codable, Sendable {
    case platformAdmin = "platform_admin"
    case member
    case service
}

/// A stored token: its digest and who it belongs to, never the token itself.
public struct TokenRecord: Sendable, Equatable {
    public let id: String
    public let displayPrefix: String
    public var name: String
    public let kind: TokenKind
    public let workspaceID: String?
    public var role: String?
    public var permissions: [String]
    public let createdAt: String
    public let createdBy: String
    public var lastUsedAt: String?
    public var revokedAt: String?
}

/// The `tokens` table.
public struct TokenRepository: Sendable {
    static let table = "tokens"
    let audit = AuditLog()

    public init() {}

    /// Issues a new token and stores its digest; the returned token is the only copy.
    public func issue(
        name: String, kind: TokenKind, workspaceID: String? = nil, role: String? = nil,
        permissions: [String] = [], actor: String, on db: any SQLDatabase
    ) async throws -> (AccessToken, TokenRecord) {
        let token = AccessToken.generate()
        let record = TokenRecord(
            id: Identifier.make("tok"), displayPrefix: token.displayPrefix, name: name, kind: kind,
            workspaceID: workspaceID, role: role, permissions: permissions, createdAt: Timestamp.now,
            createdBy: actor, lastUsedAt: nil, revokedAt: nil
        )
        try await db.insert(into: Self.table)
            .columns("id", "digest", "display_prefix", "name", "kind", "workspace_id", "role", "permissions", "created_at", "created_by")
            .values(
                SQLBind(record.id), SQLBind(token.digest), SQLBind(record.displayPrefix), SQLBind(name),
                SQLBind(kind.rawValue), SQLBind(workspaceID), SQLBind(role),
                SQLBind(CredentialRepository.encodeList(permissions)), SQLBind(record.createdAt), SQLBind(actor)
            )
            .run()
        try await audit.append(AuditEvent(
            actor: actor, action: "token.created", targetType: "token", targetID: record.id, workspaceID: workspaceID,
            details: ["kind": kind.rawValue, "name": name, "prefix": record.displayPrefix]
        ), on: db)
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

    /// How many live tokens of a kind exist.
    public func countLive(kind: TokenKind, on db: any SQLDatabase) async throws -> Int {
        let row = try await db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n").from(Self.table)
            .where("kind", .equal, kind.rawValue).where("revoked_at", .is, SQLLiteral.null).first()
        return try row?.decode(column: "n", as: Int.self) ?? 0
    }

    static func decode(_ row: any SQLRow) throws -> TokenRecord {
        let kindText = try row.decode(column: "kind", as: String.self)
        // An unknown kind grants nothing: it is an error, never a guess.
        guard let kind = TokenKind(rawValue: kindText) else {
            throw StoreError.conflict("token has an unknown kind '\(kindText)'")
        }
        return TokenRecord(
            id: try row.decode(column: "id", as: String.self),
            displayPrefix: try row.decode(column: "display_prefix", as: String.self),
            name: try row.decode(column: "name", as: String.self),
            kind: kind,
            workspaceID: try row.decode(column: "workspace_id", as: String?.self),
            role: try row.decode(column: "role", as: String?.self),
            permissions: CredentialRepository.decodeList(try row.decode(column: "permissions", as: String.self)),
            createdAt: try row.decode(column: "created_at", as: String.self),
            createdBy: try row.decode(column: "created_by", as: String.self),
            lastUsedAt: try row.decode(column: "last_used_at", as: String?.self),
            revokedAt: try row.decode(column: "revoked_at", as: String?.self)
        )
    }
}
