import KeywardenCore
import KeywardenStore
import KeywardenVault

/// The doors' entry points to notifications: a workspace's webhooks are its key managers' (`keys.update`), the
/// platform's webhooks and e-mail settings are the platform admins'. Each authorizes the principal, then acts as it.
extension NotificationSettingsService {
    /// Allows managing the notifications of a workspace (`nil`: the platform's).
    public static func authorize(_ principal: Principal, _ workspaceID: String?) throws {
        if let workspaceID { try principal.authorize(.keysUpdate, inWorkspace: workspaceID) } else { try principal.authorizePlatform() }
    }

    /// Registers a webhook; its signing secret, shown once.
    public func createWebhook(workspaceID: String?, url: String, description: String, events: [EventKind], principal: Principal) async throws -> (Webhook, Secret) {
        try Self.authorize(principal, workspaceID)
        return try await createWebhook(workspaceID: workspaceID, url: url, description: description, events: events, actor: principal.actor)
    }

    /// The scope's webhooks.
    public func listWebhooks(workspaceID: String?, principal: Principal) async throws -> [Webhook] {
        try Self.authorize(principal, workspaceID)
        return try await listWebhooks(workspaceID: workspaceID)
    }

    /// Deletes one of the scope's webhooks.
    public func deleteWebhook(workspaceID: String?, id: String, principal: Principal) async throws {
        try Self.authorize(principal, workspaceID)
        try await deleteWebhook(workspaceID: workspaceID, id: id, actor: principal.actor)
    }

    /// A webhook's delivery log.
    public func deliveries(workspaceID: String?, webhookID: String, principal: Principal) async throws -> [Delivery] {
        try Self.authorize(principal, workspaceID)
        return try await deliveries(workspaceID: workspaceID, webhookID: webhookID)
    }

    /// The deliveries of one event of the scope.
    public func deliveries(ofEvent eventID: String, workspaceID: String?, principal: Principal) async throws -> [Delivery] {
        try Self.authorize(principal, workspaceID)
        return try await deliveries(ofEvent: eventID, workspaceID: workspaceID)
    }

    /// Records a test event for every webhook and the notification address of the scope.
    public func sendTest(workspaceID: String?, principal: Principal) async throws -> Event {
        try Self.authorize(principal, workspaceID)
        return try await sendTest(workspaceID: workspaceID, actor: principal.actor)
    }

    /// The e-mail settings (platform admins), the password only as whether one is kept.
    public func smtp(principal: Principal) async throws -> (SMTPSettings, hasPassword: Bool)? {
        try principal.authorizePlatform()
        return try await smtp()
    }

    /// Saves the e-mail settings (platform admins); a `nil` password keeps the one kept.
    public func saveSMTP(_ settings: SMTPSettings, password: Secret?, principal: Principal) async throws {
        try principal.authorizePlatform()
        try await saveSMTP(settings, password: password, actor: principal.actor)
    }

    /// Recorded events, newest first, within what the principal may read (`audit.read`: its own workspace; a platform
    /// admin, every workspace or the one named).
    public func events(workspaceID requested: String?, kind: EventKind?, principal: Principal) async throws -> [Event] {
        let scope = try principal.readableScope(.auditRead, requested: requested, platformWide: false)
        return try await store.engine.read { db in try await self.store.events.list(workspaceID: scope, kind: kind, on: db) }
    }
}
