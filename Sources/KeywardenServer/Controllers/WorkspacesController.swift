import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenStore

/// Workspaces: platform admins create, list (searched, paged, with counts) and delete them; members read their own;
/// settings change by permission.
struct WorkspacesController {
    let app: AppServices

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.post { request, context -> Response in
            let principal = try context.requirePrincipal()
            // Refused before the body is read (the service checks again).
            try principal.authorizePlatform()
            let workspace = try await request.decodeBody(CreateBody.self, context: context).create(in: app.workspaceService, principal: principal)
            return try JSONResponse.make(WorkspaceBody(workspace), status: .created)
        }
        group.get { request, context -> Response in
            let principal = try context.requirePrincipal()
            let pagination = try Pagination(
                page: try request.queryInt("page", code: "invalid_pagination"),
                perPage: try request.queryInt("per_page", code: "invalid_pagination")
            )
            let search = request.queryText("search")
            guard let own = principal.workspaceID else {
                // A platform admin (with each workspace's counts) or a platform-bound service token: every workspace.
                let (items, total) = try await app.workspaceService.page(search: search, pagination: pagination, principal: principal)
                let bodies = items.map { WorkspaceBody($0, counts: principal.isPlatformAdmin) }
                return try JSONResponse.make(PageBody(items: bodies, total: total, page: pagination.page, perPage: pagination.perPage))
            }
            // A workspace's token sees its own workspace only, under the same search.
            let workspace = try await app.workspaceService.get(own, principal: principal)
            let matches = Self.nameContains(workspace.name, search)
            let items = matches && pagination.page == 1 ? [WorkspaceBody(workspace)] : []
            return try JSONResponse.make(PageBody(items: items, total: matches ? 1 : 0, page: pagination.page, perPage: pagination.perPage))
        }
        group.get(":workspace") { _, context -> Response in
            let id = try context.parameters.require("workspace")
            return try JSONResponse.make(WorkspaceBody(try await app.workspaceService.get(id, principal: try context.requirePrincipal())))
        }
        group.patch(":workspace") { request, context -> Response in
            let id = try context.parameters.require("workspace")
            let principal = try context.requirePrincipal()
            // Another workspace is not found before its body is read; each setting has its own owner, and the service
            // checks each change against the principal.
            guard principal.canSee(workspace: id) else { throw KeywardenError.notFound("workspace") }
            let changes = try await request.decodeBody(UpdateBody.self, context: context).changes()
            return try JSONResponse.make(WorkspaceBody(try await app.workspaceService.update(id, changes, principal: principal)))
        }
        group.delete(":workspace") { _, context -> Response in
            let id = try context.parameters.require("workspace")
            // Another workspace's token is told it does not exist; the workspace's own members and tokens may not.
            let deletion = try await app.workspaceService.delete(id, principal: try context.requirePrincipal())
            return try JSONResponse.make(DeletedBody(
                deleted: .init(keys: deletion.keys, members: deletion.members, tokens: deletion.tokens),
                message: "Workspace deleted with its \(deletion.keys) keys, \(deletion.members) members and \(deletion.tokens) tokens; its usage history is kept."
            ))
        }
    }

    /// Whether a workspace's name contains a search, as ``WorkspaceService/page(search:pagination:)`` matches it.
    static func nameContains(_ name: String, _ search: String?) -> Bool {
        guard let search = search?.trimmingCharacters(in: .whitespacesAndNewlines), !search.isEmpty else { return true }
        return name.lowercased().contains(search.lowercased())
    }

    struct DeletedBody: Encodable {
        struct Counts: Encodable {
            let keys: Int
            let members: Int
            let tokens: Int
        }
        let deleted: Counts
        let message: String
    }

    struct CreateBody: RequestBody {
        static let fields: Set<String> = ["name", "byok_allowed", "exclusive", "plan"]
        let plan: String?
        let name: String?
        let byokAllowed: Bool?
        let exclusive: Bool?

        enum CodingKeys: String, CodingKey {
            case name, exclusive, plan
            case byokAllowed = "byok_allowed"
        }

        /// Creates the workspace it describes (BYOK allowed and exclusive mode off unless said).
        func create(in service: WorkspaceService, principal: Principal) async throws -> Workspace {
            try principal.authorizePlatform()
            guard let name else { throw KeywardenError.missing("name") }
            return try await service.create(name: name, byokAllowed: byokAllowed ?? true, exclusive: exclusive ?? false, plan: plan, principal: principal)
        }
    }

    struct UpdateBody: RequestBody {
        static let fields: Set<String> = ["name", "byok_allowed", "exclusive", "notification_email", "plan", "platform_fallback"]
        static let nullableFields: Set<String> = ["notification_email", "plan", "platform_fallback"]
        let plan: Patch<String>
        let platformFallback: Patch<String>
        let name: String?
        let byokAllowed: Bool?
        let exclusive: Bool?
        let notificationEmail: Patch<String>

        enum CodingKeys: String, CodingKey {
            case name, exclusive, plan
            case byokAllowed = "byok_allowed"
            case notificationEmail = "notification_email"
            case platformFallback = "platform_fallback"
        }

        /// The changes it asks for (a field left out keeps its value; `null` clears it).
        func changes() throws -> WorkspaceChanges {
            WorkspaceChanges(name: name, byokAllowed: byokAllowed, exclusive: exclusive, notificationEmail: notificationEmail.change,
                             plan: plan.change, platformFallback: try platformFallback.change.map { try $0.map { try PlatformFallback.parse($0) } })
        }
    }
}
