import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenStore

/// Webhooks of a workspace (keys.update) or of the platform (platform admin): register (the signing
/// secret is shown once), list, delete, read the delivery log, send a test event.
struct WebhooksController {
    let app: AppServices
    /// Test events per scope: each one is a delivery to every hook of the scope.
    let testLimiter: RateLimiter

    func addWorkspaceRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        addRoutes(to: group) { context in
            let id = try context.parameters.require("workspace")
            return (id, try Access.require(.keysUpdate, in: id, context))
        }
    }

    func addPlatformRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        addRoutes(to: group) { context in (nil, try Access.requirePlatform(context)) }
    }

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>, scope: @escaping @Sendable (KeywardenRequestContext) throws -> (String?, Principal)) {
        group.post { request, context -> Response in
            let (workspaceID, principal) = try scope(context)
            let body = try await request.decodeBody(CreateBody.self, context: context)
            guard let url = body.url else { throw KeywardenError.missing("url") }
            let events = try (body.events ?? []).map { text in
                guard let kind = EventKind(rawValue: text), kind != .test else {
                    throw KeywardenError.invalid("events", "Unknown event '\(text)'; use \(EventKind.allCases.filter { $0 != .test }.map(\.rawValue).joined(separator: ", ")).")
                }
                return kind
            }
            let (hook, secret) = try await app.notifications.createWebhook(
                workspaceID: workspaceID, url: url, description: body.description ?? "", events: events, actor: principal.actor
            )
            return try JSONResponse.make(CreatedBody(webhook: WebhookBody(hook), signingSecret: secret.unprotectedString), status: .created)
        }
        group.get { _, context -> Response in
            let (workspaceID, _) = try scope(context)
            return try JSONResponse.make(["items": try await app.notifications.listWebhooks(workspaceID: workspaceID).map(WebhookBody.init)])
        }
        group.post("test") { _, context -> Response in
            let (workspaceID, principal) = try scope(context)
            if let wait = testLimiter.acquire(workspaceID.map { "workspace:\($0)" } ?? "platform") {
                throw KeywardenError.rateLimited("test events", retryAfter: wait)
            }
            let event = try await app.notifications.sendTest(workspaceID: workspaceID, actor: principal.actor)
            return try JSONResponse.make(["message": "A test event was queued for every webhook and the notification address.", "event_id": event.id], status: .accepted)
        }
        group.delete(":webhook") { _, context -> Response in
            let (workspaceID, principal) = try scope(context)
            try await app.notifications.deleteWebhook(workspaceID: workspaceID, id: try context.parameters.require("webhook"), actor: principal.actor)
            return try JSONResponse.make(MessageOnlyBody(message: "Webhook deleted."))
        }
        group.get(":webhook/deliveries") { _, context -> Response in
            let (workspaceID, _) = try scope(context)
            let deliveries = try await app.notifications.deliveries(workspaceID: workspaceID, webhookID: try context.parameters.require("webhook"))
            return try JSONResponse.make(["items": deliveries.map(DeliveryBody.init)])
        }
    }

    struct CreateBody: RequestBody {
        static let fields: Set<String> = ["url", "description", "events"]
        let url: String?
        let description: String?
        let events: [String]?
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
