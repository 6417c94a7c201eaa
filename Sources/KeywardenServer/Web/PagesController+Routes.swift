import Foundation
import Hummingbird
import KeywardenApp
import KeywardenCore

/// Chat routes: a workspace's (`/workspaces/{id}/routes`) and the platform's (`/platform/routes`). Listing, saving and
/// removing all go through `app.routes`, which authorizes the signed-in principal itself (a workspace's routes are read
/// with keys.read and changed with keys.update; the platform's are the platform admin's; another workspace is not found).
extension PagesController {
    /// The Chat routes page of a workspace or of the platform.
    struct RoutesPage: Encodable {
        struct RouteRow: Encodable {
            let name: String
            /// `anthropic / claude-opus-4-7 → openai / gpt-5.4-mini`.
            let steps: String
            let editHref: String
            let deleteAction: String
            let deleteWarning: String
        }

        struct ProviderOption: Encodable {
            let value: String
            let label: String
            let selected: Bool
        }

        /// One step row of the form (numbered from 1).
        struct StepRow: Encodable {
            let index: Int
            let providers: [ProviderOption]
            let model: String
            /// The `<datalist>` its model input offers: the chosen provider's curated models, or every chat provider's.
            let modelList: String
        }

        struct ModelChoice: Encodable {
            let value: String
            let label: String
        }

        struct ModelList: Encodable {
            let id: String
            let models: [ModelChoice]
        }

        /// The workspace's name; `nil` on the platform's page.
        let workspaceName: String?
        let scopeNote: String
        /// Where the form posts: `/workspaces/{id}/routes` or `/platform/routes`.
        let base: String
        let canEdit: Bool
        let routes: [RouteRow]
        let formName: String
        /// Whether the form holds an existing route (`?edit=name`).
        let replacing: Bool
        let stepRows: [StepRow]
        let modelLists: [ModelList]
    }

    /// What the route form holds: submitted (shown again with its error), or an existing route being edited.
    struct RouteDraft {
        var name: String
        var steps: [ChatRoute.Step]

        /// The form's name and its filled step rows, in order (`step1_provider`, `step1_model`, …); empty rows are ignored.
        init(_ form: WebForm) {
            name = form.text("name") ?? ""
            steps = (1...ChatRoute.maximumSteps).compactMap { index in
                let provider = form.text("step\(index)_provider")
                let model = form.text("step\(index)_model")
                guard provider != nil || model != nil else { return nil }
                return ChatRoute.Step(provider: provider ?? "", model: model ?? "")
            }
        }

        init(_ route: ChatRoute) {
            name = route.name
            steps = route.steps
        }
    }

    /// How many step rows the form shows when the route has fewer.
    static let routeFormRows = 4

    func addRoutePages(to router: Router<KeywardenRequestContext>) {
        for platform in [false, true] {
            let prefix = platform ? "platform/routes" : "workspaces/:workspace/routes"
            @Sendable func ownerOf(_ context: KeywardenRequestContext) throws -> RouteService.Owner {
                platform ? .platform : .workspace(try context.parameters.require("workspace"))
            }
            router.get(RouterPath(prefix)) { request, context in
                try await page(request) { session in
                    let notice = request.queryText("notice").map { Self.routesNotice($0, route: request.queryText("route")) }
                    return try await routesPage(session, owner: try ownerOf(context), editing: request.queryText("edit"), notice: notice)
                }
            }
            router.post(RouterPath(prefix)) { request, context in
                try await page(request) { session in
                    let owner = try ownerOf(context)
                    let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                    let draft = RouteDraft(form)
                    do {
                        _ = try await app.routes.set(owner, name: draft.name, steps: draft.steps, principal: session.principal)
                    } catch let error as KeywardenError where error.isAboutInput {
                        return try await routesPage(session, owner: owner, draft: draft, error: error.message, status: APIError(error).status)
                    }
                    return WebResponse.redirect("\(Self.routesBase(owner))?notice=saved&route=\(Self.queryEscape(draft.name))")
                }
            }
            router.post(RouterPath(prefix + "/:name/delete")) { request, context in
                try await page(request) { session in
                    let owner = try ownerOf(context)
                    let name = try context.parameters.require("name")
                    _ = try await WebForm.read(request, context: context, csrf: session.csrf)
                    try await app.routes.delete(owner, name: name, principal: session.principal)
                    return WebResponse.redirect("\(Self.routesBase(owner))?notice=deleted&route=\(Self.queryEscape(name))")
                }
            }
        }
    }

