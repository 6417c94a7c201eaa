import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenStore
import KeywardenVault

/// Authenticates `Authorization: Bearer kw_…` against the stored token digests and puts the
/// principal in the context. A missing or unknown token is 401; the token never reaches a log.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = KeywardenRequestContext
    let app: AppServices

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let presented = Self.bearerToken(request) else {
            throw KeywardenError(.unauthenticated, code: "unauthorized", message: "Send a Keywarden token: Authorization: Bearer kw_…")
        }
        guard AccessToken.looksLikeToken(presented), let principal = try await app.authenticate(presented: presented) else {
            throw KeywardenError(.unauthenticated, code: "invalid_token", message: "The token is not valid or was revoked.")
        }
        var context = context
        context.principal = principal
        context.logger[metadataKey: "token"] = "\(principal.tokenID)"
        return try await next(request, context)
    }

    static func bearerToken(_ request: Request) -> String? {
        request.headers[.authorization].flatMap(bearerToken(fromHeader:))
    }

    /// The token of an `Authorization: Bearer <token>` value.
    static func bearerToken(fromHeader header: String) -> String? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingSpacesAndTabs
        return token.isEmpty ? nil : token
    }
}
