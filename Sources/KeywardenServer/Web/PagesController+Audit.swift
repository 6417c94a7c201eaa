import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenProviders
import KeywardenStore
import KeywardenVault
import NIOCore

/// The audit log.
extension PagesController {
    func addAuditRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("audit") { request, _ in
            try await page(request) { session in
                let principal = session.principal
                let workspaceID: String?
                if principal.isPlatformAdmin { workspaceID = request.queryText("workspace") } else {
                    guard let own = principal.workspaceID else { throw KeywardenError.forbidden }
                    try require(.auditRead, session, own)
                    workspaceID = own
                }
                let pagination = try Pagination(page: try request.queryInt("page", code: "invalid_pagination"), perPage: 25)
                let action = request.queryText("action")
                let (entries, total) = try await app.auditQuery.page(workspaceID: workspaceID, action: action, pagination: pagination)
                var values = base(session, title: "Audit log", nav: "navAudit", workspaceID: principal.workspaceID)
                values["action"] = action ?? ""
                values["entries"] = entries.map { ["seq": $0.seq, "at": String($0.at.prefix(19)).replacingOccurrences(of: "T", with: " "), "actor": $0.actor,
                                                   "action": $0.action, "target": [$0.targetType, $0.targetID ?? ""].joined(separator: " ")] as [String: Any] }
                values.merge(Self.paging(page: pagination.page, perPage: pagination.perPage, total: total) { page in
                    "/audit?page=\(page)" + (action.map { "&action=\(Self.queryEscape($0))" } ?? "")
                }) { $1 }
                return WebResponse.page("audit", values)
            }
        }
    }
}
