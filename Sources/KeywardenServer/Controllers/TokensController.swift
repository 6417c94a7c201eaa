import Hummingbird
import KeywardenCore
import KeywardenVault
import KeywardenApp
import KeywardenStore

/// Service tokens, bound to a workspace or to the platform: created (shown once, carrying only permissions their creator
/// holds), listed by name and prefix, revoked at once.
struct TokensController {
    let app: AppServices

    func addWorkspaceRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.post { request, context -> Response in
            let id = try context.parameters.require("workspace")
            return try await create(request, context: context, workspaceID: id, principal: try context.requirePrincipal())
        }
        group.get { _, context -> Response in
            let id = try context.parameters.require("workspace")
            return try JSONResponse.make(["items": try await app.workspaceService.listTokens(workspaceID: id, principal: try context.requirePrincipal()).map(TokenBody.init)])
        }
        group.delete(":token") { _, context -> Response in
            let id = try context.parameters.require("workspace")
            try await app.workspaceService.revokeToken(workspaceID: id, tokenID: try context.parameters.require("token"), principal: try context.requirePrincipal())
            return try JSONResponse.make(MessageOnlyBody(message: "Token revoked."))
        }
    }

    func addPlatformRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.post { request, context -> Response in
            return try await create(request, context: context, workspaceID: nil, principal: try context.requirePrincipal())
        }
        group.get { _, context -> Response in
            return try JSONResponse.make(["items": try await app.workspaceService.listTokens(workspaceID: nil, principal: try context.requirePrincipal()).map(TokenBody.init)])
        }
        group.delete(":token") { _, context -> Response in
            try await app.workspaceService.revokeToken(workspaceID: nil, tokenID: try context.parameters.require("token"), principal: try context.requirePrincipal())
            return try JSONResponse.make(MessageOnlyBody(message: "Token revoked."))
        }
    }

    func create(_ request: Request, context: KeywardenRequestContext, workspaceID: String?, principal: Principal) async throws -> Response {
        let (record, token) = try await request.decodeBody(CreateBody.self, context: context)
            .create(in: app.workspaceService, workspaceID: workspaceID, principal: principal)
        return try JSONResponse.make(CreatedBody(token: TokenBody(record), value: token.value), status: .created)
    }

    struct CreateBody: RequestBody {
        static let fields: Set<String> = ["name", "kind", "permissions"]
        let name: String?
        let kind: String?
        let permissions: [String]?

        /// Issues the service token it describes, carrying only permissions the principal holds.
        func create(in service: WorkspaceService, workspaceID: String?, principal: Principal) async throws -> (TokenRecord, AccessToken) {
            guard let name else { throw KeywardenError.missing("name") }
            if let kind, kind != TokenKind.service.rawValue {
                throw KeywardenError.invalid("kind", "Only service tokens are created here; add a member for a person's token.")
            }
            var granted: [Permission] = []
            for text in permissions ?? [] {
                guard let permission = Permission(rawValue: text) else {
                    throw KeywardenError.invalid("permissions", "Unknown permission '\(text)'.")
                }
                granted.append(permission)
            }
            return try await service.createServiceToken(workspaceID: workspaceID, name: name, permissions: granted, principal: principal)
        }
    }

    struct CreatedBody: Encodable {
        let token: TokenBody
        /// The token itself, shown once.
        let value: String
    }
}
