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
                // The header's switcher, without JavaScript: a GET with the chosen workspace.
                if let open = request.queryText("open") {
                    _ = try await app.workspaceService.get(open, principal: session.principal)
                    return WebResponse.redirect("/workspaces/\(Self.pathEscape(open))/keys")
                }
                return try await workspacesPage(request, session: session, notice: request.queryText("notice").map(Self.workspaceNotice))
            }
        }
        router.post("workspaces") { request, context in
            try await page(request) { session in
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                let workspace: Workspace
                do {
                    workspace = try await form.decode(WorkspacesController.CreateBody.self).create(in: app.workspaceService, principal: session.principal)
                } catch let error as KeywardenError where error.isAboutInput {
                    return try await workspacesPage(request, session: session, error: error.message, status: APIError(error).status)
                }
                // Next on the journey: its members and the backend's token.
                return WebResponse.redirect("/workspaces/\(workspace.id)/members?notice=created")
            }
        }
        router.post("workspaces/:workspace/rename") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                do {
                    // A blank name is a mistake here, not "keep the name".
                    guard form.text("name") != nil else { throw KeywardenError.missing("name") }
                    try await updateWorkspace(workspaceID, form.only(["name"]), session: session)
                } catch let error as KeywardenError where error.isAboutInput {
                    return try await workspacesPage(request, session: session, error: error.message, status: APIError(error).status)
                }
                return WebResponse.redirect("/workspaces?notice=renamed")
            }
        }
        router.post("workspaces/:workspace/byok") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                let workspace = try await updateWorkspace(workspaceID, form.only(["byok_allowed"]), session: session)
                return WebResponse.redirect("/workspaces?notice=\(workspace.byokAllowed ? "byok_on" : "byok_off")")
            }
        }
        router.post("workspaces/:workspace/plan") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                do {
                    try await updateWorkspace(workspaceID, form.only(["plan"]), session: session, clearing: ["plan"])
                } catch let error as KeywardenError where error.isAboutInput {
                    return try await workspacesPage(request, session: session, error: error.message, status: APIError(error).status)
                }
                return WebResponse.redirect("/workspaces?notice=plan_set")
            }
        }
        router.post("platform/plans") { request, context in
            try await page(request) { session in
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                do {
                    // The form is `PUT /api/v1/platform/plans/{name}` with the name among its fields.
                    try session.principal.authorizePlatform()
                    var plan = try form.decode(PlansController.SaveBody.self).plan(named: form.text("plan_name") ?? "")
                    // A form without the period or the fallback (one older than them) keeps the plan's: one set through
                    // the API is not lost.
                    if form["budget_period"] == nil || form["platform_fallback"] == nil, let existing = try await app.plans.find(plan.name) {
                        if form["budget_period"] == nil { plan.budgetCycle = existing.budgetCycle }
                        if form["platform_fallback"] == nil { plan.platformFallback = existing.platformFallback }
                    }
                    _ = try await app.plans.save(plan, principal: session.principal)
                } catch let error as KeywardenError where error.isAboutInput {
                    return try await workspacesPage(request, session: session, error: error.message, status: APIError(error).status)
                }
                return WebResponse.redirect("/workspaces?notice=plan_saved#plans")
            }
        }
        router.post("platform/plans/:plan/delete") { request, context in
            try await page(request) { session in
                let name = try context.parameters.require("plan")
                _ = try await WebForm.read(request, context: context, csrf: session.csrf)
                do {
                    try await app.plans.delete(name, principal: session.principal)
                } catch let error as KeywardenError where error.isAboutInput {
                    return try await workspacesPage(request, session: session, error: error.message, status: APIError(error).status)
                }
                return WebResponse.redirect("/workspaces?notice=plan_deleted#plans")
            }
        }
        router.post("workspaces/:workspace/delete") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                _ = try await WebForm.read(request, context: context, csrf: session.csrf)
                _ = try await app.workspaceService.delete(workspaceID, principal: session.principal)
                return WebResponse.redirect("/workspaces?notice=deleted")
            }
        }
    }

    func workspacesPage(_ request: Request, session: WebSession, notice: String? = nil, error: String? = nil,
                        status: HTTPResponse.Status = .ok) async throws -> Response {
        let search = request.queryText("search") ?? ""
        let pagination = try Pagination(page: try request.queryInt("page", code: "invalid_pagination"), perPage: 20)
        let (items, total) = try await app.workspaceService.page(search: search.isEmpty ? nil : search, pagination: pagination, principal: session.principal)
        let renaming = request.queryText("rename")
        let plans = try await app.plans.list(principal: session.principal)
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

    /// Applies a workspace form's changes as `PATCH /api/v1/workspaces/{ws}` would (the same request type, the same checks).
    @discardableResult
    func updateWorkspace(_ workspaceID: String, _ form: WebForm, session: WebSession, clearing: Set<String> = []) async throws -> Workspace {
        let changes = try form.decode(WorkspacesController.UpdateBody.self, clearing: clearing).changes()
        return try await app.workspaceService.update(workspaceID, changes, principal: session.principal)
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
