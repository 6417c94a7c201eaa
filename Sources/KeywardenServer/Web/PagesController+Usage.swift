import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenProviders
import KeywardenStore
import KeywardenVault
import NIOCore

/// Workspace → Usage: totals and charts.
extension PagesController {
    /// The usage page: totals and a chart per grouping.
    struct UsagePage: Encodable {
        struct Totals: Encodable {
            let requests: Int
            let tokensIn: Int
            let tokensOut: Int
            let credits: String
        }

        struct Chart: Encodable {
            let title: String
            /// Drawn by ``UsageChart`` from numbers and escaped names only.
            let svg: String
            let legend: [UsageChart.LegendEntry]
        }

        let workspaceName: String
        let from: String
        let to: String
        let totals: Totals
        let charts: [Chart]
    }

    func addUsageRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("workspaces/:workspace/usage") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                try require(.usageRead, session, workspaceID)
                let workspace = try await app.workspaceService.get(workspaceID)
                let from = try UsageQuery.time(request.queryText("from"), field: "from", endOfDay: false) ?? Date().addingTimeInterval(-29 * 86_400)
                let to = try UsageQuery.time(request.queryText("to"), field: "to", endOfDay: true)
                let query = UsageQuery(workspaceID: workspaceID, from: from, to: to, groupBy: .day)
                let report = try await app.usage.report(query)
                let lastDay = String(Timestamp.string(min(to.map { $0.addingTimeInterval(-1) } ?? Date(), Date())).prefix(10))
                let days = UsageChart.days(from: String(Timestamp.string(from).prefix(10)), to: lastDay)
                let bySource = UsageChart(title: "Calls per day by source", rows: try await app.usage.daily(query, seriesBy: .source), days: days)
                let byProvider = UsageChart(title: "Calls per day by provider", rows: try await app.usage.daily(query, seriesBy: .provider), days: days)
                let content = UsagePage(
                    workspaceName: workspace.name, from: String(Timestamp.string(from).prefix(10)), to: request.queryText("to") ?? "",
                    totals: .init(requests: report.totals.requests, tokensIn: report.totals.inputTokens, tokensOut: report.totals.outputTokens,
                                  credits: String(format: "%.1f", report.totals.credits)),
                    charts: [bySource, byProvider].map { .init(title: $0.title, svg: $0.svg, legend: $0.legend) })
                let chrome = try await chrome(session, title: "Usage", nav: "navUsage", workspaceID: workspaceID)
                return WebResponse.page("usage", PageView(chrome: chrome, content: content))
            }
        }
    }
}
