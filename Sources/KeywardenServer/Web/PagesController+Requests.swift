import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenStore

/// Workspace → Requests and Platform → Requests: the request log, filtered, paged by cursor.
extension PagesController {
    /// The request log page.
    struct RequestsPage: Encodable {
        struct Option: Encodable {
            let value: String
            let label: String
            let selected: Bool
        }

        struct Entry: Encodable {
            let id: String
            let at: String
            let when: String
            let workspace: String
            let workspaceLink: String?
            let status: Int
            let statusClass: String
            let provider: String
            let model: String?
            let key: String
            let paidBy: String
            let tokens: String
            let credits: String
            let latency: String
            let attempts: Int
            /// "1 failover", shown when keys were tried before the one that answered.
            let failovers: String?
        }

        let workspaceName: String?
        let platform: Bool
        let basePath: String
        let workspaces: [Option]
        let statuses: [Option]
        let providers: [Option]
        let keys: [Option]
        let sources: [Option]
        let from: String
        let to: String
        let filtered: Bool
        let entries: [Entry]
        let columns: Int
        let emptyText: String
        let newest: String?
        let older: String?
    }

    /// Query parameters the page's filters keep from one page to the next.
    static let requestFilterNames = ["workspace", "status", "provider", "key", "source", "consumer", "from", "to"]

    func addRequestLogRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("workspaces/:workspace/requests") { request, context in
            try await page(request) { session in
                try await requestsPage(request, session: session, scope: .workspace(try context.parameters.require("workspace")))
            }
        }
        router.get("platform/requests") { request, _ in
            try await page(request) { session in try await requestsPage(request, session: session, scope: .platform) }
        }
    }

    func requestsPage(_ request: Request, session: WebSession, scope: RequestLogService.Scope) async throws -> Response {
        let principal = session.principal
        let platform = scope == .platform
        let workspaceID: String? = if case .workspace(let id) = scope { id } else { nil }
        let basePath = workspaceID.map { "/workspaces/\($0)/requests" } ?? "/platform/requests"
        let filter = try RequestLogController.filter(request, catalog: app.catalog, platform: platform)
        let log = try await app.requestLog.page(scope, filter: filter, cursor: request.queryText("cursor"), principal: principal)
        let keys = try await app.requestLog.keys(scope, principal: principal)
        var workspaceName: String?
        if let workspaceID { workspaceName = try await app.workspaceService.get(workspaceID).name }
        let kept = Self.requestFilterNames.compactMap { name in request.queryText(name).map { "\(name)=\(Self.queryEscape($0))" } }
        func link(cursor: String?) -> String {
            let parts = kept + (cursor.map { ["cursor=\(Self.queryEscape($0))"] } ?? [])
            return parts.isEmpty ? basePath : basePath + "?" + parts.joined(separator: "&")
        }
        let selected = { (name: String) in request.queryText(name) ?? "" }
        var workspaces: [RequestsPage.Option] = []
        if platform {
            let first = try await app.workspaceService.page(search: nil, pagination: try Pagination(page: 1, perPage: Self.switcherSize)).items
            workspaces = first.map { .init(value: $0.workspace.id, label: $0.workspace.name, selected: $0.workspace.id == selected("workspace")) }
        }
        let entries = log.entries.map { entry -> RequestsPage.Entry in
            let record = entry.record
            let tokens = [record.counts.inputTokens, record.counts.outputTokens].map { $0.map(String.init) ?? "–" }.joined(separator: " / ")
            return .init(
                id: record.id, at: Timestamp.string(record.at), when: Self.preciseTime(record.at),
                workspace: entry.workspaceName ?? record.workspaceID ?? "", workspaceLink: record.workspaceID.map { "/workspaces/\($0)/requests" },
                status: record.status, statusClass: record.status < 400 ? "ok" : record.status == 429 ? "warn" : "bad",
                provider: app.catalog.provider(record.providerID)?.displayName ?? record.providerID, model: record.model,
                key: entry.key?.name ?? "—", paidBy: Self.paidBy(record.source),
                tokens: record.counts.characters.map { "\($0) characters" } ?? tokens,
                credits: BudgetService.credits(record.milliCredits), latency: "\(record.latencyMilliseconds) ms", attempts: record.attempts,
                failovers: entry.failovers == 0 ? nil : Plural.count(entry.failovers, "failover"))
        }
        let filtered = Self.requestFilterNames.contains { request.queryText($0) != nil }
        let content = RequestsPage(
            workspaceName: workspaceName, platform: platform, basePath: basePath, workspaces: workspaces,
            statuses: [("", "All statuses"), ("ok", "Succeeded"), ("error", "Failed"), ("429", "429 rate limited")]
                .map { .init(value: $0.0, label: $0.1, selected: selected("status") == $0.0) },
            providers: app.catalog.providers.map { .init(value: $0.id, label: $0.displayName, selected: selected("provider") == $0.id) },
            keys: keys.map { .init(value: $0.id, label: "\($0.description.isEmpty ? $0.providerID : $0.description) (\($0.providerID))",
                                   selected: selected("key") == $0.id) },
            sources: [("", "Anyone"), ("byok", "Own key"), ("platform", "Platform"), ("managed", "Managed default")]
                .map { .init(value: $0.0, label: $0.1, selected: selected("source") == $0.0) },
            from: selected("from"), to: selected("to"), filtered: filtered, entries: entries, columns: platform ? 10 : 9,
            emptyText: filtered ? "No calls match these filters." : "No calls yet. Calls through the gateway appear here as they finish.",
            newest: request.queryText("cursor") == nil ? nil : link(cursor: nil), older: log.nextCursor.map { link(cursor: $0) })
        let chrome = try await chrome(session, title: "Requests", nav: platform ? "navPlatformRequests" : "navRequests", workspaceID: workspaceID)
        return WebResponse.page("requests", PageView(chrome: chrome, content: content))
    }

    /// Who paid for a call, in words.
    static func paidBy(_ source: KeySource?) -> String {
        switch source {
        case .byok?: return "Own key"
        case .platform?: return "Platform"
        case .managed?: return "Managed default"
        case nil: return "—"
        }
    }

}
