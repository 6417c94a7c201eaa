import Hummingbird
import KeywardenCore
import KeywardenStore

/// `GET /api/v1/audit?workspace=&action=&page=&per_page=`: platform admins see all; workspaces their own.
struct AuditController {
    let store: Store

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.get { request, context -> Response in
            let principal = try context.requirePrincipal()
            let pagination = try Pagination(
                page: try request.queryInt("page", code: "invalid_pagination"),
                perPage: try request.queryInt("per_page", code: "invalid_pagination")
            )
            let requested = request.queryText("workspace")
            let workspaceID: String?
            if principal.isPlatformAdmin {
                workspaceID = requested
            } else if let own = principal.workspaceID {
                // A workspace token reads its own log; naming another workspace is a 404.
                if let requested, requested != own { throw KeywardenError.notFound("workspace") }
                _ = try Access.require(.auditRead, in: own, context)
                workspaceID = own
            } else {
                // A platform-bound service token reads one workspace at a time.
                guard let requested else { throw KeywardenError.missing("workspace", "Name the workspace: ?workspace=…") }
                _ = try Access.require(.auditRead, in: requested, context)
                workspaceID = requested
            }
            let (entries, total) = try await store.auditQuery.page(workspaceID: workspaceID, action: request.queryText("action"), pagination: pagination)
            return try JSONResponse.make(PageBody(items: entries, total: total, page: pagination.page, perPage: pagination.perPage))
        }
    }
}