    func routesPage(_ session: WebSession, owner: RouteService.Owner, editing: String? = nil, draft: RouteDraft? = nil,
                    notice: String? = nil, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        // The service decides who may read these (a foreign workspace is not found) before anything else is read.
        let routes = try await app.routes.list(owner, principal: session.principal)
        let principal = session.principal
        let base = Self.routesBase(owner)
        let workspaceID: String?
        let workspaceName: String?
        let canEdit: Bool
        switch owner {
        case .platform:
            workspaceID = nil
            workspaceName = nil
            canEdit = principal.decidePlatform(.keysUpdate) == .allowed
        case .workspace(let id):
            workspaceID = id
            workspaceName = try await app.workspaceService.get(id).name
            canEdit = principal.decide(.keysUpdate, inWorkspace: id) == .allowed
        }
        let chatProviders = app.catalog.providers.filter(\.dialect.isChat)
        let form = draft ?? editing.flatMap { name in routes.first { $0.name == name } }.map(RouteDraft.init)
        let steps = form?.steps ?? []
        let stepRows = (0..<max(Self.routeFormRows, min(steps.count, ChatRoute.maximumSteps))).map { index -> RoutesPage.StepRow in
            let step = steps.indices.contains(index) ? steps[index] : nil
            var options = chatProviders.map { RoutesPage.ProviderOption(value: $0.id, label: $0.displayName, selected: $0.id == step?.provider) }
            // A submitted provider the list does not offer is shown as it was, beside the error that names it.
            if let chosen = step?.provider, !chosen.isEmpty, !chatProviders.contains(where: { $0.id == chosen }) {
                options.append(.init(value: chosen, label: "\(chosen) (not a chat provider)", selected: true))
            }
            let known = step.flatMap { step in chatProviders.first { $0.id == step.provider } }
            return .init(index: index + 1, providers: options, model: step?.model ?? "",
                         modelList: known.map { Self.modelListID($0.id) } ?? Self.modelListID(nil))
        }
        let modelLists = [RoutesPage.ModelList(id: Self.modelListID(nil), models: chatProviders.flatMap { provider in
            provider.models.map { RoutesPage.ModelChoice(value: $0.id, label: "\(provider.displayName) · \($0.label)") }
        })] + chatProviders.map { provider in
            RoutesPage.ModelList(id: Self.modelListID(provider.id), models: provider.models.map {
                .init(value: $0.id, label: $0.legacy ? "\($0.label) (legacy)" : $0.label)
            })
        }
        let content = RoutesPage(
            workspaceName: workspaceName,
            scopeNote: workspaceName == nil
                ? "The platform's routes serve every workspace; a workspace's own route of the same name overrides one of these."
                : "This workspace's routes; one of them overrides the platform's route of the same name.",
            base: base, canEdit: canEdit,
            routes: routes.map { route in
                let steps = Self.describeSteps(route.steps)
                return .init(name: route.name, steps: steps, editHref: "\(base)?edit=\(Self.queryEscape(route.name))#route-form",
                             deleteAction: "\(base)/\(route.name)/delete",
                             deleteWarning: "Delete the route “\(route.name)” (\(steps))? Calls naming route:\(route.name) are refused until it is saved again.")
            },
            formName: form?.name ?? "", replacing: draft == nil && form != nil, stepRows: stepRows, modelLists: modelLists)
        let chrome = try await chrome(session, title: workspaceName == nil ? "Platform routes" : "Chat routes",
                                      nav: workspaceName == nil ? "navPlatformRoutes" : "navRoutes", workspaceID: workspaceID, notice: notice, error: error)
        return WebResponse.page("routes", PageView(chrome: chrome, content: content), status: status)
    }

    /// Steps as the page shows them: `anthropic / claude-opus-4-7 → openai / gpt-5.4-mini`.
    static func describeSteps(_ steps: [ChatRoute.Step]) -> String {
        steps.map { "\($0.provider) / \($0.model)" }.joined(separator: " → ")
    }

    static func routesBase(_ owner: RouteService.Owner) -> String {
        switch owner {
        case .platform: return "/platform/routes"
        case .workspace(let id): return "/workspaces/\(id)/routes"
        }
    }

    /// The id of a provider's model `<datalist>`; `nil`: every chat provider's models.
    static func modelListID(_ provider: String?) -> String {
        provider.map { "route-models-\($0)" } ?? "route-models"
    }

    static func routesNotice(_ code: String, route: String?) -> String {
        let name = route.map { "Route “\($0)”" } ?? "Route"
        return ["saved": "\(name) saved.", "deleted": "\(name) deleted."][code] ?? "Done."
    }
}
