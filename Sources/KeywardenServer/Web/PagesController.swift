import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenProviders
import KeywardenStore
import KeywardenVault
import NIOCore

/// The admin UI: server-rendered pages over the same services as the API.
///
/// Sessions come from signing in with a token (cookie `kw_session`: HttpOnly, SameSite=Strict, Secure
/// over TLS, eight hours); every form carries the session's `csrf_token`, and a POST without the right
/// one is refused. Pages never contain a secret: keys are shown as their masked hint.
struct PagesController {
    let app: AppServices
    let verification: KeyVerificationService
    let keys: KeysController
    /// Sign-in attempts per client address.
    let signInLimiter: RateLimiter

    static let sessionCookie = "kw_session"
    static let loginCookie = "kw_login_csrf"
    static let savedPlaceholder = "•••••••••• (saved — leave blank to keep)"

    /// Paths the pages own (kept apart from the API's in the OpenAPI check).
    static func isPage(_ path: String) -> Bool {
        path == "/" || ["/login", "/logout", "/platform/providers", "/platform/notifications", "/workspaces/", "/audit", "/assets/"].contains { path.hasPrefix($0) }
    }

    func addRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("/") { request, _ in
            guard let session = try await session(request) else { return WebResponse.redirect("/login") }
            return WebResponse.redirect(home(session.principal))
        }
        router.get("assets/:file") { _, context -> Response in
            let file = try context.parameters.require("file")
            let types = ["app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"]
            guard let type = types[file], let data = ServerResources.data("web/assets/\(file)") else { throw KeywardenError.notFound("asset") }
            return Response(status: .ok, headers: [.contentType: type, .cacheControl: "public, max-age=300", .init("X-Content-Type-Options")!: "nosniff"],
                            body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.get("login") { request, _ in
            if let session = try await session(request) { return WebResponse.redirect(home(session.principal)) }
            let csrf = AccessToken.generate().value
            return WebResponse.page("login", ["title": "Sign in", "csrf": csrf],
                                    cookies: [WebResponse.cookie(Self.loginCookie, csrf, maxAge: 1800, secure: WebResponse.isSecure(request))])
        }
        router.post("login") { request, context in
            // Before a session exists the form is checked against a cookie set with it (double submit).
            let expected = WebResponse.cookieValue(Self.loginCookie, in: request) ?? ""
            let form = try await WebForm.read(request, context: context, csrf: expected.isEmpty ? UUID().uuidString : expected)
            guard let token = form.text("token"), let (cookie, session) = try await app.sessions.signIn(presented: token) else {
                let csrf = AccessToken.generate().value
                let cookies = [WebResponse.cookie(Self.loginCookie, csrf, maxAge: 1800, secure: WebResponse.isSecure(request))]
                // Failed attempts are counted per client: a valid token always signs in (a neighbour behind the same
                // proxy cannot lock anyone out), and guessing is answered 429 past the limit.
                if let wait = signInLimiter.acquire(context.clientAddress ?? "unknown") {
                    var response = WebResponse.page("login", ["title": "Sign in", "csrf": csrf, "error": "Too many failed sign-in attempts; try again in \(wait) s."],
                                                    status: .tooManyRequests, cookies: cookies)
                    response.headers[.retryAfter] = "\(wait)"
                    return response
                }
                return WebResponse.page("login", ["title": "Sign in", "csrf": csrf, "error": "That token is not valid or was revoked."], status: .unauthorized,
                                        cookies: cookies)
            }
            return WebResponse.redirect(home(session.principal), cookies: [
                WebResponse.cookie(Self.sessionCookie, cookie, maxAge: Int(SessionService.lifetime), secure: WebResponse.isSecure(request)),
                WebResponse.cookie(Self.loginCookie, "", maxAge: 0, secure: WebResponse.isSecure(request)),
            ])
        }
        router.post("logout") { request, context in
            if let cookie = WebResponse.cookieValue(Self.sessionCookie, in: request), let session = try await app.sessions.session(cookie: cookie) {
                _ = try await WebForm.read(request, context: context, csrf: session.csrf)
                try await app.sessions.signOut(cookie: cookie)
            }
            return WebResponse.redirect("/login", cookies: [WebResponse.cookie(Self.sessionCookie, "", maxAge: 0, secure: WebResponse.isSecure(request))])
        }

        // Platform → AI / API keys.
        router.get("platform/providers") { request, _ in
            try await page(request) { session in
                guard session.principal.isPlatformAdmin else { throw KeywardenError.forbidden }
                var flash: [String: String] = [:]
                if let provider = request.queryText("provider"), let notice = request.queryText("notice") {
                    flash[provider] = Self.noticeText(notice, provider: app.catalog.provider(provider)?.displayName ?? provider)
                }
                return try await providersPage(session, messages: flash.mapValues { ($0, "ok") })
            }
        }
        router.post("platform/providers/:provider") { request, context in
            try await page(request) { session in
                let provider = try context.parameters.require("provider")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                guard session.principal.isPlatformAdmin else { throw KeywardenError.forbidden }
                guard let definition = app.catalog.provider(provider) else { throw KeywardenError.unknownProvider(provider) }
                var extras: [String: Secret] = [:]
                for field in definition.extraFields { if let value = form.text("extra_\(field.id)") { extras[field.id] = Secret(value) } }
                let order = try form.text("display_order").map { text in
                    guard let value = try NumberField.parse(text, field: "display_order", in: PlatformCardService.displayOrderRange) else {
                        throw KeywardenError.missing("display_order")
                    }
                    return value
                }
                do {
                    _ = try await app.platformCards.save(provider, PlatformCardUpdate(
                        apiKey: form.text("api_key").map { Secret($0) }, extras: extras, defaultModel: form.text("default_model"), displayOrder: order
                    ), actor: session.principal.actor)
                } catch let error as KeywardenError {
                    return try await providersPage(session, messages: [provider: (error.message, "bad")], status: .unprocessableContent)
                }
                return WebResponse.redirect("/platform/providers?notice=saved&provider=\(provider)#\(provider)")
            }
        }
        for action in ["activate", "deactivate", "test"] {
            router.post("platform/providers/:provider/\(action)") { request, context in
                try await page(request) { session in
                    let provider = try context.parameters.require("provider")
                    _ = try await WebForm.read(request, context: context, csrf: session.csrf)
                    guard session.principal.isPlatformAdmin else { throw KeywardenError.forbidden }
                    do {
                        switch action {
                        case "activate": _ = try await app.platformCards.activate(provider, actor: session.principal.actor)
                        case "deactivate": _ = try await app.platformCards.deactivate(provider, actor: session.principal.actor)
                        default:
                            let result = try await verification.testPlatformCard(provider, actor: session.principal.actor)
                            return try await providersPage(session, messages: [provider: (result.message, result.status == .valid ? "ok" : "bad")],
                                                           hints: [provider: result.hint])
                        }
                    } catch let error as KeywardenError {
                        return try await providersPage(session, messages: [provider: (error.message, "bad")], status: .conflict)
                    }
                    return WebResponse.redirect("/platform/providers?notice=\(action)d&provider=\(provider)#\(provider)")
                }
            }
        }

        // Workspace → API keys.
        router.get("workspaces/:workspace/keys") { request, context in
            try await page(request) { session in
                try await keysPage(request, session: session, workspaceID: try context.parameters.require("workspace"), editing: nil)
            }
        }
        router.get("workspaces/:workspace/keys/:key") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                try require(.keysUpdate, session, workspaceID)
                let details = try await app.keys.get(workspaceID: workspaceID, keyID: try context.parameters.require("key"))
                return try await keysPage(request, session: session, workspaceID: workspaceID, editing: details)
            }
        }
        router.post("workspaces/:workspace/keys") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                try require(.keysCreate, session, workspaceID)
                do {
                    _ = try await app.keys.create(workspaceID: workspaceID, NewKeyRequest(
                        providerID: form.text("provider") ?? "", description: form.text("description") ?? "", apiKey: form.text("api_key").map { Secret($0) },
                        role: try form.text("role").map(KeysController.role), weight: form.text("weight").flatMap(Int.init), active: true
                    ), actor: session.principal.actor)
                } catch let error as KeywardenError {
                    return try await keysPage(request, session: session, workspaceID: workspaceID, editing: nil, error: error.message, status: .unprocessableContent)
                }
                return WebResponse.redirect("/workspaces/\(workspaceID)/keys?notice=created")
            }
        }
        router.post("workspaces/:workspace/keys/:key") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let keyID = try context.parameters.require("key")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                try require(.keysUpdate, session, workspaceID)
                do {
                    let current = try await app.keys.get(workspaceID: workspaceID, keyID: keyID)
                    var extras: [String: Secret] = [:]
                    for field in current.provider?.extraFields ?? [] { if let value = form.text("extra_\(field.id)") { extras[field.id] = Secret(value) } }
                    _ = try await app.keys.update(workspaceID: workspaceID, keyID: keyID, CredentialChanges(
                        description: form.text("description"), apiKey: form.text("api_key").map { Secret($0) }, extras: extras,
                        defaultModel: form.text("default_model").map { .some($0) },
                        role: try form.text("role").map(KeysController.role), weight: form.text("weight").flatMap(Int.init)
                    ), actor: session.principal.actor)
                } catch let error as KeywardenError {
                    return try await keysPage(request, session: session, workspaceID: workspaceID, editing: nil, error: error.message, status: .unprocessableContent)
                }
                return WebResponse.redirect("/workspaces/\(workspaceID)/keys?notice=updated")
            }
        }
        for action in ["delete", "test", "activate", "deactivate"] {
            router.post("workspaces/:workspace/keys/:key/\(action)") { request, context in
                try await page(request) { session in
                    let workspaceID = try context.parameters.require("workspace")
                    let keyID = try context.parameters.require("key")
                    _ = try await WebForm.read(request, context: context, csrf: session.csrf)
                    let actor = session.principal.actor
                    do {
                        switch action {
                        case "delete":
                            try require(.keysDelete, session, workspaceID)
                            try await app.keys.delete(workspaceID: workspaceID, keyID: keyID, actor: actor)
                        case "test":
                            try require(.keysTest, session, workspaceID)
                            let result = try await verification.testWorkspaceKey(workspaceID: workspaceID, keyID: keyID, actor: actor)
                            return try await keysPage(request, session: session, workspaceID: workspaceID, editing: nil,
                                                      notice: "\(result.status.rawValue): \(result.message) \(result.hint)")
                        case "activate":
                            try require(.keysUpdate, session, workspaceID)
                            _ = try await app.keys.activate(workspaceID: workspaceID, keyID: keyID, actor: actor)
                        default:
                            try require(.keysUpdate, session, workspaceID)
                            _ = try await app.keys.deactivate(workspaceID: workspaceID, keyID: keyID, actor: actor)
                        }
                    } catch let error as KeywardenError where error.kind != .notFound {
                        return try await keysPage(request, session: session, workspaceID: workspaceID, editing: nil, error: error.message, status: .conflict)
                    }
                    return WebResponse.redirect("/workspaces/\(workspaceID)/keys?notice=\(action == "delete" ? "deleted" : "\(action)d")")
                }
            }
        }

        addSettingsRoutes(to: router)

        // Usage and audit.
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
                var values = base(session, title: "Usage", nav: "navUsage", workspaceID: workspaceID)
                values["workspaceName"] = workspace.name
                values["from"] = String(Timestamp.string(from).prefix(10))
                values["to"] = request.queryText("to") ?? ""
                values["totals"] = ["requests": report.totals.requests, "tokensIn": report.totals.inputTokens, "tokensOut": report.totals.outputTokens,
                                    "credits": String(format: "%.1f", report.totals.credits)]
                values["charts"] = [bySource, byProvider].map { ["title": $0.title, "svg": $0.svg, "legend": $0.legend] as [String: Any] }
                return WebResponse.page("usage", values)
            }
        }
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

    // MARK: Pages

    func providersPage(_ session: WebSession, messages: [String: (String, String)] = [:], hints: [String: String] = [:],
                       status: HTTPResponse.Status = .ok) async throws -> Response {
        let (cards, stats) = try await app.platformCards.cards()
        var values = base(session, title: "AI & API keys", nav: "navProviders", workspaceID: nil)
        values["stats"] = ["providers": stats.providers, "active": stats.active, "ready": stats.ready, "noKey": stats.noKey]
        values["cards"] = cards.map { card -> [String: Any] in
            let provider = card.provider
            var item: [String: Any] = [
                "id": provider.id, "name": provider.displayName, "summary": provider.summary ?? "", "csrf": session.csrf,
                "active": card.state.active, "displayOrder": card.state.displayOrder,
                "canTest": provider.verification.available, "badge": Self.badge(card), "badgeClass": Self.badgeClass(card.hasKey ? card.status : nil),
            ]
            if let field = provider.keyField {
                item["keyField"] = ["label": field.label, "placeholder": card.hasKey ? Self.savedPlaceholder : (field.placeholder ?? "")]
            }
            let filled = Set(card.credential?.extrasSet ?? [])
            item["extras"] = provider.extraFields.map { field in
                ["cardID": provider.id, "fieldID": field.id, "label": field.label, "required": field.required,
                 "placeholder": filled.contains(field.id) ? Self.savedPlaceholder : (field.placeholder ?? ""), "isSet": filled.contains(field.id)] as [String: Any]
            }
            item["hasModels"] = !provider.models.isEmpty
            item["models"] = Self.modelOptions(provider, selected: card.state.defaultModel)
            if let (text, kind) = messages[provider.id] {
                item["message"] = text
                item["messageClass"] = kind
            }
            if let hint = hints[provider.id] { item["hint"] = hint }
            return item
        }
        return WebResponse.page("providers", values, status: status)
    }

    func keysPage(_ request: Request, session: WebSession, workspaceID: String, editing: KeyDetails?, notice: String? = nil, error: String? = nil,
                  status: HTTPResponse.Status = .ok) async throws -> Response {
        try require(.keysRead, session, workspaceID)
        let workspace = try await app.workspaceService.get(workspaceID)
        let pagination = try Pagination(page: try request.queryInt("page", code: "invalid_pagination"), perPage: try request.queryInt("per_page", code: "invalid_pagination") ?? 10)
        let query = try keys.listQuery(request, pagination: pagination)
        let (items, total) = try await app.keys.list(workspaceID: workspaceID, query: query)
        let canEdit = session.principal.decide(.keysUpdate, inWorkspace: workspaceID) == .allowed
        var values = base(session, title: "API keys", nav: "navKeys", workspaceID: workspaceID)
        values["workspaceName"] = workspace.name
        values["canEdit"] = canEdit
        values["total"] = total
        if let notice = notice ?? request.queryText("notice").map({ Self.noticeText($0, provider: "API key") }) { values["notice"] = notice }
        if let error { values["error"] = error }
        let search = request.queryText("search") ?? ""
        let category = request.queryText("category") ?? "all"
        values["search"] = search
        values["categories"] = (["all"] + ProviderCategory.allCases.map(\.rawValue)).map { value in
            ["value": value, "label": value == "all" ? "All" : Self.categoryLabel(value), "selected": value == category] as [String: Any]
        }
        func link(sort: String? = nil, order: String? = nil, page: Int? = nil) -> String {
            var parts: [String] = []
            if !search.isEmpty { parts.append("search=\(Self.queryEscape(search))") }
            if category != "all" { parts.append("category=\(category)") }
            if let sort = sort ?? request.queryText("sort") { parts.append("sort=\(sort)") }
            if let order = order ?? request.queryText("order") { parts.append("order=\(order)") }
            if let page { parts.append("page=\(page)") }
            return "/workspaces/\(workspaceID)/keys" + (parts.isEmpty ? "" : "?" + parts.joined(separator: "&"))
        }
        let currentSort = request.queryText("sort") ?? "created_at"
        let descending = request.queryText("order") == "desc"
        values["columns"] = [("description", "Description"), ("provider", "Provider"), (nil, "Key"), ("status", "Status"), (nil, "Role"), ("created_at", "Created")]
            .map { (sort: String?, label: String) -> [String: Any] in
                guard let sort else { return ["label": label, "sortable": false] }
                let isCurrent = sort == currentSort
                return ["label": label, "sortable": true, "href": link(sort: sort, order: isCurrent && !descending ? "desc" : "asc"),
                        "ariaSort": isCurrent ? (descending ? "descending" : "ascending") : "none", "arrow": isCurrent ? (descending ? " ▼" : " ▲") : ""]
            }
        values["rows"] = items.map { details -> [String: Any] in
            let key = details.credential
            return ["id": key.id, "workspaceID": workspaceID, "csrf": session.csrf, "canEdit": canEdit, "description": key.description,
                    "provider": details.provider?.displayName ?? key.providerID, "hint": details.hasKey ? key.hint : "No key",
                    "status": details.status.rawValue.replacingOccurrences(of: "_", with: " "), "badgeClass": Self.badgeClass(details.hasKey ? details.status : nil),
                    "role": key.role.rawValue, "active": key.active, "created": String(Timestamp.string(key.createdAt).prefix(10)),
                    "toggleAction": key.active ? "deactivate" : "activate", "toggleLabel": key.active ? "Deactivate" : "Activate"]
        }
        values.merge(Self.paging(page: pagination.page, perPage: pagination.perPage, total: total) { link(page: $0) }) { $1 }
        values["providers"] = app.catalog.providers.filter { $0.keyField != nil }.map { ["id": $0.id, "name": $0.displayName] }
        values["editing"] = editing != nil
        values["formTitle"] = editing.map { "Edit “\($0.credential.description)”" } ?? "Add a key"
        values["formAction"] = editing.map { "/workspaces/\(workspaceID)/keys/\($0.credential.id)" } ?? "/workspaces/\(workspaceID)/keys"
        values["formButton"] = editing == nil ? "Add key" : "Save changes"
        values["formDescription"] = editing?.credential.description ?? ""
        values["formWeight"] = editing?.credential.weight ?? 1
        values["keyPlaceholder"] = editing?.hasKey == true ? Self.savedPlaceholder : "sk-…"
        if let editing, let provider = editing.provider {
            // The key's own extras and default model, as on the platform's card (leave blank to keep).
            let filled = Set(editing.credential.extrasSet)
            values["editExtras"] = provider.extraFields.map { field in
                ["fieldID": field.id, "label": field.label, "required": field.required,
                 "placeholder": filled.contains(field.id) ? Self.savedPlaceholder : (field.placeholder ?? "")] as [String: Any]
            }
            values["hasModels"] = !provider.models.isEmpty
            values["models"] = Self.modelOptions(provider, selected: editing.credential.defaultModel)
        }
        let role = editing?.credential.role ?? .primary
        values["roles"] = [CredentialRole.primary, .fallback, .pool].map { ["value": $0.rawValue, "selected": $0 == role] as [String: Any] }
        return WebResponse.page("keys", values, status: status)
    }

    // MARK: Helpers

    /// Runs a page for a signed-in session; no session → the sign-in page; an error → a page that says it.
    func page(_ request: Request, _ body: (WebSession) async throws -> Response) async throws -> Response {
        guard let session = try await session(request) else { return WebResponse.redirect("/login") }
        do {
            return try await body(session)
        } catch let error as KeywardenError {
            let status = APIError(error).status
            var values = base(session, title: "Error", nav: "", workspaceID: session.principal.workspaceID)
            values["error"] = error.message
            return WebResponse.page("error", values, status: status)
        }
    }

    func session(_ request: Request) async throws -> WebSession? {
        guard let cookie = WebResponse.cookieValue(Self.sessionCookie, in: request) else { return nil }
        return try await app.sessions.session(cookie: cookie)
    }

    func require(_ permission: Permission, _ session: WebSession, _ workspaceID: String) throws {
        try Access.require(permission, in: workspaceID, principal: session.principal)
    }

    func home(_ principal: Principal) -> String {
        if principal.isPlatformAdmin { return "/platform/providers" }
        if let workspace = principal.workspaceID { return "/workspaces/\(workspace)/keys" }
        return "/audit"
    }

    func base(_ session: WebSession, title: String, nav: String, workspaceID: String?) -> [String: Any] {
        var values: [String: Any] = ["title": title, "signedIn": true, "csrf": session.csrf, "who": session.principal.name,
                                     "isPlatformAdmin": session.principal.isPlatformAdmin, nav: true,
                                     "canAudit": session.principal.isPlatformAdmin || session.principal.permissions.contains(.auditRead)]
        if let workspaceID = workspaceID ?? session.principal.workspaceID { values["workspaceID"] = workspaceID }
        return values
    }

    static func paging(page: Int, perPage: Int, total: Int, link: (Int) -> String) -> [String: Any] {
        let pages = max(1, (total + perPage - 1) / perPage)
        var values: [String: Any] = ["page": page, "pages": pages]
        if page > 1 { values["previous"] = link(page - 1) }
        if page < pages { values["next"] = link(page + 1) }
        return values
    }

    static func modelOptions(_ provider: ProviderDefinition, selected: String?) -> [[String: Any]] {
        var options: [[String: Any]] = provider.models.filter { !$0.legacy }.map { ["value": $0.id, "label": $0.label, "selected": $0.id == selected] }
        let legacy = provider.models.filter(\.legacy)
        if !legacy.isEmpty {
            options.append(["value": "", "label": "── Legacy ──", "separator": true])
            options += legacy.map { ["value": $0.id, "label": $0.label + " (legacy)", "selected": $0.id == selected] }
        }
        if let selected, provider.isCustomModel(selected) {
            options.append(["value": selected, "label": "\(selected) (custom)", "selected": true])
        }
        return options
    }

    static func noticeText(_ code: String, provider: String) -> String {
        switch code {
        case "saved": return "\(provider) settings saved."
        case "activated": return "\(provider) activated."
        case "deactivated": return "\(provider) deactivated."
        case "created": return "API key created."
        case "updated": return "API key updated."
        case "deleted": return "API key deleted."
        default: return "Done."
        }
    }

    static func badge(_ card: PlatformCard) -> String {
        guard card.hasKey else { return card.state.active ? "Active · no key" : "No key" }
        let status = card.status.rawValue.replacingOccurrences(of: "_", with: " ")
        return (card.state.active ? "Active" : "Inactive") + " · " + status
    }

    static func badgeClass(_ status: VerificationStatus?) -> String {
        switch status {
        case .valid?: return "ok"
        case .invalid?, .quotaExceeded?, .unreadable?, .noPermission?: return "bad"
        case .rateLimited?, .unreachable?, .modelNotFound?: return "warn"
        default: return ""
        }
    }

    static func categoryLabel(_ value: String) -> String {
        ["llm": "LLM", "voice": "Voice", "image": "Image", "search": "Search", "translate": "Translate", "other": "Other"][value] ?? value
    }

    static func queryEscape(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }
}

/// Whether a route path belongs to the admin pages rather than the API (the OpenAPI document covers the API only).
public func isAdminPagePath(_ path: String) -> Bool { PagesController.isPage(path) }
