import Foundation
import Hummingbird
import KeywardenApp
import KeywardenCore
import KeywardenProviders
import KeywardenStore

/// The guided rotation of a key under its stable id, for a workspace's keys (`…/keys/{key}/rotation`) and the
/// platform's card keys (`/platform/providers/{provider}/rotation`): stage (POST), test, promote, finish, cancel (DELETE).
struct KeyRotationController {
    let app: AppServices
    let verification: KeyVerificationService

    func addWorkspaceRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        addRoutes(to: group, target: { context in
            .workspace(workspaceID: try context.parameters.require("workspace"), keyID: try context.parameters.require("key"))
        }, answer: { reference in
            guard case .workspace(let workspaceID, let keyID) = reference else { throw KeywardenError.notFound("key") }
            return .workspaceKey(KeyBody(try await app.keys.get(workspaceID: workspaceID, keyID: keyID)))
        })
    }

    func addPlatformRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        addRoutes(to: group, target: { context in
            try context.requirePrincipal().authorizePlatform()
            let providerID = try context.parameters.require("provider")
            guard app.catalog.contains(providerID) else { throw KeywardenError.notFound("provider") }
            return .platform(providerID: providerID)
        }, answer: { reference in
            guard case .platform(let providerID) = reference else { throw KeywardenError.notFound("provider") }
            return .platformCard(PlatformCardBody(try await app.platformCards.card(providerID)))
        })
    }

    /// The key as its own API shows it: a workspace key, or the platform card.
    enum KeyAnswer: Encodable {
        case workspaceKey(KeyBody)
        case platformCard(PlatformCardBody)

        var itemKey: String {
            switch self {
            case .workspaceKey: "key"
            case .platformCard: "card"
            }
        }

        func encode(to encoder: any Encoder) throws {
            switch self {
            case .workspaceKey(let body): try body.encode(to: encoder)
            case .platformCard(let body): try body.encode(to: encoder)
            }
        }
    }

    func addRoutes(
        to group: RouterGroup<KeywardenRequestContext>,
        target: @escaping @Sendable (KeywardenRequestContext) throws -> KeyRotationService.Reference,
        answer: @escaping @Sendable (KeyRotationService.Reference) async throws -> KeyAnswer
    ) {
        let rotation = app.keyRotation
        let verification = self.verification
        @Sendable func reply(_ message: String, _ reference: KeyRotationService.Reference, status: HTTPResponse.Status = .ok,
                             verification result: VerificationResult? = nil) async throws -> Response {
            let item = try await answer(reference)
            return try JSONResponse.make(SavedAndVerifiedBody(message: message, item: item, itemKey: item.itemKey,
                                                              verification: result.map(VerificationBody.init)), status: status)
        }
        group.post("rotation") { request, context -> Response in
            let reference = try target(context)
            let principal = try context.requirePrincipal()
            try reference.authorize(principal, .keysUpdate)
            _ = try await request.decodeBody(StageBody.self, context: context).stage(reference, in: rotation, principal: principal)
            return try await reply("New key staged; test it, then promote it.", reference, status: .created)
        }
        group.post("rotation/test") { _, context -> Response in
            let reference = try target(context)
            let (result, _) = try await verification.testStaged(reference, principal: try context.requirePrincipal())
            return try await reply(result.status == .valid ? "The new key works; promote it when ready." : "The new key did not pass its test.",
                                   reference, verification: result)
        }
        group.post("rotation/promote") { request, context -> Response in
            let reference = try target(context)
            let principal = try context.requirePrincipal()
            try reference.authorize(principal, .keysUpdate)
            let body = try await request.decodeOptionalBody(PromoteBody.self, context: context)
            let key = try await rotation.promote(reference, graceHours: body?.graceHours, force: body?.force ?? false, principal: principal)
            let message = key.lifecycle.previous.map { "New key promoted; the old key serves as its fallback until \(Timestamp.string($0.until))." }
                ?? "New key promoted; the old key is removed."
            return try await reply(message, reference)
        }
        group.post("rotation/finish") { _, context -> Response in
            let reference = try target(context)
            _ = try await rotation.finish(reference, principal: try context.requirePrincipal())
            return try await reply("Rotation finished; the old key is removed.", reference)
        }
        group.delete("rotation") { _, context -> Response in
            let reference = try target(context)
            _ = try await rotation.cancel(reference, principal: try context.requirePrincipal())
            return try await reply("Staged key discarded; the current key keeps serving.", reference)
        }
    }

    struct StageBody: RequestBody {
        static let fields: Set<String> = ["api_key"]
        let apiKey: Secret?

        enum CodingKeys: String, CodingKey {
            case apiKey = "api_key"
        }

        /// Stages the new key it carries.
        func stage(_ reference: KeyRotationService.Reference, in rotation: KeyRotationService, principal: Principal) async throws -> Credential {
            guard let apiKey else { throw KeywardenError.missing("api_key", "api_key is required: the new key to rotate to.") }
            return try await rotation.stage(reference, key: apiKey, principal: principal)
        }
    }

    struct PromoteBody: RequestBody {
        static let fields: Set<String> = ["grace_hours", "force"]
        let graceHours: Int?
        let force: Bool?

        enum CodingKeys: String, CodingKey {
            case force
            case graceHours = "grace_hours"
        }
    }
}

/// Reading a key's lifecycle fields from a request body, a form or the command line.
public enum LifecycleInput {
    /// `expires_at` as a day (`2027-03-01`, midnight UTC) or an RFC 3339 time; `null` clears it.
    static func expiresAt(_ patch: Patch<String>) throws -> Date?? {
        try patch.change.map { text in try text.map(date) }
    }

    /// A day or an RFC 3339 time on the calendar, written in the years 2000 to 2099 (what the document's pattern says).
    public static func date(_ text: String) throws -> Date {
        guard text.hasPrefix("20"), let date = RFC3339.date(text) else {
            throw KeywardenError.invalid("expires_at", "expires_at is a day (2027-03-01) or an RFC 3339 time, in the years 2000 to 2099.")
        }
        return date
    }
}
