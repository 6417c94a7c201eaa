import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenStore

/// `GET/PUT /api/v1/platform/smtp`: how Keywarden sends e-mail (platform admin). The password is
/// sealed, never shown, and leave-blank-to-keep.
struct NotificationSettingsController {
    let app: AppServices

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.get("smtp") { _, context -> Response in
            guard let (settings, hasPassword) = try await app.notifications.smtp(principal: try context.requirePrincipal()) else {
                return try JSONResponse.make(["configured": false])
            }
            return try JSONResponse.make(SMTPBody(settings, hasPassword: hasPassword))
        }
        group.put("smtp") { request, context -> Response in
            let principal = try context.requirePrincipal()
            try principal.authorizePlatform()
            let body = try await request.decodeBody(SaveBody.self, context: context)
            let settings = try body.settings()
            try await app.notifications.saveSMTP(settings, password: body.password, principal: principal)
            let (saved, hasPassword) = try await app.notifications.smtp() ?? (settings, false)
            return try JSONResponse.make(MessageBody(message: "E-mail settings saved.", item: SMTPBody(saved, hasPassword: hasPassword), itemKey: "smtp"))
        }
    }

    struct SaveBody: RequestBody {
        static let fields: Set<String> = ["host", "port", "security", "username", "password", "from", "platform_address"]
        let host: String?
        let port: Int?
        let security: String?
        let username: String?
        let password: Secret?
        let from: String?
        let platformAddress: String?

        enum CodingKeys: String, CodingKey {
            case host, port, security, username, password, from
            case platformAddress = "platform_address"
        }

        /// The settings it describes: STARTTLS unless said, on that security's usual port unless said.
        func settings() throws -> SMTPSettings {
            guard let host else { throw KeywardenError.missing("host") }
            guard let from else { throw KeywardenError.missing("from") }
            let security = try security.map { text in
                guard let security = SMTPSettings.Security(rawValue: text) else {
                    throw KeywardenError.invalid("security", "security must be one of starttls, tls, none.")
                }
                return security
            } ?? .starttls
            if let port, !(1...65_535).contains(port) { throw KeywardenError.invalid("port", "port is a number from 1 to 65535.") }
            return SMTPSettings(host: host, port: port ?? (security == .tls ? 465 : 587), security: security,
                                username: username, from: from, platformAddress: platformAddress)
        }
    }

    struct SMTPBody: Encodable {
        let configured = true
        let host: String
        let port: Int
        let security: String
        let username: String?
        let hasPassword: Bool
        let from: String
        let platformAddress: String?

        init(_ s: SMTPSettings, hasPassword: Bool) {
            host = s.host
            port = s.port
            security = s.security.rawValue
            username = s.username
            self.hasPassword = hasPassword
            from = s.from
            platformAddress = s.platformAddress
        }
    }
}

/// `GET /api/v1/events?workspace=&kind=`: recent events (platform admin: all; a workspace: its own, with audit.read).
struct EventsController {
    let app: AppServices

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.get { request, context -> Response in
            let kind = try request.queryText("kind").map { text in
                guard let kind = EventKind(rawValue: text) else { throw KeywardenError.invalid("kind", "Unknown event kind '\(text)'.") }
                return kind
            }
            let events = try await app.notifications.events(workspaceID: request.queryText("workspace"), kind: kind, principal: try context.requirePrincipal())
            return try JSONResponse.make(["items": events.map(EventBody.init)])
        }
    }

    struct EventBody: Encodable {
        let id: String
        let kind: String
        let workspaceID: String?
        let credentialID: String?
        let providerID: String?
        let data: [String: String]
        let createdAt: String

        init(_ e: Event) {
            id = e.id
            kind = e.kind.rawValue
            workspaceID = e.workspaceID
            credentialID = e.credentialID
            providerID = e.providerID
            data = (try? JSONDecoder().decode([String: String].self, from: Data(e.payload.utf8))) ?? [:]
            createdAt = e.createdAt
        }
    }
}
