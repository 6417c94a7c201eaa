import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenStore
import KeywardenVault

/// Webhooks of a workspace (keys.update) or of the platform (platform admin): register (the signing
/// secret is shown once), list, delete, read the delivery log, send a test event.
struct WebhooksController {
    let app: AppServices
    /// Test events per scope: each one is a delivery to every hook of the scope.
    let testLimiter: RateLimiter

    func addWorkspaceRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        addRoutes(to: group) { context in try context.parameters.require("workspace") }
    }

    func addPlatformRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        addRoutes(to: group) { _ in nil }
    }

    /// - Parameter scope: the workspace of the route (`nil`: the platform's); the service authorizes the caller for it.
    func addRoutes(to group: RouterGroup<KeywardenRequestContext>, scope: @escaping @Sendable (KeywardenRequestContext) throws -> String?) {
        group.post { request, context -> Response in
            let workspaceID = try scope(context)
            let principal = try context.requirePrincipal()
            // Refused before the body is read (the service checks again).
            try NotificationSettingsService.authorize(principal, workspaceID)
            let (hook, secret) = try await request.decodeBody(CreateBody.self, context: context)
                .create(in: app.notifications, workspaceID: workspaceID, principal: principal)
            return try JSONResponse.make(CreatedBody(webhook: WebhookBody(hook), signingSecret: secret.unprotectedString), status: .created)
        }
        group.get { _, context -> Response in
            let workspaceID = try scope(context)
            return try JSONResponse.make(["items": try await app.notifications.listWebhooks(workspaceID: workspaceID, principal: try context.requirePrincipal())
                .map(WebhookBody.init)])
        }
        group.post("test") { _, context -> Response in
            let workspaceID = try scope(context)
            let principal = try context.requirePrincipal()
            try NotificationSettingsService.authorize(principal, workspaceID)
            if let wait = testLimiter.acquire(workspaceID.map { "workspace:\($0)" } ?? "platform") {
                throw KeywardenError.rateLimited("test events", retryAfter: wait)
            }
            let event = try await app.notifications.sendTest(workspaceID: workspaceID, principal: principal)
            return try JSONResponse.make(["message": "A test event was queued for every webhook and the notification address.", "event_id": event.id], status: .accepted)
        }
        group.delete(":webhook") { _, context -> Response in
            let workspaceID = try scope(context)
            try await app.notifications.deleteWebhook(workspaceID: workspaceID, id: try context.parameters.require("webhook"), principal: try context.requirePrincipal())
            return try JSONResponse.make(MessageOnlyBody(message: "Webhook deleted."))
        }
        group.get(":webhook/deliveries") { _, context -> Response in
            let workspaceID = try scope(context)
            let deliveries = try await app.notifications.deliveries(workspaceID: workspaceID, webhookID: try context.parameters.require("webhook"),
                                                                     principal: try context.requirePrincipal())
            return try JSONResponse.make(["items": deliveries.map(DeliveryBody.init)])
        }
    }

    struct CreateBody: RequestBody {
        static let fields: Set<String> = ["url", "description", "events"]
        let url: String?
        let description: String?
        let events: [String]?

        /// Registers the webhook it describes in the scope.
        func create(in service: NotificationSettingsService, workspaceID: String?, principal: Principal) async throws -> (Webhook, Secret) {
            try NotificationSettingsService.authorize(principal, workspaceID)
            guard let url else { throw KeywardenError.missing("url") }
            let kinds = try (events ?? []).map { text in
                guard let kind = EventKind(rawValue: text), kind != .test else {
                    throw KeywardenError.invalid("events", "Unknown event '\(text)'; use \(EventKind.allCases.filter { $0 != .test }.map(\.rawValue).joined(separator: ", ")).")
                }
                return kind
            }
            return try await service.createWebhook(workspaceID: workspaceID, url: url, description: description ?? "", events: kinds, principal: principal)
        }
    }

    struct CreatedBody: Encodable {
        let webhook: WebhookBody
        /// Shown once: receivers verify `X-Keywarden-Signature` with it.
        let signingSecret: String
    }
}

struct WebhookBody: Encodable {
    let id: String
    let workspaceID: String?
    let url: String
    let description: String
    let events: [String]
    let active: Bool
    let createdAt: String

    init(_ hook: Webhook) {
        id = hook.id
        workspaceID = hook.workspaceID
        url = NotificationSettingsService.displayURL(hook.url)
        description = hook.description
        events = hook.events.map(\.rawValue)
        active = hook.active
        createdAt = hook.createdAt
    }
}

struct DeliveryBody: Encodable {
    let id: String
    let eventID: String
    let channel: String
    let status: String
    let attempts: Int
    let nextAttemptAt: String
    let lastStatusCode: Int?
    let lastError: String?
    let deliveredAt: String?
    let createdAt: String

    init(_ d: Delivery) {
        id = d.id
        eventID = d.eventID
        channel = d.channel.rawValue
        status = d.status.rawValue
        attempts = d.attempts
        nextAttemptAt = d.nextAttemptAt
        lastStatusCode = d.lastStatusCode
        lastError = d.lastError
        deliveredAt = d.deliveredAt
        createdAt = d.createdAt
    }
}
