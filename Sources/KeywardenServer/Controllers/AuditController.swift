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
            let filter = AuditFilter(workspaceID: request.queryText("workspace"), action: request.queryText("action"), actor: request.queryText("actor"),
                                     targetType: request.queryText("target_type"), targetID: request.queryText("target_id"))
            let (_, entries, total) = try await app.auditQuery.page(filter, pagination: pagination, principal: try context.requirePrincipal())
            let named = try await app.auditQuery.named(entries)
            return try JSONResponse.make(PageBody(items: named.map(NamedEntryBody.init), total: total, page: pagination.page, perPage: pagination.perPage))
        }
    }
}

/// An entry as stored (its hash covers these members), with the names of who acted and on what as they are now.
struct NamedEntryBody: Encodable {
    let entry: AuditEntry
    let actorName: String
    let targetName: String?

    init(_ named: NamedAuditEntry) {
        entry = named.entry
        actorName = named.actorName
        targetName = named.targetName
    }

    enum CodingKeys: String, CodingKey { case actorName = "actor_name", targetName = "target_name" }

    func encode(to encoder: any Encoder) throws {
        try entry.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(actorName, forKey: .actorName)
        try container.encodeIfPresent(targetName, forKey: .targetName)
    }
}
