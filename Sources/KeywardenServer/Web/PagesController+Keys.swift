import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenProviders
import KeywardenStore
import KeywardenVault
import NIOCore

/// Workspace → API keys: the keys table and its form.
extension PagesController {
    func addKeyRoutes(to router: Router<KeywardenRequestContext>) {
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
}
