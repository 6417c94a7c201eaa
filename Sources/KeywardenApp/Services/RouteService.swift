import Foundation
import KeywardenCore
import KeywardenStore

/// Chat routes of the platform and of each workspace: validated against the catalog, audited, and (through the
/// change log) on every instance as soon as they commit.
///
/// Authorizes the caller itself: a workspace's routes are read with `keys.read` and changed with `keys.update` in that
/// workspace; the platform's are the platform admin's.
public struct RouteService: Sendable {
    let app: AppServices
    var store: Store { app.store }

    /// Where a route lives.
    public enum Owner: Sendable, Equatable {
        case platform
        case workspace(String)

        var workspaceID: String? {
            if case .workspace(let id) = self { return id }
            return nil
        }
    }

    /// The routes of an owner, by name.
    public func list(_ owner: Owner, principal: Principal) async throws -> [ChatRoute] {
        try principal.authorize(.keysRead, inWorkspace: owner.workspaceID)
        return try await store.engine.read { db in
            if let id = owner.workspaceID, try await self.store.workspaces.get(id, on: db) == nil { throw KeywardenError.notFound("workspace") }
            return try await self.store.routes.list(workspaceID: owner.workspaceID, on: db)
        }
    }

    /// Creates or replaces a route, audited as `route.set` with its steps (never a secret: providers and models).
    public func set(_ owner: Owner, name: String, steps: [ChatRoute.Step], principal: Principal) async throws -> ChatRoute {
        try principal.authorize(.keysUpdate, inWorkspace: owner.workspaceID)
        let route = ChatRoute(name: name, workspaceID: owner.workspaceID, steps: steps)
        try route.validate(in: store.catalog)
        return try await store.engine.transaction { db in
            if let id = owner.workspaceID, try await self.store.workspaces.get(id, on: db) == nil { throw KeywardenError.notFound("workspace") }
            let previous = try await self.store.routes.put(route, actor: principal.actor, on: db)
            try await self.store.audit.append(AuditEvent(
                actor: principal.actor, action: "route.set", targetType: "route", targetID: name, workspaceID: owner.workspaceID,
                details: ["steps": Self.describe(route.steps), "previous": previous.map { Self.describe($0.steps) } ?? "-"]
            ), on: db)
            return route
        }
    }

    /// Removes a route, audited as `route.removed`; an unknown one is `not_found`.
    public func delete(_ owner: Owner, name: String, principal: Principal) async throws {
        try principal.authorize(.keysUpdate, inWorkspace: owner.workspaceID)
        try await store.engine.transaction { db in
            guard let removed = try await self.store.routes.delete(workspaceID: owner.workspaceID, name: name, on: db) else {
                throw KeywardenError.notFound("route")
            }
            try await self.store.audit.append(AuditEvent(
                actor: principal.actor, action: "route.removed", targetType: "route", targetID: name, workspaceID: owner.workspaceID,
                details: ["steps": Self.describe(removed.steps)]
            ), on: db)
        }
    }

    /// Steps as the audit log shows them: `anthropic/claude-opus-4-7 > openai/gpt-5.4-mini`.
    static func describe(_ steps: [ChatRoute.Step]) -> String {
        steps.map { "\($0.provider)/\($0.model)" }.joined(separator: " > ")
    }
}
