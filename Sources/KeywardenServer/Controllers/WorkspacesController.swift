import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenStore

/// Workspaces: platform admins create them; members read their own; settings change by permission.
struct WorkspacesController {
    let app: AppServices

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.post { request, context -> Response in
            let principal = try Access.requirePlatform(context)
            let body = try await request.decodeBody(CreateBody.self, context: context)
            guard let name = body.name else { throw KeywardenError.missing("name") }
            let workspace = try await app.workspaceService.create(
                name: name, byokAllowed: body.byokAllowed ?? true, exclusive: body.exclusive ?? false, actor: principal.actor
            )
            return try JSONResponse.make(WorkspaceBody(workspace), status: .created)
        }
        group.get { _, context -> Response in
            let principal = try context.requirePrincipal()
            let all = try await app.workspaceService.list()
            let visible = all.filter { principal.canSee(workspace: $0.id) }
            return try JSONResponse.make(["items": visible.map(WorkspaceBody.init)])
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
                if body.exclusive != nil { _ = try Access.require(.keysUpdate, in: id, context) }
                if body.name != nil || body.notificationEmail.change != nil { _ = try Access.require(.membersManage, in: id, context) }
            }
            let workspace = try await app.workspaceService.update(id, WorkspaceChanges(
                name: body.name, byokAllowed: body.byokAllowed, exclusive: body.exclusive, notificationEmail: body.notificationEmail.change
            ), actor: principal.actor)
            return try JSONResponse.make(WorkspaceBody(workspace))
        }
    }

    struct CreateBody: RequestBody {
        static let fields: Set<String> = ["name", "byok_allowed", "exclusive"]
        let name: String?
        let byokAllowed: Bool?
        let exclusive: Bool?

        enum CodingKeys: String, CodingKey {
            case name, exclusive
            case byokAllowed = "byok_allowed"
        }
    }

    struct UpdateBody: RequestBody {
        static let fields: Set<String> = ["name", "byok_allowed", "exclusive", "notification_email"]
        static let nullableFields: Set<String> = ["notification_email"]
        let name: String?
        let byokAllowed: Bool?
        let exclusive: Bool?
        let notificationEmail: Patch<String>

        enum CodingKeys: String, CodingKey {
            case name, exclusive
            case byokAllowed = "byok_allowed"
            case notificationEmail = "notification_email"
        }
    }
}
