import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenStore

/// Settings pages: a workspace's exclusive mode, bindings and webhooks; the platform's webhooks and e-mail.
extension PagesController {
    func addSettingsRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("workspaces/:workspace/settings") { request, context in
            try await page(request) { session in
                try await settingsPage(session, workspaceID: try context.parameters.require("workspace"), notice: request.queryText("notice").map(Self.settingsNotice))
            }
        }
        router.post("workspaces/:workspace/settings") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                try require(.keysUpdate, session, workspaceID)
                do {
                    _ = try await app.workspaceService.update(workspaceID, WorkspaceChanges(exclusive: form["exclusive"] == "on"), actor: session.principal.actor)
                } catch let error as KeywardenError where error.kind != .notFound {
                    return try await settingsPage(session, workspaceID: workspaceID, error: error.message, status: .conflict)
                }
                return WebResponse.redirect("/workspaces/\(workspaceID)/settings?notice=saved")
            }
        }
        router.post("workspaces/:workspace/settings/bindings") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                try require(.keysUpdate, session, workspaceID)
                let key = form.text("key_id")
                do {
                    _ = try await app.resolution.bind(workspaceID: workspaceID, consumer: form.text("consumer") ?? "",
                                                        modality: try ResolutionController.modality(form.text("modality")),
                                                        keyID: key == "provider_main" ? nil : key, actor: session.principal.actor)
                } catch let error as KeywardenError where error.kind != .notFound {
                    return try await settingsPage(session, workspaceID: workspaceID, error: error.message, status: .unprocessableContent)
                }
                return WebResponse.redirect("/workspaces/\(workspaceID)/settings?notice=bound")
            }
        }
        router.post("workspaces/:workspace/settings/bindings/delete") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                try require(.keysUpdate, session, workspaceID)
                try await app.resolution.unbind(workspaceID: workspaceID, consumer: form.text("consumer") ?? "",
                                                  modality: try ResolutionController.modality(form.text("modality")), actor: session.principal.actor)
                return WebResponse.redirect("/workspaces/\(workspaceID)/settings?notice=unbound")
            }
        }
        router.get("platform/notifications") { request, _ in
            try await page(request) { session in
                guard session.principal.isPlatformAdmin else { throw KeywardenError.forbidden }
                return try await settingsPage(session, workspaceID: nil, notice: request.queryText("notice").map(Self.settingsNotice))
            }
        }
        router.post("platform/notifications/smtp") { request, context in
            try await page(request) { session in
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                guard session.principal.isPlatformAdmin else { throw KeywardenError.forbidden }
                do {
                    guard let port = form.text("port").flatMap(Int.init), (1...65_535).contains(port) else { throw KeywardenError.invalid("port", "The port is a number from 1 to 65535.") }
                    guard let security = SMTPSettings.Security(rawValue: form.text("security") ?? "") else { throw KeywardenError.invalid("security", "Choose starttls, tls or none.") }
                    try await app.notifications.saveSMTP(SMTPSettings(
                        host: form.text("host") ?? "", port: port, security: security, username: form.text("username"),
                        from: form.text("from") ?? "", platformAddress: form.text("platform_address")
                    ), password: form.text("password").map { Secret($0) }, actor: session.principal.actor)
                } catch let error as KeywardenError {
                    return try await settingsPage(session, workspaceID: nil, error: error.message, status: .unprocessableContent)
                }
                return WebResponse.redirect("/platform/notifications?notice=smtp")
            }
        }
        // Webhooks, for a workspace (`/workspaces/{ws}/settings/webhooks`) or the platform (`/platform/notifications/webhooks`).
        for platform in [false, true] {
            let prefix = platform ? "platform/notifications" : "workspaces/:workspace/settings"
            router.post(RouterPath("\(prefix)/webhooks")) { request, context in
                try await page(request) { session in
                    let workspaceID = platform ? nil : try context.parameters.require("workspace")
                    let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                    try requireSettings(session, workspaceID)
                    let events = EventKind.allCases.filter { $0 != .test && form["event_\($0.rawValue)"] == "on" }
                    do {
                        let (_, secret) = try await app.notifications.createWebhook(
                            workspaceID: workspaceID, url: form.text("url") ?? "", description: form.text("description") ?? "",
                            events: events, actor: session.principal.actor)
                        // The signing secret is shown once, on this answer only (no-store, never in a URL).
                        return try await settingsPage(session, workspaceID: workspaceID, notice: "Webhook added.", secretOnce: secret.unprotectedString)
                    } catch let error as KeywardenError where error.kind != .notFound {
                        return try await settingsPage(session, workspaceID: workspaceID, error: error.message, status: .unprocessableContent)
                    }
                }
            }
            router.post(RouterPath("\(prefix)/webhooks/:webhook/delete")) { request, context in
                try await page(request) { session in
                    let workspaceID = platform ? nil : try context.parameters.require("workspace")
                    _ = try await WebForm.read(request, context: context, csrf: session.csrf)
                    try requireSettings(session, workspaceID)
                    try await app.notifications.deleteWebhook(workspaceID: workspaceID, id: try context.parameters.require("webhook"), actor: session.principal.actor)
                    return WebResponse.redirect(platform ? "/platform/notifications?notice=deleted" : "/workspaces/\(workspaceID ?? "")/settings?notice=deleted")
                }
            }
        }
    }

    func requireSettings(_ session: WebSession, _ workspaceID: String?) throws {
        if let workspaceID { try require(.keysUpdate, session, workspaceID) } else if !session.principal.isPlatformAdmin { throw KeywardenError.forbidden }
    }

    /// A workspace's settings (exclusive mode, bindings, webhooks) or the platform's notifications (webhooks, e-mail).
    struct SettingsPage: Encodable {
        struct Option: Encodable {
            let value: String
            let label: String
        }

        struct BindingRow: Encodable {
            let consumer: String
            let modality: String
            let modalityValue: String
            let target: String
        }

        struct WorkspacePart: Encodable {
            let id: String
            let exclusive: Bool
            let bindings: [BindingRow]
            let modalities: [Option]
            let keyOptions: [Option]
        }

        struct WebhookRow: Encodable {
            let id: String
            let url: String
            let description: String
            let events: String
        }

        struct SecurityOption: Encodable {
            let value: String
            let selected: Bool
        }

        struct SMTPPart: Encodable {
            let host: String
            let port: Int
            let username: String
            let from: String
            let platformAddress: String
            let passwordPlaceholder: String
            let securities: [SecurityOption]
        }

        struct EventOption: Encodable {
            let value: String
        }

        let heading: String
        let canEdit: Bool
        /// Where the webhook forms post: `/workspaces/{id}/settings` or `/platform/notifications`.
        let base: String
        let workspace: WorkspacePart?
        let smtp: SMTPPart?
        let webhooks: [WebhookRow]
        let eventKinds: [EventOption]
        /// A new webhook's signing secret, on the answer that created it only.
        let secretOnce: String?
    }

    func settingsPage(_ session: WebSession, workspaceID: String?, notice: String? = nil, error: String? = nil, secretOnce: String? = nil,
                      status: HTTPResponse.Status = .ok) async throws -> Response {
        let canEdit: Bool
        let heading: String
        var workspacePart: SettingsPage.WorkspacePart?
        var smtpPart: SettingsPage.SMTPPart?
        if let workspaceID {
            try require(.keysRead, session, workspaceID)
            canEdit = session.principal.decide(.keysUpdate, inWorkspace: workspaceID) == .allowed
            let workspace = try await app.workspaceService.get(workspaceID)
            let keys = try await app.keys.list(workspaceID: workspaceID, query: CredentialQuery(perPage: 100)).items
            let names = Dictionary(uniqueKeysWithValues: keys.map { ($0.credential.id, "\($0.credential.description) (\($0.provider?.displayName ?? $0.credential.providerID))") })
            heading = "Settings · \(workspace.name)"
            workspacePart = .init(
                id: workspaceID, exclusive: workspace.exclusive,
                bindings: try await app.resolution.listBindings(workspaceID: workspaceID).map { binding in
                    .init(consumer: binding.consumer, modality: binding.modality?.rawValue ?? "every modality", modalityValue: binding.modality?.rawValue ?? "*",
                          target: binding.credentialID.map { names[$0] ?? $0 } ?? "the provider's main chain")
                },
                modalities: [.init(value: "*", label: "Every modality")] + Modality.allCases.map { .init(value: $0.rawValue, label: $0.rawValue) },
                keyOptions: [.init(value: "provider_main", label: "The provider's main chain")]
                    + keys.map { .init(value: $0.credential.id, label: names[$0.credential.id] ?? $0.credential.id) })
        } else {
            guard session.principal.isPlatformAdmin else { throw KeywardenError.forbidden }
            canEdit = true
            heading = "Notifications"
            let smtp = try await app.notifications.smtp()
            smtpPart = .init(
                host: smtp?.0.host ?? "", port: smtp?.0.port ?? 587, username: smtp?.0.username ?? "", from: smtp?.0.from ?? "",
                platformAddress: smtp?.0.platformAddress ?? "", passwordPlaceholder: smtp?.hasPassword == true ? Self.savedPlaceholder : "",
                securities: SMTPSettings.Security.allCases.map { .init(value: $0.rawValue, selected: $0 == (smtp?.0.security ?? .starttls)) })
        }
        let content = SettingsPage(
            heading: heading, canEdit: canEdit, base: workspaceID.map { "/workspaces/\($0)/settings" } ?? "/platform/notifications",
            workspace: workspacePart, smtp: smtpPart,
            webhooks: try await app.notifications.listWebhooks(workspaceID: workspaceID).map { hook in
                .init(id: hook.id, url: NotificationSettingsService.displayURL(hook.url), description: hook.description,
                      events: hook.events.isEmpty ? "all" : hook.events.map(\.rawValue).joined(separator: ", "))
            },
            eventKinds: EventKind.allCases.filter { $0 != .test }.map { .init(value: $0.rawValue) },
            secretOnce: secretOnce)
        let chrome = try await chrome(session, title: workspaceID == nil ? "Notifications" : "Settings",
                                      nav: workspaceID == nil ? "navNotifications" : "navSettings", workspaceID: workspaceID, notice: notice, error: error)
        return WebResponse.page("settings", PageView(chrome: chrome, content: content), status: status)
    }

    static func settingsNotice(_ code: String) -> String {
        ["saved": "Settings saved.", "bound": "Binding saved.", "unbound": "Binding removed.", "deleted": "Webhook deleted.",
         "smtp": "E-mail settings saved."][code] ?? "Done."
    }
}
