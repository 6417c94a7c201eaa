import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import SQLKit

/// How Keywarden reaches an SMTP server. The password lives sealed in the vault.
public struct SMTPSettings: Codable, Sendable, Equatable {
    /// How the connection is secured.
    public enum Security: String, Codable, Sendable, CaseIterable {
        /// Plain connection upgraded with STARTTLS (refused if the server does not offer it).
        case starttls
        /// TLS from the first byte (port 465).
        case tls
        /// No encryption: only for a relay on the same host.
        case none
    }

    public var host: String
    public var port: Int
    public var security: Security
    public var username: String?
    /// The sender address.
    public var from: String
    /// Where platform-level events (the platform's own keys) are mailed.
    public var platformAddress: String?

    enum CodingKeys: String, CodingKey {
        case host, port, security, username, from
        case platformAddress = "platform_address"
    }

    public init(host: String, port: Int, security: Security, username: String?, from: String, platformAddress: String?) {
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.from = from
        self.platformAddress = platformAddress
    }
}

/// Webhooks, SMTP settings, and turning key status changes into events.
public struct NotificationSettingsService: Sendable {
    let app: AppServices
    var store: Store { app.store }
    let webhooks = WebhookRepository()
    let settings = SettingsRepository()
    let events = EventRepository()

    static let smtpKey = "smtp"
    /// The most webhooks a workspace may register (each event is one delivery per hook).
    public static let maximumWorkspaceWebhooks = 10
    /// The most webhooks of the platform.
    public static let maximumPlatformWebhooks = 50

    /// Where the SMTP password is sealed.
    public static let smtpPasswordContext = SecretContext(scope: .platform, ownerID: "smtp", field: "password")

    // MARK: Webhooks

