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
    /// The audit log page.
    struct AuditPage: Encodable {
        struct Entry: Encodable {
            let seq: Int
            let at: String
            let actor: String
            let action: String
            let target: String
        }

        let action: String
        let entries: [Entry]
        let paging: Paging
    }

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
                let content = AuditPage(
                    action: action ?? "",
                    entries: entries.map { entry in
                        .init(seq: entry.seq, at: String(entry.at.prefix(19)).replacingOccurrences(of: "T", with: " "), actor: entry.actor,
                              action: entry.action, target: [entry.targetType, entry.targetID ?? ""].joined(separator: " "))
                    },
                    paging: Paging(page: pagination.page, perPage: pagination.perPage, total: total) { page in
                        "/audit?page=\(page)" + (action.map { "&action=\(Self.queryEscape($0))" } ?? "")
                    })
                let chrome = try await chrome(session, title: "Audit log", nav: "navAudit", workspaceID: principal.workspaceID)
                return WebResponse.page("audit", PageView(chrome: chrome, content: content))
            }
        }
    }
}
