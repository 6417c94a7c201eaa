import Foundation
import KeywardenCore
import SQLKit

/// A URL that receives signed events, for one workspace or for the platform (`workspaceID == nil`).
public struct Webhook: Sendable, Equatable {
    public let id: String
    public let workspaceID: String?
    public var url: String
    public var description: String
    /// The event kinds it wants; empty means all.
    public var events: [EventKind]
    public var active: Bool
    public let createdAt: String
    public let createdBy: String

    public init(id: String, workspaceID: String?, url: String, description: String, events: [EventKind], active: Bool, createdAt: String, createdBy: String) {
        self.id = id
        self.workspaceID = workspaceID
        self.url = url
        self.description = description
        self.events = events
        self.active = active
        self.createdAt = createdAt
        self.createdBy = createdBy
    }

    /// Whether it wants events of this kind.
    public func wants(_ kind: EventKind) -> Bool { active && (events.isEmpty || events.contains(kind) || kind == .test) }
}

/// The `webhooks` table. Each hook's signing secret lives sealed in the vault (field `signing_secret`).
public struct WebhookRepository: Sendable {
    package static let table = "webhooks"
    /// The vault field of a webhook's signing secret.
    public static let secretField = "signing_secret"

    public init() {}

    public func insert(_ hook: Webhook, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.uncached)
        try await db.insert(into: Self.table)
            .columns("id", "workspace_id", "url", "description", "events", "active", "created_at", "created_by")
            .values(SQLBind(hook.id), SQLBind(hook.workspaceID), SQLBind(hook.url), SQLBind(hook.description),
                    SQLBind(JSONList.encode(hook.events.map(\.rawValue))), SQLBind(hook.active), SQLBind(hook.createdAt), SQLBind(hook.createdBy))
            .run()
    }

    /// One hook of a workspace (or of the platform); another scope's hook is not found.
    public func get(_ id: String, workspaceID: String?, on db: any SQLDatabase) async throws -> Webhook? {
        guard let hook = try await get(id, on: db), hook.workspaceID == workspaceID else { return nil }
        return hook
    }

    public func get(_ id: String, on db: any SQLDatabase) async throws -> Webhook? {
        try await db.select().column("*").from(Self.table).where("id", .equal, id).first().map(Self.decode)
    }

    public func list(workspaceID: String?, on db: any SQLDatabase) async throws -> [Webhook] {
        var query = db.select().column("*").from(Self.table)
        query = workspaceID.map { query.where("workspace_id", .equal, $0) } ?? query.where("workspace_id", .is, SQLLiteral.null)
        return try await query.orderBy("created_at").orderBy("id").all().map(Self.decode)
    }

    public func delete(_ id: String, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.uncached)
        try await db.delete(from: Self.table).where("id", .equal, id).run()
    }

    /// The hooks an event goes to: the workspace's own, and every platform hook — except a workspace's test event,
    /// which reaches the workspace's hooks only (a tenant cannot make the platform's receivers ring).
    func subscribers(of kind: EventKind, workspaceID: String?, on db: any SQLDatabase) async throws -> [Webhook] {
        var hooks = kind == .test && workspaceID != nil ? [] : try await list(workspaceID: nil, on: db)
        if let workspaceID { hooks += try await list(workspaceID: workspaceID, on: db) }
        return hooks.filter { $0.wants(kind) }
    }

    static func decode(_ row: any SQLRow) throws -> Webhook {
        Webhook(
            id: try row.decode(column: "id", as: String.self),
            workspaceID: try row.decode(column: "workspace_id", as: String?.self),
            url: try row.decode(column: "url", as: String.self),
            description: try row.decode(column: "description", as: String.self),
            events: JSONList.decode(try row.decode(column: "events", as: String.self)).compactMap(EventKind.init(rawValue:)),
            active: try row.decode(column: "active", as: Bool.self),
            createdAt: try row.decode(column: "created_at", as: String.self),
            createdBy: try row.decode(column: "created_by", as: String.self)
        )
    }
}
