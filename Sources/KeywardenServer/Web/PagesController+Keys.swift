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
                let flash = await flash(request, session: session)
                return try await keysPage(request, session: session, workspaceID: try context.parameters.require("workspace"), editing: nil,
                                          notice: flash?.notice, rowNote: flash?.note)
            }
        }
        router.get("workspaces/:workspace/keys/:key") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                // The edit form, to those who may save it.
                try session.principal.authorize(.keysUpdate, inWorkspace: workspaceID)
                let details = try await app.keys.get(workspaceID: workspaceID, keyID: try context.parameters.require("key"), principal: session.principal)
                return try await keysPage(request, session: session, workspaceID: workspaceID, editing: details)
            }
        }
        router.post("workspaces/:workspace/keys") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                let details: KeyDetails
                do {
                    // The form is `POST …/keys` (the exclusive-mode choice is its `active` and `?switch`).
                    var key = try form.decode(KeysController.CreateBody.self).request()
                    if form["exclusive"] == "inactive" { key.active = false }
                    details = try await app.keys.create(workspaceID: workspaceID, key, switchExclusive: form["exclusive"] == "switch", principal: session.principal)
                } catch let error as KeywardenError where error.isAboutInput {
                    return try await keysPage(request, session: session, workspaceID: workspaceID, editing: nil, error: error.message, typed: form,
                                              status: APIError(error).status)
                }
                // Save & Verify: the key is saved whatever the vendor says; the result goes on its row.
                if form["verify"] == "1", session.principal.decide(.keysTest, inWorkspace: workspaceID) == .allowed {
                    let note = try await verificationNote(workspaceID: workspaceID, keyID: details.credential.id, principal: session.principal)
                    return try await redirect("/workspaces/\(workspaceID)/keys#row-\(details.credential.id)",
                                        flash: WebFlash(notice: "API key created.", note: note), session: session, request: request)
                }
                return WebResponse.redirect("/workspaces/\(workspaceID)/keys?notice=created")
            }
        }
        router.post("workspaces/:workspace/keys/:key") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let keyID = try context.parameters.require("key")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                do {
                    let current = try await app.keys.get(workspaceID: workspaceID, keyID: keyID, principal: session.principal)
                    // The form is `PATCH …/keys/{key}`: blank keeps, except the expiry and the rotation age, which it clears.
                    var changes = try form.decode(KeysController.UpdateBody.self, clearing: ["expires_at", "rotate_by_days"]).changes()
                    changes.extras = Self.changedExtras(changes.extras, shown: try await app.visibleExtras(of: current.credential))
                    // The form shows the expiry's day only: the same day keeps a time set through the API.
                    if case .some(.some(let day)) = changes.expiresAt, let kept = current.credential.lifecycle.expiresAt,
                       Timestamp.string(kept).prefix(10) == Timestamp.string(day).prefix(10) { changes.expiresAt = nil }
                    _ = try await app.keys.update(workspaceID: workspaceID, keyID: keyID, changes, principal: session.principal)
                } catch let error as KeywardenError where error.isAboutInput {
                    return try await keysPage(request, session: session, workspaceID: workspaceID, editing: nil, error: error.message, status: APIError(error).status)
                }
                if form["verify"] == "1", session.principal.decide(.keysTest, inWorkspace: workspaceID) == .allowed {
                    let note = try await verificationNote(workspaceID: workspaceID, keyID: keyID, principal: session.principal)
                    return try await redirect("/workspaces/\(workspaceID)/keys#row-\(keyID)",
                                        flash: WebFlash(notice: "API key updated.", note: note), session: session, request: request)
                }
                return WebResponse.redirect("/workspaces/\(workspaceID)/keys?notice=updated")
            }
        }
        for action in ["delete", "test", "activate", "deactivate"] {
            router.post("workspaces/:workspace/keys/:key/\(action)") { request, context in
                try await page(request) { session in
                    let workspaceID = try context.parameters.require("workspace")
                    let keyID = try context.parameters.require("key")
                    let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                    // The provider cards post here too, and are answered there.
                    let fromCards = form["back"] == "byok"
                    do {
                        switch action {
                        case "delete":
                            try await app.keys.delete(workspaceID: workspaceID, keyID: keyID, principal: session.principal)
                        case "test":
                            let note = try await verificationNote(workspaceID: workspaceID, keyID: keyID, principal: session.principal)
                            return try await redirect("/workspaces/\(workspaceID)/keys#row-\(keyID)", flash: WebFlash(note: note),
                                                session: session, request: request)
                        case "activate":
                            _ = try await app.keys.activate(workspaceID: workspaceID, keyID: keyID, switchExclusive: form["switch"] == "1", principal: session.principal)
                        default:
                            _ = try await app.keys.deactivate(workspaceID: workspaceID, keyID: keyID, principal: session.principal)
                        }
                    } catch let error as KeywardenError where error.isAboutInput {
                        if fromCards { return try await byokPage(session, workspaceID: workspaceID, error: error.message, status: APIError(error).status) }
                        return try await keysPage(request, session: session, workspaceID: workspaceID, editing: nil, error: error.message, status: APIError(error).status)
                    }
                    let notice = action == "delete" ? "deleted" : "\(action)d"
                    return WebResponse.redirect("/workspaces/\(workspaceID)/\(fromCards ? "byok" : "keys")?notice=\(notice)")
                }
            }
        }
        // The guided rotation, step by step, answered on the key's own page.
        for step in ["stage", "test", "promote", "finish", "cancel"] {
            router.post("workspaces/:workspace/keys/:key/rotation/\(step)") { request, context in
                try await page(request) { session in
                    let workspaceID = try context.parameters.require("workspace")
                    let keyID = try context.parameters.require("key")
                    let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                    let reference = KeyRotationService.Reference.workspace(workspaceID: workspaceID, keyID: keyID)
                    let outcome: (notice: String?, note: RowNote?)
                    do {
                        outcome = try await rotationStep(step, reference, form: form, principal: session.principal)
                    } catch let error as KeywardenError where error.isAboutInput {
                        let details = try await app.keys.get(workspaceID: workspaceID, keyID: keyID, principal: session.principal)
                        return try await keysPage(request, session: session, workspaceID: workspaceID, editing: details, error: error.message,
                                                  status: APIError(error).status)
                    }
                    let details = try await app.keys.get(workspaceID: workspaceID, keyID: keyID, principal: session.principal)
                    return try await keysPage(request, session: session, workspaceID: workspaceID, editing: details, notice: outcome.notice,
                                              rotationNote: outcome.note)
                }
            }
        }
    }

    /// A verdict in one line: the status, the vendor's message and the hint.
    static func describe(_ result: VerificationResult) -> String {
        let status = result.status.rawValue.replacingOccurrences(of: "_", with: " ")
        let hint = result.hint == result.message ? "" : result.hint
        return [status.prefix(1).uppercased() + status.dropFirst() + ":", result.message, hint].filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// A time as the pages show it: `2027-01-15 14:05 UTC`.
    static func shortTime(_ date: Date) -> String {
        let text = Timestamp.string(date)
        return text.prefix(10) + " " + text.dropFirst(11).prefix(5) + " UTC"
    }

    /// A time to the second, as the logs show it: `2027-01-15 14:05:09` (UTC).
    static func preciseTime(_ date: Date) -> String {
        String(Timestamp.string(date).prefix(19)).replacingOccurrences(of: "T", with: " ")
    }

    /// What a key's row says of its life: expiry near or past, rotation due, a rotation under way.
    static func lifecycleNote(_ l: KeyLifecycle, now: Date = Date()) -> (text: String, warn: Bool)? {
        if let staged = l.staged { return ("Rotating: new key \(staged.hint) staged (\(staged.status.rawValue.replacingOccurrences(of: "_", with: " "))).", false) }
        if let previous = l.previous, previous.until > now { return ("Rotated: the old key \(previous.hint) is its fallback until \(shortTime(previous.until)).", false) }
        if let expiresAt = l.expiresAt {
            let days = KeyLifecycle.days(from: now, to: expiresAt)
            if expiresAt <= now { return ("Expired on \(shortTime(expiresAt)).", true) }
            if days < 30 { return ("Expires in \(days) day\(days == 1 ? "" : "s").", true) }
        }
        if let due = l.rotationDueAt, due <= now { return ("Rotation due since \(String(Timestamp.string(due).prefix(10))).", true) }
        return nil
    }

    /// The API keys page: the table, and the form that adds or edits a key.
    struct KeysPage: Encodable {
        struct Option: Encodable {
            let value: String
            let label: String
            let selected: Bool
        }

        struct Column: Encodable {
            let label: String
            let sortable: Bool
            let href: String?
            let ariaSort: String?
            let arrow: String?
        }

        struct Row: Encodable {
            let id: String
            let description: String
            let provider: String
            let hint: String
            let status: String
            let badgeClass: String
            let role: String
            let active: Bool
            let created: String
            /// "2026-12-07 14:05 UTC · 12 calls this month", or "Never".
            let lastUsed: String
            let toggleAction: String
            let toggleLabel: String
            /// A Test's (or Save & Verify's) result and hint, on the row it is about.
            let note: String?
            let noteClass: String
            /// Expiry near, rotation due, or a rotation under way.
            let lifecycle: String?
            let lifecycleClass: String
        }

        /// One of the provider's fields other than the key.
        struct Field: Encodable {
            let fieldID: String
            let label: String
            let required: Bool
            let placeholder: String
            let help: String?
            /// The input's type: `text`, `url` or `number`.
            let inputType: String
            /// A setting that is not secret, shown as saved (the secret ones stay masked).
            let value: String?
            /// Whether a saved value may be cleared here (a checkbox beside it).
            let canClear: Bool
        }

        /// The form: a new key of the chosen provider (step 2), or an existing key.
        struct Form: Encodable {
            let title: String
            let action: String
            let editing: Bool
            let providerID: String
            let providerName: String
            let description: String
            let weight: Int
            let keyLabel: String
            let keyPlaceholder: String
            let keyHelp: String?
            let requiresKey: Bool
            let extras: [Field]
            let hasModels: Bool
            let models: [ModelOption]
            let roles: [Option]
            let canVerify: Bool
            /// The expiry date (`yyyy-mm-dd`) and rotate-by age, as saved.
            let expiresOn: String
            let rotateByDays: String
            let keySetOn: String?
            let rotation: RotationPanel?
            /// In exclusive mode, a new key of another provider than the active one: who it would turn off.
            let exclusiveOthers: String?
        }

        let workspaceID: String
        let workspaceName: String
        let canEdit: Bool
        let total: Int
        /// "1 key", "12 keys".
        let totalText: String
        /// What the table says when it has no rows: no match, or where to begin.
        let emptyText: String
        let search: String
        let categories: [Option]
        let columns: [Column]
        let rows: [Row]
        /// The toast when the workspace's own KMS key refuses Keywarden.
        let customerKeyRevoked: String?
        let paging: Paging
        /// Step 1 of adding a key: the providers to choose from.
        let providers: [Option]
        let form: Form?
        /// Whether step 1 is shown (stored: templates read stored properties only).
        let offersProviders: Bool
    }

    /// A key's Test, for its row: the status, the vendor's message and the hint; a Test that could not run says why. A
    /// refusal (no `keys.test`, another workspace's key) is the page's answer, not a note.
    func verificationNote(workspaceID: String, keyID: String, principal: Principal) async throws -> RowNote {
        do {
            let (result, deactivated) = try await verification.verifySaved(workspaceID: workspaceID, keyID: keyID, principal: principal)
            let status = result.status.rawValue.replacingOccurrences(of: "_", with: " ")
            let hint = result.hint == result.message ? "" : result.hint
            let off = deactivated ? "Saved inactive — the vendor refused it; fix it and activate, or delete it." : ""
            return RowNote(keyID: keyID, text: [status.prefix(1).uppercased() + status.dropFirst() + ":", result.message, hint, off]
                .filter { !$0.isEmpty }.joined(separator: " "), good: result.status == .valid)
        } catch let error as KeywardenError where error.isAboutInput || error.kind == .tooManyRequests {
            return RowNote(keyID: keyID, text: "Not tested: \(error.message)", good: false)
        } catch let error as KeywardenError {
            throw error
        } catch {
            return RowNote(keyID: keyID, text: "Not tested: Keywarden could not run the test.", good: false)
        }
    }

    /// The provider's extras a form filled (blank ones keep what is stored).
    /// A form's field for one extra: a setting that is not secret shows its saved value; a secret one stays masked.
    static func field(_ field: ProviderField, filled: Set<String>, visible: [String: String], editing: Bool) -> KeysPage.Field {
        let shown = visible[field.id]
        let placeholder = shown == nil && filled.contains(field.id) ? savedPlaceholder : (field.placeholder ?? "")
        let inputType = field.kind == .url ? "url" : field.kind == .integer ? "number" : "text"
        return KeysPage.Field(fieldID: field.id, label: field.label, required: field.required && !filled.contains(field.id), placeholder: placeholder,
                              help: field.help, inputType: inputType, value: shown, canClear: editing && filled.contains(field.id) && !field.required)
    }

    /// The extras a form sends that differ from what it showed (a non-secret setting comes back as it was shown:
    /// compared as the form reads them, trimmed, that is no change).
    static func changedExtras(_ extras: [String: Secret], shown: [String: String]) -> [String: Secret] {
        extras.filter { id, value in value.unprotectedString != shown[id]?.trimmingCharacters(in: .whitespaces) }
    }

    /// In an exclusive workspace, the active providers other than `providerID`, named ("OpenAI, Anthropic"); `nil` when none.
    static func otherActiveProviders(_ app: AppServices, workspaceID: String, than providerID: String) async throws -> String? {
        let keys = try await app.resolution.view(for: workspaceID).keys(ofWorkspace: workspaceID)
        let others = Set(keys.filter { $0.active && $0.providerID != providerID }.map(\.providerID))
        guard !others.isEmpty else { return nil }
        return others.compactMap { app.catalog.provider($0)?.displayName }.sorted().joined(separator: ", ")
    }

    /// What a key's Test found, shown on its row.
    struct RowNote: Codable, Sendable {
        let keyID: String
        let text: String
        let good: Bool
    }

    func keysPage(_ request: Request, session: WebSession, workspaceID: String, editing: KeyDetails?, notice: String? = nil, error: String? = nil,
                  rowNote: RowNote? = nil, rotationNote: RowNote? = nil, typed: WebForm? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        // Read first: a caller without keys.read in the workspace sees none of the page.
        _ = try await app.resolution.view(for: workspaceID, principal: session.principal)
        let workspace = try await app.workspaceService.get(workspaceID, principal: session.principal)
        let pagination = try Pagination(page: try request.queryInt("page", code: "invalid_pagination"), perPage: try request.queryInt("per_page", code: "invalid_pagination") ?? 10)
        let query = try keys.listQuery(request, pagination: pagination)
        var (items, total) = try await app.keys.list(workspaceID: workspaceID, query: query, principal: session.principal)
        // A key just tested stays in sight: pinned at the top when its page is another.
        if let rowNote, !items.contains(where: { $0.credential.id == rowNote.keyID }),
           let tested = try? await app.keys.get(workspaceID: workspaceID, keyID: rowNote.keyID) {
            items.insert(tested, at: 0)
        }
        let canEdit = session.principal.decide(.keysUpdate, inWorkspace: workspaceID) == .allowed
        let canCreate = session.principal.decide(.keysCreate, inWorkspace: workspaceID) == .allowed
        let search = request.queryText("search") ?? ""
        let category = request.queryText("category") ?? "all"
        func link(sort: String? = nil, order: String? = nil, page: Int? = nil) -> String {
            var parts: [String] = []
            if !search.isEmpty { parts.append("search=\(Self.queryEscape(search))") }
            if category != "all" { parts.append("category=\(Self.queryEscape(category))") }
            if let sort = sort ?? request.queryText("sort") { parts.append("sort=\(Self.queryEscape(sort))") }
            if let order = order ?? request.queryText("order") { parts.append("order=\(Self.queryEscape(order))") }
            if let page { parts.append("page=\(page)") }
            return "/workspaces/\(workspaceID)/keys" + (parts.isEmpty ? "" : "?" + parts.joined(separator: "&"))
        }
        let currentSort = request.queryText("sort") ?? "created_at"
        let descending = request.queryText("order") == "desc"
        let columns = [("description", "Description"), ("provider", "Provider"), (nil, "Key"), ("status", "Status"), (nil, "Role"), ("created_at", "Created"),
                       (nil, "Last used")]
            .map { (sort: String?, label: String) -> KeysPage.Column in
                guard let sort else { return .init(label: label, sortable: false, href: nil, ariaSort: nil, arrow: nil) }
                let isCurrent = sort == currentSort
                return .init(label: label, sortable: true, href: link(sort: sort, order: isCurrent && !descending ? "desc" : "asc"),
                             ariaSort: isCurrent ? (descending ? "descending" : "ascending") : "none", arrow: isCurrent ? (descending ? " ▼" : " ▲") : "")
            }
        // Calls this budget period and the last one, per key on the page.
        let cycle = try await app.plans.effectiveLimits(of: workspace, defaultPlatformBudget: nil).cycle
        let period = BudgetPeriod(containing: Date(), cycle: cycle)
        let activity = try await app.requestLog.activity(ofKeys: items.map(\.credential.id), inWorkspace: workspaceID, since: period.start,
                                                          principal: session.principal)
        let periodName = cycle.currentPeriodName
        let revoked = try await revokedCustomerKey(workspaceID: workspaceID, principal: session.principal)
        let rows = items.map { details -> KeysPage.Row in
            let key = details.credential
            let revokedHere = details.customerKeyRevoked
            let note = rowNote?.keyID == key.id ? rowNote : nil
            let life = Self.lifecycleNote(key.lifecycle)
            return .init(id: key.id, description: key.description, provider: details.provider?.displayName ?? key.providerID,
                         hint: details.hasKey ? key.hint : "No key",
                         status: revokedHere ? Self.customerKeyRevokedText : details.status.rawValue.replacingOccurrences(of: "_", with: " "),
                         badgeClass: revokedHere ? "bad" : Self.badgeClass(details.hasKey ? details.status : nil), role: key.role.rawValue, active: key.active,
                         created: String(Timestamp.string(key.createdAt).prefix(10)),
                         lastUsed: activity[key.id].flatMap { use in
                             use.lastUsedAt.map { Self.shortTime($0) + " · " + Plural.count(use.callsSince, "call") + " " + periodName }
                         } ?? "Never",
                         toggleAction: key.active ? "deactivate" : "activate",
                         toggleLabel: key.active ? "Deactivate" : "Activate", note: note?.text, noteClass: note.map { $0.good ? "ok" : "bad" } ?? "",
                         lifecycle: life?.text, lifecycleClass: life?.warn == true ? "bad" : "")
        }
        // The form: editing a key, or adding one of the provider chosen in step 1 (`?new=`, or the form posted back).
        let chosen = editing?.provider ?? (typed?.text("provider") ?? request.queryText("new")).flatMap { app.catalog.provider($0) }
        let keyProviders = app.catalog.providers.filter { $0.keyField != nil }
        var form: KeysPage.Form?
        if (editing != nil && canEdit) || (editing == nil && canCreate), let provider = chosen, provider.keyField != nil {
            let filled = Set(editing?.credential.extrasSet ?? [])
            var visible: [String: String] = [:]
            if let editing { visible = try await app.visibleExtras(of: editing.credential) }
            let role = editing?.credential.role ?? typed?.text("role").flatMap(CredentialRole.init(rawValue:)) ?? .primary
            let lifecycle = editing?.credential.lifecycle
            let expiresOn: String = lifecycle?.expiresAt.map { String(Timestamp.string($0).prefix(10)) } ?? typed?.text("expires_at") ?? ""
            let rotateByDays: String = lifecycle?.rotateByDays.map(String.init) ?? typed?.text("rotate_by_days") ?? ""
            let keySetOn: String? = lifecycle?.keySetAt.map { String(Timestamp.string($0).prefix(10)) }
            let canTest = provider.verification.available && session.principal.decide(.keysTest, inWorkspace: workspaceID) == .allowed
            var rotation: RotationPanel?
            if let editing, editing.hasKey {
                rotation = RotationPanel(editing.credential, action: "/workspaces/\(workspaceID)/keys/\(editing.credential.id)/rotation",
                                         note: rotationNote, canTest: canTest)
            }
            form = .init(
                title: editing.map { "Edit “\($0.credential.description)”" } ?? "New \(provider.displayName) key",
                action: editing.map { "/workspaces/\(workspaceID)/keys/\($0.credential.id)" } ?? "/workspaces/\(workspaceID)/keys",
                editing: editing != nil, providerID: provider.id, providerName: provider.displayName,
                description: editing?.credential.description ?? typed?.text("description") ?? "",
                weight: editing?.credential.weight ?? typed?.text("weight").flatMap { Int($0) } ?? 1,
                keyLabel: provider.keyField?.label ?? "API key",
                keyPlaceholder: editing?.hasKey == true ? Self.savedPlaceholder : (provider.keyField?.placeholder ?? ""),
                keyHelp: provider.keyField?.help, requiresKey: editing == nil && provider.requiresKey,
                extras: provider.extraFields.map { field in Self.field(field, filled: filled, visible: visible, editing: editing != nil) },
                hasModels: !provider.models.isEmpty,
                models: Self.modelOptions(provider, selected: editing?.credential.defaultModel ?? typed?.text("default_model") ?? provider.defaultModel),
                roles: [CredentialRole.primary, .fallback, .pool].map { .init(value: $0.rawValue, label: $0.rawValue, selected: $0 == role) },
                canVerify: provider.verification.available && session.principal.decide(.keysTest, inWorkspace: workspaceID) == .allowed,
                expiresOn: expiresOn, rotateByDays: rotateByDays, keySetOn: keySetOn, rotation: rotation,
                exclusiveOthers: editing == nil && workspace.exclusive ? try await Self.otherActiveProviders(app, workspaceID: workspaceID, than: provider.id) : nil
            )
        }
        let content = KeysPage(
            workspaceID: workspaceID, workspaceName: workspace.name, canEdit: canEdit, total: total, totalText: Plural.count(total, "key"),
            emptyText: search.isEmpty && category == "all"
                ? (canCreate ? "No keys yet. Add the workspace's first key below: choose its provider, paste the key, Save & Verify." : "No keys yet.")
                : "No keys match this search.",
            search: search,
            categories: (["all"] + ProviderCategory.allCases.map(\.rawValue)).map { value in
                .init(value: value, label: value == "all" ? "All" : Self.categoryLabel(value), selected: value == category)
            },
            columns: columns, rows: rows, customerKeyRevoked: revoked.map(Self.customerKeyRevokedToast),
            paging: Paging(page: pagination.page, perPage: pagination.perPage, total: total) { link(page: $0) },
            providers: canCreate && editing == nil
                ? keyProviders.map { .init(value: $0.id, label: $0.displayName, selected: $0.id == chosen?.id) } : [],
            form: form, offersProviders: canCreate && editing == nil
        )
        let shownNotice = notice ?? request.queryText("notice").map { Self.noticeText($0, provider: "API key") }
        let chrome = try await chrome(session, title: "API keys", nav: "navKeys", workspaceID: workspaceID, notice: shownNotice, error: error)
        return WebResponse.page("keys", PageView(chrome: chrome, content: content), status: status)
    }
}