    /// Registers a webhook; returns it and its signing secret (shown once).
    public func createWebhook(workspaceID: String?, url: String, description: String, events: [EventKind], actor: String) async throws -> (Webhook, Secret) {
        if let problem = OutboundURL.problem(url) {
            throw KeywardenError.invalid("url", "url \(problem).")
        }
        guard url.unicodeScalars.count <= 2000 else { throw KeywardenError.invalid("url", "url is longer than 2000 characters.") }
        if workspaceID != nil { try await store.configuration.ensureAllowedTarget(url, field: "url") }
        let description = description.trimmingCharacters(in: .whitespacesAndNewlines)
        guard description.unicodeScalars.count <= 200 else { throw KeywardenError.invalid("description", "description is longer than 200 characters.") }
        try await store.vault.prepare(workspaceID.map(Scope.workspace) ?? .platform, keys: store.scopeKeys)
        return try await store.engine.transaction { db in
            if let workspaceID, try await self.store.workspaces.get(workspaceID, on: db) == nil { throw KeywardenError.notFound("workspace") }
            let limit = workspaceID == nil ? Self.maximumPlatformWebhooks : Self.maximumWorkspaceWebhooks
            guard try await self.webhooks.list(workspaceID: workspaceID, on: db).count < limit else {
                throw KeywardenError(.conflict, code: "too_many_webhooks", message: "At most \(limit) webhooks; delete one first.")
            }
            let hook = Webhook(
                id: Identifier.make("whk"), workspaceID: workspaceID, url: url, description: description,
                events: events, active: true, createdAt: Timestamp.now, createdBy: actor
            )
            try await self.webhooks.insert(hook, on: db)
            let secret = Secret(AccessToken.generate().value.replacingOccurrences(of: AccessToken.prefix, with: "whsec_"))
            let context = Self.secretContext(hook)
            try await self.store.secrets.put(try await self.store.vault.seal(secret, in: context, on: db), for: context, on: db)
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "webhook.created", targetType: "webhook", targetID: hook.id, workspaceID: workspaceID,
                details: ["url": Self.displayURL(url), "events": events.map(\.rawValue).joined(separator: ",")],
                secretFingerprint: self.store.fingerprinter?.fingerprint(of: secret)
            ), on: db)
            return (hook, secret)
        }
    }

    public func listWebhooks(workspaceID: String?) async throws -> [Webhook] {
        try await store.engine.read { db in
            if let workspaceID, try await self.store.workspaces.get(workspaceID, on: db) == nil { throw KeywardenError.notFound("workspace") }
            return try await self.webhooks.list(workspaceID: workspaceID, on: db)
        }
    }

    public func deleteWebhook(workspaceID: String?, id: String, actor: String) async throws {
        try await store.engine.transaction { db in
            guard let hook = try await self.webhooks.get(id, workspaceID: workspaceID, on: db) else { throw KeywardenError.notFound("webhook") }
            try await self.webhooks.delete(id, on: db)
            try await self.store.secrets.deleteAll(ownerID: id, on: db)
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "webhook.deleted", targetType: "webhook", targetID: id, workspaceID: workspaceID,
                details: ["url": Self.displayURL(hook.url)]
            ), on: db)
        }
    }

    /// The delivery log of one webhook, newest first.
    public func deliveries(workspaceID: String?, webhookID: String) async throws -> [Delivery] {
        try await store.engine.read { db in
            guard try await self.webhooks.get(webhookID, workspaceID: workspaceID, on: db) != nil else { throw KeywardenError.notFound("webhook") }
            return try await self.events.deliveries(target: webhookID, on: db)
        }
    }

    /// The deliveries of one event of the scope (a test's, to show its outcome).
    public func deliveries(ofEvent eventID: String, workspaceID: String?) async throws -> [Delivery] {
        try await store.engine.read { db in
            let hooks = Set(try await self.webhooks.list(workspaceID: workspaceID, on: db).map(\.id))
            // Only the scope's own: a webhook of another scope, or an address, of an event that is not the scope's is not shown.
            return try await self.events.deliveries(event: eventID, on: db).filter { $0.channel == .email || hooks.contains($0.target) }
        }
    }

    /// Opens a webhook's signing secret (for the dispatcher, at the moment of signing).
    public func signingSecret(of hook: Webhook) async throws -> Secret? {
        let context = Self.secretContext(hook)
        return try await store.engine.read { db in
            guard let sealed = try await self.store.secrets.get(context, on: db) else { return nil }
            return try await self.store.vault.open(sealed, in: context, on: db)
        }
    }

    static func secretContext(_ hook: Webhook) -> SecretContext {
        SecretContext(scope: hook.workspaceID.map(Scope.workspace) ?? .platform, ownerID: hook.id, field: WebhookRepository.secretField)
    }

    /// A URL for audit entries and lists: scheme, host and path only (a query may carry a token).
    public static func displayURL(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "(invalid)" }
        components.query = nil
        components.user = nil
        components.password = nil
        components.fragment = nil
        return components.string ?? "(invalid)"
    }

    /// Sends a test event to one webhook (or to every hook of the scope) and the scope's address.
    public func sendTest(workspaceID: String?, actor: String) async throws -> Event {
        try await store.engine.transaction { db in
            if let workspaceID, try await self.store.workspaces.get(workspaceID, on: db) == nil { throw KeywardenError.notFound("workspace") }
            let targets = try await self.emailTargets(workspaceID: workspaceID, on: db)
            return try await self.events.record(
                .test, workspaceID: workspaceID, credentialID: nil, providerID: nil,
                data: ["message": "A test notification from Keywarden.", "requested_by": actor], emailTargets: targets, on: db
            )
        }
    }

    // MARK: SMTP

    public func smtp() async throws -> (SMTPSettings, hasPassword: Bool)? {
        try await store.engine.read { db in
            guard let settings = try await self.settings.get(Self.smtpKey, as: SMTPSettings.self, on: db) else { return nil }
            let password = try await self.store.secrets.get(Self.smtpPasswordContext, on: db)
            return (settings, password != nil)
        }
    }

    /// The SMTP settings and password, opened for the dispatcher.
    public func smtpForSending() async throws -> (SMTPSettings, Secret?)? {
        try await store.engine.read { db in
            guard let settings = try await self.settings.get(Self.smtpKey, as: SMTPSettings.self, on: db) else { return nil }
            guard let sealed = try await self.store.secrets.get(Self.smtpPasswordContext, on: db) else { return (settings, nil) }
            return (settings, try await self.store.vault.open(sealed, in: Self.smtpPasswordContext, on: db))
        }
    }

    /// Saves SMTP settings; a blank password keeps the stored one (leave blank to keep).
    public func saveSMTP(_ settings: SMTPSettings, password: Secret?, actor: String) async throws {
        guard !settings.host.trimmingCharacters(in: .whitespaces).isEmpty else { throw KeywardenError.missing("host") }
        guard (1...65535).contains(settings.port) else { throw KeywardenError.invalid("port", "port must be between 1 and 65535.") }
        guard WorkspaceService.looksLikeEmail(settings.from) else { throw KeywardenError.invalid("from", "from must be an e-mail address.") }
        if let address = settings.platformAddress, !WorkspaceService.looksLikeEmail(address) {
            throw KeywardenError.invalid("platform_address", "platform_address must be an e-mail address.")
        }
        try await store.vault.prepare(.platform, keys: store.scopeKeys)
        try await store.engine.transaction { db in
            try await self.settings.set(Self.smtpKey, to: settings, by: actor, on: db)
            var fingerprint: String?
            if let password, !password.isBlank {
                try await self.store.secrets.put(try await self.store.vault.seal(password, in: Self.smtpPasswordContext, on: db), for: Self.smtpPasswordContext, on: db)
                fingerprint = self.store.fingerprinter?.fingerprint(of: password)
            }
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "settings.smtp_saved", targetType: "settings", targetID: Self.smtpKey,
                details: ["host": settings.host, "port": "\(settings.port)", "security": settings.security.rawValue, "password_changed": "\(fingerprint != nil)"],
                secretFingerprint: fingerprint
            ), on: db)
        }
    }

    /// The addresses an event of this scope is mailed to (none when SMTP is not configured).
    func emailTargets(workspaceID: String?, on db: any SQLDatabase) async throws -> [String] {
        guard let smtp = try await settings.get(Self.smtpKey, as: SMTPSettings.self, on: db) else { return [] }
        if let workspaceID {
            return (try await store.workspaces.get(workspaceID, on: db)?.notificationEmail).map { [$0] } ?? []
        }
        return smtp.platformAddress.map { [$0] } ?? []
    }

    // MARK: Key status

    /// Records a verification outcome on a credential and, on a transition between usable and
    /// unusable, an event (with its deliveries) in the same transaction. Ten failures in a row raise one event.
    @discardableResult
    ///
    /// With `keyVersion`, the verdict is about the key and extras that were used: when they were replaced meanwhile
    /// (a Test or a gateway call that finished after the key was edited), nothing is recorded.
    public func recordStatus(
        credentialID: String, status: VerificationStatus, message: String?, checkedAt: Date, actor: String, keyVersion: KeyVersion? = nil
    ) async throws -> (Credential, Event?) {
        try await store.engine.transaction { db in
            guard var credential = try await self.store.credentials.get(credentialID, on: db) else { throw KeywardenError.notFound("key") }
            if let keyVersion, try await self.store.credentials.keyVersion(of: credential, on: db) != keyVersion {
                return (credential, nil)
            }
            let previous = credential.status
            credential.status = status
            credential.lastVerifiedAt = checkedAt
            credential.lastError = status == .valid ? nil : message
            try await self.store.credentials.write(credential, on: db)
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "credential.verified", targetType: "credential", targetID: credential.id,
                workspaceID: credential.scope.workspaceID,
                details: ["provider": credential.providerID, "status": status.rawValue, "previous": previous.rawValue]
            ), on: db)
            // A key edited since its last verdict reads "unverified": the transition is judged against the
            // last event, so a replaced bad key that works raises key.recovered, and a second bad one nothing.
            var before = previous
            if previous == .unverified, let last = try await self.events.lastKeyEvent(credentialID: credential.id, on: db) {
                switch last {
                case .keyInvalid: before = .invalid
                case .keyQuotaExceeded: before = .quotaExceeded
                default: break
                }
            }
            guard let kind = EventKind.transition(from: before, to: status) else { return (credential, nil) }
            let event = try await self.recordKeyEvent(kind, credential, data: [
                "status": status.rawValue, "previous_status": previous.rawValue, "message": message ?? "",
            ], on: db)
            return (credential, event)
        }
    }

    /// Records an event about a key, with its deliveries, in the caller's transaction: what every key event says (which
    /// key, masked, of which provider and scope), and `data`.
    func recordKeyEvent(_ kind: EventKind, _ credential: Credential, data: [String: String], on db: any SQLDatabase) async throws -> Event {
        let provider = store.catalog.provider(credential.providerID)
        let common = [
            "credential_id": credential.id, "description": credential.description, "key_hint": credential.hint,
            "provider": credential.providerID, "provider_name": provider?.displayName ?? credential.providerID,
            "scope": credential.scope.workspaceID == nil ? "platform" : "workspace",
        ]
        return try await events.record(
            kind, workspaceID: credential.scope.workspaceID, credentialID: credential.id, providerID: credential.providerID,
            data: common.merging(data) { $1 },
            emailTargets: try await emailTargets(workspaceID: credential.scope.workspaceID, on: db), on: db
        )
    }

    /// Records that a workspace's calls to a provider moved from its own keys to the platform's (or the
    /// managed default): one `fallback.engaged` event with its deliveries, unless the move was already recorded
    /// (by another instance) and not released since; then `nil`.
    @discardableResult
    public func recordFallback(workspaceID: String, providerID: String, source: KeySource, credentialID: String?, reason: String) async throws -> Event? {
        try await store.engine.transaction(changesState: false) { db -> Event? in
            // Under the write lock: of several instances moving at once, one inserts the row and raises the event.
            guard try await self.events.engageFallback(workspaceID: workspaceID, providerID: providerID, on: db) else { return nil }
            let provider = self.store.catalog.provider(providerID)
            var data = [
                "workspace_id": workspaceID, "provider": providerID, "provider_name": provider?.displayName ?? providerID,
                "source": source.rawValue, "reason": reason,
            ]
            if let credentialID { data["credential_id"] = credentialID }
            return try await self.events.record(
                .fallbackEngaged, workspaceID: workspaceID, credentialID: credentialID, providerID: providerID,
                data: data,
                emailTargets: try await self.emailTargets(workspaceID: workspaceID, on: db), on: db
            )
        }
    }

    /// The workspace's own key serves the provider again: the next move away raises `fallback.engaged` again.
    public func releaseFallback(workspaceID: String, providerID: String) async throws {
        try await store.engine.transaction(changesState: false) { db in
            try await self.events.releaseFallback(workspaceID: workspaceID, providerID: providerID, on: db)
        }
    }
}
