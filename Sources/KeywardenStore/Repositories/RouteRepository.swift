import Foundation
import KeywardenCore
import SQLKit

/// The `routes` table: chat routes of the platform (`owner` "") and of each workspace.
public struct RouteRepository: Sendable {
    package static let table = "routes"

    public init() {}

    private static func owner(_ workspaceID: String?) -> String { workspaceID ?? "" }

    private static func scope(_ workspaceID: String?) -> ChangeScope { workspaceID.map(ChangeScope.workspace) ?? .platform }

    /// Creates or replaces a route; returns the one it replaced.
    @discardableResult
    public func put(_ route: ChatRoute, actor: String, on db: any SQLDatabase) async throws -> ChatRoute? {
        ChangeLog.touch(Self.scope(route.workspaceID))
        let previous = try await delete(workspaceID: route.workspaceID, name: route.name, on: db)
        let steps = String(decoding: try JSONEncoder().encode(route.steps), as: UTF8.self)
        try await db.insert(into: Self.table)
            .columns("owner", "name", "steps", "updated_at", "updated_by")
            .values(SQLBind(Self.owner(route.workspaceID)), SQLBind(route.name), SQLBind(steps), SQLBind(Timestamp.now), SQLBind(actor))
            .run()
        return previous
    }

    /// Removes a route; returns it, when there was one.
    @discardableResult
    public func delete(workspaceID: String?, name: String, on db: any SQLDatabase) async throws -> ChatRoute? {
        ChangeLog.touch(Self.scope(workspaceID))
        let existing = try await list(workspaceID: workspaceID, on: db).first { $0.name == name }
        guard existing != nil else { return nil }
        try await db.delete(from: Self.table).where("owner", .equal, Self.owner(workspaceID)).where("name", .equal, name).run()
        return existing
    }

    /// Removes every route of a workspace.
    public func deleteAll(workspaceID: String, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.workspace(workspaceID))
        try await db.delete(from: Self.table).where("owner", .equal, workspaceID).run()
    }

    /// The routes of a workspace, or the platform's (`nil`), by name.
    public func list(workspaceID: String?, on db: any SQLDatabase) async throws -> [ChatRoute] {
        try await db.select().column("*").from(Self.table).where("owner", .equal, Self.owner(workspaceID)).orderBy("name").all().map { row in
            let owner = try row.decode(column: "owner", as: String.self)
            let steps = try row.decode(column: "steps", as: String.self)
            return ChatRoute(name: try row.decode(column: "name", as: String.self), workspaceID: owner.isEmpty ? nil : owner,
                             steps: (try? JSONDecoder().decode([ChatRoute.Step].self, from: Data(steps.utf8))) ?? [])
        }
    }
}
