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

        /// Credits of the period by who paid: the platform (its keys and the managed default) or the workspace's own keys.
        struct PaidBy: Encodable {
            let label: String
            let credits: String
            /// "3 calls".
            let calls: String
        }

        /// One row of a spend table (per key, per model).
        struct SpendRow: Encodable {
            let name: String
            let calls: Int
            let errors: Int
            let tokens: String
            let credits: String
        }

        struct SpendTable: Encodable {
            let title: String
            let column: String
            let rows: [SpendRow]
        }

        struct Chart: Encodable {
            let title: String
            /// Drawn by ``UsageChart`` from numbers and escaped names only.
            let svg: String
            let legend: [UsageChart.LegendEntry]
        }

        struct PeriodOption: Encodable {
            let value: String
            let label: String
            let selected: Bool
        }

        /// A budget's progress this period.
        struct BudgetBar: Encodable {
            let title: String
            let spent: String
            let limit: String
            let percent: Int
            let percentText: String
            let periodEnd: String
            let level: String
            let isDefault: Bool
            /// Where the limit comes from, when not the workspace's own: "its plan's limit", "the platform's default limit".
            let limitSource: String?
        }

        let workspaceID: String
        let workspaceName: String
        /// What the totals cover, in words ("this budget period, from 2026-12-01").
        let span: String
        let spendTables: [SpendTable]
        let from: String
        let to: String
        let totals: Totals
        let paidBy: [PaidBy]
        let charts: [Chart]
        let budgets: [BudgetBar]
        /// Who pays when the workspace's own keys cannot (beside the own-keys budget it bears on).
        let fallback: FallbackLine
        /// Platform admins set the limits here.
        let canSetBudget: Bool
        let platformLimit: String
        let byokLimit: String
        let requestsPerMinute: String
        let tokensPerMinute: String
        /// The budget period choices, the workspace's own selected (blank: its plan's, else calendar months).
        let periods: [PeriodOption]
        /// The usage of the chosen period as CSV and JSON lines.
        let exportQuery: String
    }

    func addUsageRoutes(to router: Router<KeywardenRequestContext>) {
        for format in UsageExport.Format.allCases {
            router.get(RouterPath("workspaces/:workspace/usage/export.\(format.rawValue)")) { request, context in
                try await page(request) { session in
                    try await UsageController.exportResponse(app: app, request: request, workspaceID: try context.parameters.require("workspace"),
                                                             format: format, principal: session.principal)
                }
            }
        }
        router.post("workspaces/:workspace/budget") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                do {
                    // The form is `PATCH …/budget` and `PATCH …/rate-limits` in one: blank is no limit. As at the API, refused
                    // before the form is read (the services check again).
                    try session.principal.authorizePlatform()
                    let budgets = try form.decode(BudgetController.UpdateBody.self, clearing: BudgetController.UpdateBody.fields)
                    let rates = try form.decode(BudgetController.RateLimitsUpdate.self, clearing: BudgetController.RateLimitsUpdate.fields)
                    // Every value checked before either is set: a refused form changes nothing.
                    try budgets.check()
                    try rates.check()
                    try await budgets.apply(to: workspaceID, app: app, principal: session.principal)
                    try await rates.apply(to: workspaceID, app: app, principal: session.principal)
                } catch let error as KeywardenError where error.isAboutInput {
                    return try await usagePage(request, session: session, workspaceID: workspaceID, error: error.message, status: APIError(error).status)
                }
                return WebResponse.redirect("/workspaces/\(workspaceID)/usage?notice=budget")
            }
        }
        router.get("workspaces/:workspace/usage") { request, context in
            try await page(request) { session in
                try await usagePage(request, session: session, workspaceID: try context.parameters.require("workspace"),
                                    notice: request.queryText("notice") == "budget" ? "Budget saved." : nil)
            }
        }
    }

    func usagePage(_ request: Request, session: WebSession, workspaceID: String, notice: String? = nil, error: String? = nil,
                   status: HTTPResponse.Status = .ok) async throws -> Response {
        // Read first: a caller without usage.read in the workspace sees none of the page.
        _ = try app.usage.scoped(UsageQuery(workspaceID: workspaceID, from: nil, to: nil, groupBy: .source), principal: session.principal)
        let workspace = try await app.workspaceService.get(workspaceID, principal: session.principal)
        // The budget meters and the totals cover the same span unless the reader picks another: the current budget period.
        let statuses = try await app.budgets.status(workspaceID: workspaceID, defaultPlatformLimit: defaultPlatformBudget, principal: session.principal)
        let currentPeriod = statuses.first?.period ?? BudgetPeriod(containing: Date())
        let from = try UsageQuery.time(request.queryText("from"), field: "from", endOfDay: false) ?? currentPeriod.start
        let to = try UsageQuery.time(request.queryText("to"), field: "to", endOfDay: true)
        let isCurrentPeriod = request.queryText("from") == nil && request.queryText("to") == nil
        let query = UsageQuery(workspaceID: workspaceID, from: from, to: to, groupBy: .source)
        let report = try await app.usage.report(query, principal: session.principal).report
        // Who paid: the platform (its keys and the managed default) against the workspace's own keys.
        func sum(_ sources: [KeySource]) -> (milliCredits: Int, calls: Int) {
            report.groups.filter { group in sources.contains { $0.rawValue == group.key } }
                .reduce((0, 0)) { ($0.0.saturatingAdding($1.totals.milliCredits), $0.1 + $1.totals.requests) }
        }
        let platformPaid = sum([.platform, .managed]), ownKeys = sum([.byok])
        let paidBy: [UsagePage.PaidBy] = [
            .init(label: "Credits the platform paid (its keys and the managed default)", credits: BudgetService.credits(platformPaid.milliCredits),
                  calls: Plural.count(platformPaid.calls, "call")),
            .init(label: "Credits on the workspace's own keys", credits: BudgetService.credits(ownKeys.milliCredits), calls: Plural.count(ownKeys.calls, "call")),
        ]
        let lastDay = String(Timestamp.string(min(to.map { $0.addingTimeInterval(-1) } ?? Date(), Date())).prefix(10))
        let days = UsageChart.days(from: String(Timestamp.string(from).prefix(10)), to: lastDay)
        let bySource = UsageChart(title: "Calls per day by source", rows: try await app.usage.daily(query, seriesBy: .source, principal: session.principal), days: days)
        let byProvider = UsageChart(title: "Calls per day by provider", rows: try await app.usage.daily(query, seriesBy: .provider, principal: session.principal), days: days)
        let budgets = statuses.compactMap { status -> UsagePage.BudgetBar? in
            guard let limit = status.limit, let fraction = status.fraction else { return nil }
            let percent = Int((fraction * 100).rounded(.down))
            let period = status.cycle.currentPeriodName
            let source: String? = switch status.source {
            case .plan?: "its plan's limit"
            case .platformDefault?: "the platform's default limit"
            default: nil
            }
            return .init(title: status.scope == .platform ? "Platform-paid calls \(period)" : "Your own keys \(period)",
                         spent: BudgetService.credits(status.spent), limit: BudgetService.credits(limit), percent: min(100, percent),
                         percentText: "\(percent) %", periodEnd: String(Timestamp.string(status.period.end).prefix(10)),
                         level: percent >= 100 ? "bad" : percent >= 80 ? "warn" : "ok", isDefault: status.isDefault, limitSource: source)
        }
        let settings = try await app.workspaceService.get(workspaceID)
        let own = settings.budget
        var exportParts = ["from=\(String(Timestamp.string(from).prefix(10)))"]
        if let text = request.queryText("to") { exportParts.append("to=\(Self.queryEscape(text))") }
        let spendTables = [
            UsagePage.SpendTable(title: "Spend per key", column: "Key", rows: try await spendRows(query, by: .key, session: session, workspaceID: workspaceID)),
            UsagePage.SpendTable(title: "Spend per model", column: "Model", rows: try await spendRows(query, by: .model, session: session, workspaceID: workspaceID)),
        ]
        let periodName = currentPeriod.end.timeIntervalSince(currentPeriod.start) > 86_400 * 20 ? "month" : "period"
        let span = isCurrentPeriod
            ? "This budget \(periodName), from \(String(Timestamp.string(currentPeriod.start).prefix(10))) to \(String(Timestamp.string(currentPeriod.end).prefix(10))) (UTC): the same span as the budget meters."
            : "From \(String(Timestamp.string(from).prefix(10)))" + (to.map { " to \(String(Timestamp.string($0.addingTimeInterval(-1)).prefix(10))) (inclusive)" } ?? " to now") + "."
        let content = UsagePage(
            workspaceID: workspaceID, workspaceName: workspace.name, span: span, spendTables: spendTables, from: String(Timestamp.string(from).prefix(10)), to: request.queryText("to") ?? "",
            totals: .init(requests: report.totals.requests, tokensIn: report.totals.inputTokens, tokensOut: report.totals.outputTokens,
                          credits: BudgetService.credits(report.totals.milliCredits)),
            paidBy: paidBy,
            charts: [bySource, byProvider].map { .init(title: $0.title, svg: $0.svg, legend: $0.legend) },
            budgets: budgets, fallback: try await fallbackLine(settings), canSetBudget: session.principal.isPlatformAdmin,
            platformLimit: own.platform.map(BudgetService.credits) ?? "", byokLimit: own.byok.map(BudgetService.credits) ?? "",
            requestsPerMinute: settings.rateLimits.requestsPerMinute.map(String.init) ?? "",
            tokensPerMinute: settings.rateLimits.tokensPerMinute.map(String.init) ?? "",
            periods: [("", "Its plan's (else calendar months)"), ("month", "Calendar month"), ("week", "Week (from Monday)"), ("day", "Day")]
                .map { .init(value: $0.0, label: $0.1, selected: (settings.budgetCycle?.text ?? "") == $0.0) }
                + (settings.budgetCycle.map { cycle in
                    if case .month(let day) = cycle, day > 1 { return [.init(value: cycle.text, label: "Month from day \(day)", selected: true)] }
                    return []
                } ?? []),
            exportQuery: exportParts.joined(separator: "&"))
        let chrome = try await chrome(session, title: "Usage", nav: "navUsage", workspaceID: workspaceID, notice: notice, error: error)
        return WebResponse.page("usage", PageView(chrome: chrome, content: content), status: status)
    }

    /// A spend table's rows: the period's calls grouped by key or model, dearest first. Keys are named; a workspace's
    /// reader sees the platform's keys as one row, "Platform keys" (two deleted keys are one "Deleted key" row).
    func spendRows(_ query: UsageQuery, by dimension: UsageQuery.GroupBy, session: WebSession, workspaceID: String) async throws -> [UsagePage.SpendRow] {
        var grouped = query
        grouped.groupBy = dimension
        let report = try await app.usage.report(grouped)
        let labels = dimension == .key
            ? try await app.requestLog.labels(ofKeys: report.groups.map(\.key).filter { !$0.isEmpty }, .workspace(workspaceID), principal: session.principal)
            : [:]
        var totals: [(String, UsageTotals)] = []
        for group in report.groups {
            let name: String
            if group.key.isEmpty { name = dimension == .key ? "No key tried" : "No model named" }
            else if dimension == .key { name = labels[group.key].map { $0.id == nil ? "Platform keys" : $0.name } ?? "Deleted key" }
            else { name = group.key }
            if let index = totals.firstIndex(where: { $0.0 == name }) {
                var merged = totals[index].1
                merged.requests += group.totals.requests
                merged.errors += group.totals.errors
                merged.inputTokens = merged.inputTokens.saturatingAdding(group.totals.inputTokens)
                merged.outputTokens = merged.outputTokens.saturatingAdding(group.totals.outputTokens)
                merged.milliCredits = merged.milliCredits.saturatingAdding(group.totals.milliCredits)
                totals[index].1 = merged
            } else {
                totals.append((name, group.totals))
            }
        }
        return totals.sorted { ($0.1.milliCredits, $0.1.requests) > ($1.1.milliCredits, $1.1.requests) }.map { name, t in
            .init(name: name, calls: t.requests, errors: t.errors, tokens: "\(t.inputTokens) / \(t.outputTokens)", credits: BudgetService.credits(t.milliCredits))
        }
    }
}
