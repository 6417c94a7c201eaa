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
            let principal = try Access.requirePlatform(context)
            let body = try await request.decodeBody(CreateBody.self, context: context)
            guard let name = body.name else { throw KeywardenError.missing("name") }
            let workspace = try await app.workspaceService.create(
                name: name, byokAllowed: body.byokAllowed ?? true, exclusive: body.exclusive ?? false, plan: body.plan, actor: principal.actor
            )
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
                let (items, total) = try await app.workspaceService.page(search: search, pagination: pagination)
                let bodies = items.map { WorkspaceBody($0, counts: principal.isPlatformAdmin) }
                return try JSONResponse.make(PageBody(items: bodies, total: total, page: pagination.page, perPage: pagination.perPage))
            }
            // A workspace's token sees its own workspace only, under the same search.
            let workspace = try await app.workspaceService.get(own)
            let matches = Self.nameContains(workspace.name, search)
            let items = matches && pagination.page == 1 ? [WorkspaceBody(workspace)] : []
            return try JSONResponse.make(PageBody(items: items, total: matches ? 1 : 0, page: pagination.page, perPage: pagination.perPage))
        }
        group.get(":workspace") { _, context -> Response in
            let id = try context.parameters.require("workspace")
            _ = try Access.requireVisible(id, context)
            return try JSONResponse.make(WorkspaceBody(try await app.workspaceService.get(id)))
        }
        group.patch(":workspace") { request, context -> Response in
            let id = try context.parameters.require("workspace")
            let principal = try Access.requireVisible(id, context)
            let body = try await request.decodeBody(UpdateBody.self, context: context)
            // Each setting has its own owner: the plan is the platform's, exclusive mode is about keys, the rest is the team's.
            if !principal.isPlatformAdmin {
                if body.byokAllowed != nil { throw KeywardenError(.forbidden, code: "forbidden", message: "Only a platform admin can change the plan's BYOK setting.", field: "byok_allowed") }
                if body.plan.change != nil { throw KeywardenError(.forbidden, code: "forbidden", message: "Only a platform admin can change a workspace's plan.", field: "plan") }
                // Who pays when the workspace's own keys cannot is the platform's money.
                if body.platformFallback.change != nil {
                    throw KeywardenError(.forbidden, code: "forbidden", message: "Only a platform admin can change when the platform's keys stand in.", field: "platform_fallback")
                }
                if body.exclusive != nil { _ = try Access.require(.keysUpdate, in: id, context) }
                if body.name != nil || body.notificationEmail.change != nil { _ = try Access.require(.membersManage, in: id, context) }
            }
            let workspace = try await app.workspaceService.update(id, WorkspaceChanges(
                name: body.name, byokAllowed: body.byokAllowed, exclusive: body.exclusive, notificationEmail: body.notificationEmail.change,
                plan: body.plan.change, platformFallback: try body.platformFallback.change.map { try $0.map { try PlatformFallback.parse($0) } }
            ), actor: principal.actor)
            return try JSONResponse.make(WorkspaceBody(workspace))
        }
        group.delete(":workspace") { _, context -> Response in
            let id = try context.parameters.require("workspace")
            // Another workspace's token is told it does not exist; the workspace's own members and tokens may not.
            let principal = try Access.requireVisible(id, context)
            guard principal.isPlatformAdmin else { throw KeywardenError.forbidden }
            let deletion = try await app.workspaceService.delete(id, actor: principal.actor)
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
    }
}
