import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenStore

/// `GET /api/v1/audit?workspace=&action=&page=&per_page=`: platform admins see all; workspaces their own.
struct AuditController {
    let app: AppServices

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.get { request, context -> Response in
            let pagination = try Pagination(
                page: try request.queryInt("page", code: "invalid_pagination"),
                perPage: try request.queryInt("per_page", code: "invalid_pagination")
            )
            let workspaceID = try Access.readScope(.auditRead, requested: request.queryText("workspace"), platformWide: false, context)
            let (entries, total) = try await app.auditQuery.page(workspaceID: workspaceID, action: request.queryText("action"), pagination: pagination)
            return try JSONResponse.make(PageBody(items: entries, total: total, page: pagination.page, perPage: pagination.perPage))
        }
    }
}
