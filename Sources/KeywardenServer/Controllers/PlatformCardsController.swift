import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenProviders
import KeywardenStore

/// The platform's provider cards (platform admins): list with the stats strip, save, activate, deactivate.
struct PlatformCardsController {
    let app: AppServices
    let verification: KeyVerificationService

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.get { _, context -> Response in
            let (cards, stats) = try await app.platformCards.cards(principal: try context.requirePrincipal())
            return try JSONResponse.make(CardsBody(providers: cards.map(PlatformCardBody.init), stats: stats))
        }
        group.put(":provider") { request, context -> Response in
            let principal = try context.requirePrincipal()
            try principal.authorizePlatform()
            let providerID = try context.parameters.require("provider")
            guard app.catalog.contains(providerID) else { throw KeywardenError.notFound("provider") }
            let body = try await request.decodeBody(SaveCardBody.self, context: context)
            let verify = try request.queryBool("verify")
            var card = try await app.platformCards.save(providerID, try body.update(), principal: principal)
            // The saved card is kept whatever the verification finds; its status records the outcome.
            var result: VerificationResult?
            if verify, card.credential != nil, card.provider.verification.available {
                result = try await verification.testPlatformCard(providerID, actor: principal.actor)
                card = try await app.platformCards.card(providerID)
            }
            return try JSONResponse.make(SavedAndVerifiedBody(
                message: "\(card.provider.displayName) settings saved.", item: PlatformCardBody(card), itemKey: "card",
                verification: result.map(VerificationBody.init)
            ))
        }
        group.post(":provider/activate") { _, context -> Response in
            let card = try await app.platformCards.activate(try context.parameters.require("provider"), principal: try context.requirePrincipal())
            return try JSONResponse.make(MessageBody(message: "\(card.provider.displayName) activated.", item: PlatformCardBody(card), itemKey: "card"))
        }
        group.post(":provider/test") { _, context -> Response in
            let result = try await verification.testPlatformCard(try context.parameters.require("provider"), principal: try context.requirePrincipal())
            return try JSONResponse.make(VerificationBody(result))
        }
        group.delete(":provider/key") { _, context -> Response in
            let card = try await app.platformCards.removeKey(try context.parameters.require("provider"), principal: try context.requirePrincipal())
            return try JSONResponse.make(MessageBody(message: "\(card.provider.displayName)'s key removed; the card is inactive.", item: PlatformCardBody(card), itemKey: "card"))
        }
        group.post(":provider/deactivate") { _, context -> Response in
            let card = try await app.platformCards.deactivate(try context.parameters.require("provider"), principal: try context.requirePrincipal())
            return try JSONResponse.make(MessageBody(message: "\(card.provider.displayName) deactivated.", item: PlatformCardBody(card), itemKey: "card"))
        }
    }

    struct CardsBody: Encodable {
        let providers: [PlatformCardBody]
        let stats: PlatformCardStats
    }

    struct SaveCardBody: RequestBody {
        static let fields: Set<String> = ["api_key", "extras", "clear_extras", "default_model", "display_order", "expires_at", "rotate_by_days"]
        static let nullableFields: Set<String> = ["expires_at", "rotate_by_days"]
        let apiKey: Secret?
        let expiresAt: Patch<String>
        let rotateByDays: Patch<Int>
        let extras: [String: Secret]?
        let clearExtras: [String]?
        let defaultModel: String?
        let displayOrder: Int?

        enum CodingKeys: String, CodingKey {
            case extras
            case apiKey = "api_key"
            case clearExtras = "clear_extras"
            case defaultModel = "default_model"
            case displayOrder = "display_order"
            case expiresAt = "expires_at"
            case rotateByDays = "rotate_by_days"
        }

        /// The card's changes it asks for (a field left out keeps its value).
        func update() throws -> PlatformCardUpdate {
            PlatformCardUpdate(apiKey: apiKey, extras: extras ?? [:], clearExtras: clearExtras ?? [], defaultModel: defaultModel,
                               displayOrder: displayOrder, expiresAt: try LifecycleInput.expiresAt(expiresAt), rotateByDays: rotateByDays.change)
        }
    }
}
