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
                let flash = await flash(request, session: session)
                return try await settingsPage(session, workspaceID: try context.parameters.require("workspace"),
                                              notice: flash?.notice ?? request.queryText("notice").map(Self.settingsNotice), secretOnce: flash?.revealed?.value)
            }
        }
        router.post("workspaces/:workspace/settings") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                do {
                    try await updateWorkspace(workspaceID, form.only(["exclusive"]), session: session)
                } catch let error as KeywardenError where error.isAboutInput {
                    return try await settingsPage(session, workspaceID: workspaceID, error: error.message, status: APIError(error).status)
                }
                return WebResponse.redirect("/workspaces/\(workspaceID)/settings?notice=saved")
            }
        }
        router.post("workspaces/:workspace/settings/bindings") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                var form = try await WebForm.read(request, context: context, csrf: session.csrf)
                do {
                    // The form is `PUT …/bindings`; its key list offers the provider's main chain as one more choice.
                    try session.principal.authorize(.keysUpdate, inWorkspace: workspaceID)
                    if form["key_id"] == "provider_main" { form = form.setting("key_id", to: nil).setting("target", to: "provider_main") }
                    _ = try await form.decode(ResolutionController.BindBody.self).bind(in: app.resolution, workspaceID: workspaceID, principal: session.principal)
                } catch let error as KeywardenError where error.isAboutInput {
                    return try await settingsPage(session, workspaceID: workspaceID, error: error.message, status: APIError(error).status)
                }
                return WebResponse.redirect("/workspaces/\(workspaceID)/settings?notice=bound")
            }
        }
        router.post("workspaces/:workspace/settings/bindings/delete") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                try await app.resolution.unbind(workspaceID: workspaceID, consumer: form.text("consumer") ?? "",
                                                  modality: try ResolutionController.modality(form.text("modality")), principal: session.principal)
                return WebResponse.redirect("/workspaces/\(workspaceID)/settings?notice=unbound")
            }
        }
        router.get("platform/notifications") { request, _ in
            try await page(request) { session in
                let flash = await flash(request, session: session)
                return try await settingsPage(session, workspaceID: nil, notice: flash?.notice ?? request.queryText("notice").map(Self.settingsNotice),
                                              secretOnce: flash?.revealed?.value)
            }
        }
        router.post("platform/notifications/smtp") { request, context in
            try await page(request) { session in
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                do {
                    // The form is `PUT /api/v1/platform/smtp` (a blank password keeps the one kept); refused before it is read.
                    try session.principal.authorizePlatform()
                    let body = try form.decode(NotificationSettingsController.SaveBody.self)
                    try await app.notifications.saveSMTP(try body.settings(), password: body.password, principal: session.principal)
                } catch let error as KeywardenError where error.isAboutInput {
                    return try await settingsPage(session, workspaceID: nil, error: error.message, status: APIError(error).status)
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
                    do {
                        // The form is `POST …/webhooks`: the service refuses a caller who may not manage the scope's.
                        try NotificationSettingsService.authorize(session.principal, workspaceID)
                        let (_, secret) = try await form.decode(WebhooksController.CreateBody.self)
                            .create(in: app.notifications, workspaceID: workspaceID, principal: session.principal)
                        // The signing secret is shown once, on the page this redirects to (sealed, never in a URL): a reload adds no
                        // second webhook.
                        let back = platform ? "/platform/notifications" : "/workspaces/\(workspaceID ?? "")/settings"
                        return try await redirect(back + "#webhooks", flash: WebFlash(
                            notice: "Webhook added.", revealed: .init(title: "Signing secret", value: secret.unprotectedString, snippet: nil)),
                            session: session, request: request)
                    } catch let error as KeywardenError where error.isAboutInput {
                        return try await settingsPage(session, workspaceID: workspaceID, error: error.message, status: APIError(error).status)
                    }
                }
            }
            // "Send a test event": to every webhook and the notification address of the scope; the answer waits (a few
            // seconds at most) for the first attempt of each delivery and says how each went.
            router.post(RouterPath("\(prefix)/test")) { request, context in
                try await page(request) { session in
                    let workspaceID = platform ? nil : try context.parameters.require("workspace")
                    _ = try await WebForm.read(request, context: context, csrf: session.csrf)
                    try NotificationSettingsService.authorize(session.principal, workspaceID)
                    // The API's limit, shared: a few test notifications a minute per scope, whichever door sends them.
                    if let wait = testLimiter?.acquire(workspaceID.map { "workspace:\($0)" } ?? "platform") {
                        throw KeywardenError.rateLimited("test events", retryAfter: wait)
                    }
                    let event = try await app.notifications.sendTest(workspaceID: workspaceID, principal: session.principal)
                    var deliveries = try await app.notifications.deliveries(ofEvent: event.id, workspaceID: workspaceID, principal: session.principal)
                    let deadline = ContinuousClock.now + Self.testDeliveryWait
                    while deliveries.contains(where: { $0.status == .pending && $0.attempts == 0 }), ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(200))
                        deliveries = try await app.notifications.deliveries(ofEvent: event.id, workspaceID: workspaceID, principal: session.principal)
                    }
                    // The address shown without its query (a receiver's token may sit there), as the list shows it.
                    let hooks = Dictionary(try await app.notifications.listWebhooks(workspaceID: workspaceID, principal: session.principal)
                        .map { ($0.id, NotificationSettingsService.displayURL($0.url)) }) { first, _ in first }
                    let back = platform ? "/platform/notifications" : "/workspaces/\(workspaceID ?? "")/settings"
                    return try await redirect(back + "#webhooks", flash: WebFlash(notice: Self.testOutcome(deliveries, hooks: hooks)), session: session, request: request)
                }
            }
            router.post(RouterPath("\(prefix)/webhooks/:webhook/delete")) { request, context in
                try await page(request) { session in
                    let workspaceID = platform ? nil : try context.parameters.require("workspace")
                    _ = try await WebForm.read(request, context: context, csrf: session.csrf)
                    try await app.notifications.deleteWebhook(workspaceID: workspaceID, id: try context.parameters.require("webhook"), principal: session.principal)
                    return WebResponse.redirect(platform ? "/platform/notifications?notice=deleted" : "/workspaces/\(workspaceID ?? "")/settings?notice=deleted")
                }
            }
        }
    }

    /// How long "Send a test event" waits for each delivery's first attempt.
    static let testDeliveryWait: Duration = .seconds(8)

    /// A test event's outcome, a line per delivery: delivered (with the receiver's status), failed (with its error, and
    /// the retry to come), or still waiting.
    static func testOutcome(_ deliveries: [Delivery], hooks: [String: String]) -> String {
        guard !deliveries.isEmpty else { return "A test event was recorded, but there is no webhook or notification address to send it to." }
        // Kept short: the text travels in a cookie (a browser keeps 4 KB of one).
        func short(_ text: String) -> String { text.count > 160 ? String(text.prefix(157)) + "…" : text }
        let shown = deliveries.prefix(8)
        let more = deliveries.count - shown.count
        let lines = shown.map { delivery -> String in
            let target = short(delivery.channel == .email ? "E-mail to \(delivery.target)" : "Webhook \(hooks[delivery.target] ?? delivery.target)")
            switch delivery.status {
            case .delivered: return target + ": delivered" + (delivery.lastStatusCode.map { " (\($0))" } ?? "") + "."
            case .failed: return target + ": failed" + (delivery.lastError.map { ": \(short($0))" } ?? "") + "; no more attempts."
            case .pending where delivery.attempts > 0:
                return target + ": failed" + (delivery.lastError.map { ": \(short($0))" } ?? delivery.lastStatusCode.map { ": status \($0)" } ?? "") + "; it will be tried again."
            case .pending: return target + ": not sent yet (the dispatcher is busy); see its deliveries below."
            }
        }
        return "Test event sent. " + lines.joined(separator: " ") + (more > 0 ? " And \(more) more deliveries, in each webhook's log." : "")
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
            let keys = try await app.keys.list(workspaceID: workspaceID, query: CredentialQuery(perPage: 100), principal: session.principal).items
            canEdit = session.principal.decide(.keysUpdate, inWorkspace: workspaceID) == .allowed
            let workspace = try await app.workspaceService.get(workspaceID, principal: session.principal)
            let names = Dictionary(uniqueKeysWithValues: keys.map { ($0.credential.id, "\($0.credential.description) (\($0.provider?.displayName ?? $0.credential.providerID))") })
            heading = "Settings · \(workspace.name)"
            workspacePart = .init(
                id: workspaceID, exclusive: workspace.exclusive,
                bindings: try await app.resolution.listBindings(workspaceID: workspaceID, principal: session.principal).map { binding in
                    .init(consumer: binding.consumer, modality: binding.modality?.rawValue ?? "every modality", modalityValue: binding.modality?.rawValue ?? "*",
                          target: binding.credentialID.map { names[$0] ?? $0 } ?? "the provider's main chain")
                },
                modalities: [.init(value: "*", label: "Every modality")] + Modality.allCases.map { .init(value: $0.rawValue, label: $0.rawValue) },
                keyOptions: [.init(value: "provider_main", label: "The provider's main chain")]
                    + keys.map { .init(value: $0.credential.id, label: names[$0.credential.id] ?? $0.credential.id) })
        } else {
            let smtp = try await app.notifications.smtp(principal: session.principal)
            canEdit = true
            heading = "Notifications"
            smtpPart = .init(
                host: smtp?.0.host ?? "", port: smtp?.0.port ?? 587, username: smtp?.0.username ?? "", from: smtp?.0.from ?? "",
                platformAddress: smtp?.0.platformAddress ?? "", passwordPlaceholder: smtp?.hasPassword == true ? Self.savedPlaceholder : "",
                securities: SMTPSettings.Security.allCases.map { .init(value: $0.rawValue, selected: $0 == (smtp?.0.security ?? .starttls)) })
        }
        let content = SettingsPage(
            heading: heading, canEdit: canEdit, base: workspaceID.map { "/workspaces/\($0)/settings" } ?? "/platform/notifications",
            workspace: workspacePart, smtp: smtpPart,
            // The webhooks to those who may manage them (the API's rule): their addresses are the team's configuration.
            webhooks: (canEdit ? try await app.notifications.listWebhooks(workspaceID: workspaceID, principal: session.principal) : []).map { hook in
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
