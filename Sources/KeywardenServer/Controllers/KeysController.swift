import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenProviders
import KeywardenStore

/// A workspace's own keys: list (search, category, provider, sort, pages), create, read, update
/// (leave-blank-to-keep), delete, activate, deactivate. ``KeyService`` authorizes the caller (the pages call it too); this decodes and encodes.
struct KeysController {
    let app: AppServices
    let verification: KeyVerificationService

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.get { request, context -> Response in
            let id = try context.parameters.require("workspace")
            let pagination = try Pagination(
                page: try request.queryInt("page", code: "invalid_pagination"),
                perPage: try request.queryInt("per_page", code: "invalid_pagination")
            )
            let query = try listQuery(request, pagination: pagination)
            let (items, total) = try await app.keys.list(workspaceID: id, query: query, principal: try context.requirePrincipal())
            return try JSONResponse.make(PageBody(items: items.map(KeyBody.init), total: total, page: pagination.page, perPage: pagination.perPage))
        }
        group.post { request, context -> Response in
            let id = try context.parameters.require("workspace")
            let principal = try context.requirePrincipal()
            // Asking for a test needs keys.test: refused before anything is saved.
            if try request.queryBool("verify") { try principal.authorize(.keysTest, inWorkspace: id) }
            let body = try await request.decodeBody(CreateBody.self, context: context)
            let details = try await app.keys.create(workspaceID: id, try body.request(), switchExclusive: try request.queryBool("switch"), principal: principal)
            let (saved, result) = try await verifyIfAsked(request, details, workspaceID: id, principal: principal)
            return try JSONResponse.make(SavedAndVerifiedBody(
                message: "API key created successfully", item: KeyBody(saved), itemKey: "key", verification: result.map(VerificationBody.init)
            ), status: .created)
        }
        group.get(":key") { _, context -> Response in
            let id = try context.parameters.require("workspace")
            let details = try await app.keys.get(workspaceID: id, keyID: try context.parameters.require("key"), principal: try context.requirePrincipal())
            return try JSONResponse.make(KeyBody(details))
        }
        group.patch(":key") { request, context -> Response in
            let id = try context.parameters.require("workspace")
            let principal = try context.requirePrincipal()
            if try request.queryBool("verify") { try principal.authorize(.keysTest, inWorkspace: id) }
            let body = try await request.decodeBody(UpdateBody.self, context: context)
            let details = try await app.keys.update(workspaceID: id, keyID: try context.parameters.require("key"), try body.changes(),
                                                    switchExclusive: try request.queryBool("switch"), principal: principal)
            let (saved, result) = try await verifyIfAsked(request, details, workspaceID: id, principal: principal)
            return try JSONResponse.make(SavedAndVerifiedBody(
                message: "API key updated successfully", item: KeyBody(saved), itemKey: "key", verification: result.map(VerificationBody.init)
            ))
        }
        group.delete(":key") { _, context -> Response in
            let id = try context.parameters.require("workspace")
            try await app.keys.delete(workspaceID: id, keyID: try context.parameters.require("key"), principal: try context.requirePrincipal())
            return try JSONResponse.make(MessageOnlyBody(message: "API key deleted successfully"))
        }
        group.post(":key/activate") { request, context -> Response in
            let id = try context.parameters.require("workspace")
            let details = try await app.keys.activate(
                workspaceID: id, keyID: try context.parameters.require("key"),
                switchExclusive: try request.queryBool("switch"), principal: try context.requirePrincipal()
            )
            return try JSONResponse.make(MessageBody(message: "API key activated", item: KeyBody(details), itemKey: "key"))
        }
        group.post(":key/test") { _, context -> Response in
            let id = try context.parameters.require("workspace")
            let result = try await verification.testWorkspaceKey(workspaceID: id, keyID: try context.parameters.require("key"), principal: try context.requirePrincipal())
            return try JSONResponse.make(VerificationBody(result))
        }
        group.post(":key/deactivate") { _, context -> Response in
            let id = try context.parameters.require("workspace")
            let details = try await app.keys.deactivate(workspaceID: id, keyID: try context.parameters.require("key"), principal: try context.requirePrincipal())
            return try JSONResponse.make(MessageBody(message: "API key deactivated", item: KeyBody(details), itemKey: "key"))
        }
    }

    /// With `?verify=true`, tests the saved key; the key stays saved whatever the outcome, turned off when the vendor
    /// refuses it (``KeyVerificationService/verifySaved(workspaceID:keyID:actor:)``).
    func verifyIfAsked(_ request: Request, _ details: KeyDetails, workspaceID: String, principal: Principal) async throws -> (KeyDetails, VerificationResult?) {
        guard try request.queryBool("verify"), details.provider?.verification.available == true, details.hasKey || details.provider?.requiresKey == false else {
            return (details, nil)
        }
        let (result, _) = try await verification.verifySaved(workspaceID: workspaceID, keyID: details.credential.id, principal: principal)
        return (try await app.keys.get(workspaceID: workspaceID, keyID: details.credential.id), result)
    }

    func listQuery(_ request: Request, pagination: Pagination) throws -> CredentialQuery {
        var providerIDs: [String]?
        if let categoryText = request.queryText("category"), categoryText != "all" {
            guard let category = ProviderCategory(rawValue: categoryText) else {
                throw KeywardenError.invalid("category", "category must be one of all, \(ProviderCategory.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            providerIDs = app.catalog.providers(in: category).map(\.id)
        }
        if let provider = request.queryText("provider") {
            guard app.catalog.contains(provider) else { throw KeywardenError.unknownProvider(provider) }
            providerIDs = (providerIDs ?? [provider]).filter { $0 == provider }
        }
        let sort = try request.queryText("sort").map { text in
            guard let sort = CredentialSort(rawValue: text) else {
                throw KeywardenError.invalid("sort", "sort must be one of \(CredentialSort.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            return sort
        } ?? .createdAt
        let order = request.queryText("order") ?? "asc"
        guard order == "asc" || order == "desc" else { throw KeywardenError.invalid("order", "order must be asc or desc.") }
        let search = request.queryText("search")
        if let search, search.unicodeScalars.count > 200 { throw KeywardenError.invalid("search", "search is longer than 200 characters.") }
        return CredentialQuery(
            search: search, providerIDs: providerIDs, sort: sort, descending: order == "desc",
            page: pagination.page, perPage: pagination.perPage
        )
    }

    static func role(_ text: String) throws -> CredentialRole {
        guard let role = CredentialRole(rawValue: text) else {
            throw KeywardenError.invalid("role", "role must be one of primary, fallback, pool.")
        }
        return role
    }

    struct CreateBody: RequestBody {
        static let fields: Set<String> = ["provider", "description", "api_key", "extras", "default_model", "role", "weight", "active",
                                          "expires_at", "rotate_by_days"]
        let provider: String?
        let expiresAt: String?
        let rotateByDays: Int?
        let description: String?
        let apiKey: Secret?
        let extras: [String: Secret]?
        let defaultModel: String?
        let role: String?
        let weight: Int?
        let active: Bool?

        enum CodingKeys: String, CodingKey {
            case provider, description, extras, role, weight, active
            case apiKey = "api_key"
            case defaultModel = "default_model"
            case expiresAt = "expires_at"
            case rotateByDays = "rotate_by_days"
        }

        /// The key it describes.
        func request() throws -> NewKeyRequest {
            guard let provider, !provider.isEmpty else { throw KeywardenError.missing("provider") }
            guard let description else { throw KeywardenError.missing("description") }
            return NewKeyRequest(
                providerID: provider, description: description, apiKey: apiKey, extras: extras ?? [:], defaultModel: defaultModel,
                role: try role.map(KeysController.role), weight: weight, active: active,
                expiresAt: try expiresAt.map(LifecycleInput.date), rotateByDays: rotateByDays
            )
        }
    }

    struct UpdateBody: RequestBody {
        static let fields: Set<String> = ["description", "api_key", "extras", "clear_extras", "default_model", "role", "weight", "active",
                                          "expires_at", "rotate_by_days"]
        static let nullableFields: Set<String> = ["default_model", "expires_at", "rotate_by_days"]
        let expiresAt: Patch<String>
        let rotateByDays: Patch<Int>
        let description: String?
        let apiKey: Secret?
        let extras: [String: Secret]?
        let clearExtras: [String]?
        let defaultModel: Patch<String>
        let role: String?
        let weight: Int?
        let active: Bool?

        enum CodingKeys: String, CodingKey {
            case description, extras, role, weight, active
            case apiKey = "api_key"
            case clearExtras = "clear_extras"
            case defaultModel = "default_model"
            case expiresAt = "expires_at"
            case rotateByDays = "rotate_by_days"
        }

        /// The changes it asks for (a field left out keeps its value; `null` clears it).
        func changes() throws -> CredentialChanges {
            CredentialChanges(
                description: description, apiKey: apiKey, extras: extras ?? [:], clearExtras: clearExtras ?? [],
                defaultModel: defaultModel.change, role: try role.map(KeysController.role), weight: weight, active: active,
                expiresAt: try LifecycleInput.expiresAt(expiresAt), rotateByDays: rotateByDays.change
            )
        }
    }
}
