import Foundation
import Hummingbird
import KeywardenApp
import KeywardenCore
import KeywardenStore

/// Platform → Workspaces: list with search and pages, create, rename, the plan's BYOK switch, delete with confirmation.
extension PagesController {
    /// The Workspaces page.
    struct WorkspacesPage: Encodable {
        struct Row: Encodable {
            let id: String
            let name: String
            let byokAllowed: Bool
            let exclusive: Bool
            let keys: Int
            let calls: Int
            /// Whether this row shows its rename form (`?rename=id`).
            let renaming: Bool
            /// What the delete dialog says will happen.
            let deleteWarning: String
            /// The plans to choose from, this workspace's selected.
            let plans: [PlanOption]
            /// Who pays when its own keys cannot, and the choices of the form that sets it.
            var fallback: FallbackLine? = nil
        }

        struct PlanOption: Encodable {
            let value: String
            let label: String
            let selected: Bool
        }

        /// A plan and its default limits, as the plans table shows them.
        struct PlanRow: Encodable {
            let name: String
            let platformBudget: String
            let byokBudget: String
            let requestsPerMinute: String
            let tokensPerMinute: String
            let period: String
            /// When the platform's keys stand in for the own keys of a workspace on the plan.
            var platformFallback: String = ""
        }

        let search: String
        let planRows: [PlanRow]
        /// The plan form's choices for when the platform's keys stand in (blank: the platform's default).
        var planFallbackOptions: [PlanOption] = []
        let rows: [Row]
        let total: Int
        let paging: Paging
    }

    /// A list's place among its pages, with links to its neighbours.
    struct Paging: Encodable {
        let page: Int
        let pages: Int
        let previous: String?
        let next: String?

        init(page: Int, perPage: Int, total: Int, link: (Int) -> String) {
            self.page = page
            pages = max(1, (total + perPage - 1) / perPage)
            previous = page > 1 ? link(page - 1) : nil
            next = page < pages ? link(page + 1) : nil
        }
    }

