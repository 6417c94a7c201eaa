import Foundation
import Hummingbird
import KeywardenApp
import KeywardenCore
import KeywardenStore

/// Workspace → Custody: every use of the workspace's own secrets, newest first, with its place in the workspace's hash
/// chain and a download of the whole log (`audit.read`).
extension PagesController {
    struct CustodyPage: Encodable {
        struct Row: Encodable {
            let seq: Int
            let use: String
            let key: String
            let count: Int
            let period: String
            let actor: String
            let hash: String
        }

        let workspaceID: String
        let rows: [Row]
        let total: Int
        let previousPage: Int?
        let nextPage: Int?
        let emptyText: String
    }

    func addCustodyRoutes(to router: Router<KeywardenRequestContext>) {
        addCustodyExportRoute(to: router)
        router.get("workspaces/:workspace/custody") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let pagination = try Pagination(page: try request.queryInt("page", code: "invalid_pagination"), perPage: 50)
                let (entries, total, names) = try await app.custody.page(workspaceID: workspaceID, pagination: pagination, principal: session.principal)
                let rows = entries.map { entry in
                    CustodyPage.Row(
                        seq: entry.seq, use: Self.custodyUseLabel(entry.use), key: names[entry.credentialID] ?? "\(entry.credentialID) (deleted)",
                        count: entry.count, period: entry.firstAt == entry.lastAt ? entry.firstAt : "\(entry.firstAt) – \(entry.lastAt)",
                        actor: entry.actor, hash: String(entry.hash.prefix(12))
                    )
                }
                let content = CustodyPage(
                    workspaceID: workspaceID, rows: rows, total: total,
                    previousPage: pagination.page > 1 ? pagination.page - 1 : nil,
                    nextPage: pagination.offset + entries.count < total ? pagination.page + 1 : nil,
                    emptyText: "No use of this workspace's own keys is recorded yet."
                )
                let chrome = try await chrome(session, title: "Custody", nav: "navCustody", workspaceID: workspaceID)
                return WebResponse.page("custody", PageView(chrome: chrome, content: content))
            }
        }
    }

    func addCustodyExportRoute(to router: Router<KeywardenRequestContext>) {
        router.get("workspaces/:workspace/custody/export.jsonl") { request, context in
            try await page(request) { session in
                try await CustodyController.exportResponse(app: app, workspaceID: try context.parameters.require("workspace"), principal: session.principal)
            }
        }
    }

    static func custodyUseLabel(_ use: CustodyUse) -> String {
        switch use {
        case .gatewayCall: return "Gateway calls"
        case .test: return "Test"
        case .healthCheck: return "Health check"
        case .reveal: return "Revealed"
        case .rotation: return "Rotation"
        }
    }
}