    func addWorkspaceRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("workspaces") { request, _ in
            try await page(request) { session in
                guard session.principal.isPlatformAdmin else { throw KeywardenError.forbidden }
                // The header's switcher, without JavaScript: a GET with the chosen workspace.
                if let open = request.queryText("open") {
                    _ = try await app.workspaceService.get(open)
                    return WebResponse.redirect("/workspaces/\(Self.pathEscape(open))/keys")
                }
                return try await workspacesPage(request, session: session, notice: request.queryText("notice").map(Self.workspaceNotice))
            }
        }
        router.post("workspaces") { request, context in
            try await page(request) { session in
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                guard session.principal.isPlatformAdmin else { throw KeywardenError.forbidden }
                let workspace: Workspace
                do {
                    workspace = try await app.workspaceService.create(
                        name: form.text("name") ?? "", byokAllowed: form["byok_allowed"] == "on", exclusive: form["exclusive"] == "on",
                        actor: session.principal.actor)
                } catch let error as KeywardenError {
                    return try await workspacesPage(request, session: session, error: error.message, status: .unprocessableContent)
                }
                // Next on the journey: its members and the backend's token.
                return WebResponse.redirect("/workspaces/\(workspace.id)/members?notice=created")
            }
        }
        router.post("workspaces/:workspace/rename") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                guard session.principal.isPlatformAdmin else { throw KeywardenError.forbidden }
                do {
                    _ = try await app.workspaceService.update(workspaceID, WorkspaceChanges(name: form.text("name") ?? ""), actor: session.principal.actor)
                } catch let error as KeywardenError where error.kind != .notFound {
                    return try await workspacesPage(request, session: session, error: error.message, status: .unprocessableContent)
                }
                return WebResponse.redirect("/workspaces?notice=renamed")
            }
        }
        router.post("workspaces/:workspace/byok") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                guard session.principal.isPlatformAdmin else { throw KeywardenError.forbidden }
                let allowed = form["byok_allowed"] == "on"
                _ = try await app.workspaceService.update(workspaceID, WorkspaceChanges(byokAllowed: allowed), actor: session.principal.actor)
                return WebResponse.redirect("/workspaces?notice=\(allowed ? "byok_on" : "byok_off")")
            }
        }
        router.post("workspaces/:workspace/plan") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                guard session.principal.isPlatformAdmin else { throw KeywardenError.forbidden }
                do {
                    _ = try await app.workspaceService.update(workspaceID, WorkspaceChanges(plan: .some(form.text("plan"))), actor: session.principal.actor)
                } catch let error as KeywardenError where error.kind != .notFound {
                    return try await workspacesPage(request, session: session, error: error.message, status: APIError(error).status)
                }
                return WebResponse.redirect("/workspaces?notice=plan_set")
            }
        }
        router.post("platform/plans") { request, context in
            try await page(request) { session in
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                guard session.principal.isPlatformAdmin else { throw KeywardenError.forbidden }
                do {
                    let maximum = RateLimits.maximum
                    let name = try Plan.validName(form.text("plan_name") ?? "")
                    // A form without the period keeps the plan's (one set through the API is not lost).
                    let existing = try await app.plans.find(name)
                    var cycle = existing?.budgetCycle
                    if form["budget_period"] != nil {
                        cycle = try form.text("budget_period").map { try BudgetCycle.parse($0, field: "budget_period") }
                    }
                    // Likewise who pays when a workspace's own keys cannot: blank is the platform's default.
                    var fallback = existing?.platformFallback
                    if form["platform_fallback"] != nil {
                        fallback = try form.text("platform_fallback").map { try PlatformFallback.parse($0) }
                    }
                    _ = try await app.plans.save(Plan(
                        name: name,
                        budget: BudgetLimits(platform: try Self.credits(form.text("platform_limit_credits"), field: "platform_limit_credits"),
                                             byok: try Self.credits(form.text("byok_limit_credits"), field: "byok_limit_credits")),
                        rateLimits: RateLimits(requestsPerMinute: try NumberField.parse(form.text("requests_per_minute"), field: "requests_per_minute", in: 1...maximum),
                                               tokensPerMinute: try NumberField.parse(form.text("tokens_per_minute"), field: "tokens_per_minute", in: 1...maximum)),
                        budgetCycle: cycle,
                        platformFallback: fallback
                    ), actor: session.principal.actor)
                } catch let error as KeywardenError {
                    return try await workspacesPage(request, session: session, error: error.message, status: APIError(error).status)
                }
                return WebResponse.redirect("/workspaces?notice=plan_saved#plans")
            }
        }
        router.post("platform/plans/:plan/delete") { request, context in
            try await page(request) { session in
                let name = try context.parameters.require("plan")
                _ = try await WebForm.read(request, context: context, csrf: session.csrf)
                guard session.principal.isPlatformAdmin else { throw KeywardenError.forbidden }
                do {
                    try await app.plans.delete(name, actor: session.principal.actor)
                } catch let error as KeywardenError where error.kind != .notFound {
                    return try await workspacesPage(request, session: session, error: error.message, status: APIError(error).status)
                }
                return WebResponse.redirect("/workspaces?notice=plan_deleted#plans")
            }
        }
        router.post("workspaces/:workspace/delete") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                _ = try await WebForm.read(request, context: context, csrf: session.csrf)
                guard session.principal.isPlatformAdmin else { throw KeywardenError.forbidden }
                _ = try await app.workspaceService.delete(workspaceID, actor: session.principal.actor)
                return WebResponse.redirect("/workspaces?notice=deleted")
            }
        }
    }

    func workspacesPage(_ request: Request, session: WebSession, notice: String? = nil, error: String? = nil,
                        status: HTTPResponse.Status = .ok) async throws -> Response {
        let search = request.queryText("search") ?? ""
        let pagination = try Pagination(page: try request.queryInt("page", code: "invalid_pagination"), perPage: 20)
        let (items, total) = try await app.workspaceService.page(search: search.isEmpty ? nil : search, pagination: pagination)
        let renaming = request.queryText("rename")
        let plans = try await app.plans.list()
        func credits(_ milli: Int?) -> String { milli.map { BudgetService.credits($0) } ?? "—" }
        let planRows = plans.map { plan in
            WorkspacesPage.PlanRow(name: plan.name, platformBudget: credits(plan.budget.platform), byokBudget: credits(plan.budget.byok),
                                   requestsPerMinute: plan.rateLimits.requestsPerMinute.map(String.init) ?? "—",
                                   tokensPerMinute: plan.rateLimits.tokensPerMinute.map(String.init) ?? "—",
                                   period: (plan.budgetCycle ?? .calendarMonth).text,
                                   platformFallback: plan.platformFallback.map(Self.fallbackLabel) ?? "The platform's default")
        }
        let platformDefault = app.store.configuration.platformFallback
        let plansByName = Dictionary(plans.map { ($0.name, $0) }) { $1 }
        let rows = items.map { summary in
            let workspace = summary.workspace
            return WorkspacesPage.Row(
                id: workspace.id, name: workspace.name, byokAllowed: workspace.byokAllowed, exclusive: workspace.exclusive,
                keys: summary.keys, calls: summary.callsThisMonth, renaming: renaming == workspace.id,
                deleteWarning: "Delete the workspace “\(workspace.name)”? Its keys (\(Plural.count(summary.keys, "key"))) are deleted with their secrets, "
                    + "its members’ and service tokens stop working at once, and its calls through Keywarden are refused. "
                    + "Its usage history is kept for billing.",
                plans: [.init(value: "", label: "No plan", selected: workspace.plan == nil)]
                    + plans.map { .init(value: $0.name, label: $0.name, selected: $0.name == workspace.plan) },
                fallback: Self.fallbackLine(workspace, plan: workspace.plan.flatMap { plansByName[$0] }, platformDefault: platformDefault)
            )
        }
        let planFallbackOptions = [WorkspacesPage.PlanOption(value: "", label: "The platform's default (\(Self.fallbackLabel(platformDefault)))", selected: true)]
            + PlatformFallback.allCases.map { .init(value: $0.rawValue, label: Self.fallbackLabel($0), selected: false) }
        let content = WorkspacesPage(search: search, planRows: planRows, planFallbackOptions: planFallbackOptions, rows: rows, total: total, paging: Paging(page: pagination.page, perPage: pagination.perPage, total: total) { page in
            "/workspaces?page=\(page)" + (search.isEmpty ? "" : "&search=\(Self.queryEscape(search))")
        })
        let chrome = try await chrome(session, title: "Workspaces", nav: "navWorkspaces", workspaceID: nil, notice: notice, error: error)
        return WebResponse.page("workspaces", PageView(chrome: chrome, content: content), status: status)
    }

    static func workspaceNotice(_ code: String) -> String {
        ["renamed": "Workspace renamed.", "byok_on": "The workspace may now bring its own keys.",
         "byok_off": "The workspace's own keys are no longer used; the platform's keys serve it.", "deleted": "Workspace deleted.",
         "plan_set": "Plan set.", "plan_saved": "Plan saved.", "plan_deleted": "Plan deleted.",
         "fallback_set": "Saved: when the platform's keys stand in for the workspace's own."][code] ?? "Done."
    }

    /// A path segment as it may appear in a link (ids are plain; this keeps any other value inside its segment).
    static func pathEscape(_ text: String) -> String { queryEscape(text) }
}
