import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenGateway
import KeywardenProviders
import KeywardenStore
import KeywardenVault
import HTTPTypes
import NIOCore

/// The admin UI: server-rendered pages over the same services as the API.
///
/// Sessions come from signing in with a token (cookie `kw_session`: HttpOnly, SameSite=Strict, Secure
/// over TLS, eight hours); every form carries the session's `csrf_token`, and a POST without the right
/// one is refused. Pages never contain a secret: keys are shown as their masked hint.
struct PagesController {
    let app: AppServices
    let verification: KeyVerificationService
    let keys: KeysController
    /// The gateway's rests (this instance's), shown on the key chain page.
    var cooldowns: Cooldowns? = nil
    /// Sign-in attempts per client address.
    let signInLimiter: RateLimiter
    /// Test notifications per scope (shared with the API's `…/webhooks/test`).
    var testLimiter: RateLimiter? = nil
    /// The platform budget of a workspace without its own (`KEYWARDEN_DEFAULT_BUDGET_CREDITS`).
    var defaultPlatformBudget: Int? = nil

    static let sessionCookie = "kw_session"
    static let loginCookie = "kw_login_csrf"
    static let savedPlaceholder = "•••••••••• (saved — leave blank to keep)"

    /// Paths the pages own (kept apart from the API's in the OpenAPI check).
    static func isPage(_ path: String) -> Bool {
        path == "/" || path == "/workspaces" || ["/login", "/logout", "/platform/providers", "/platform/routes", "/platform/requests", "/platform/notifications", "/platform/plans", "/workspaces/", "/audit", "/assets/"].contains { path.hasPrefix($0) }
    }

    func addRoutes(to router: Router<KeywardenRequestContext>) {
        addSignInRoutes(to: router)
        addProviderRoutes(to: router)
        addCardRotationRoutes(to: router)
        addKeyRoutes(to: router)
        addWorkspaceRoutes(to: router)
        addPlatformFallbackRoutes(to: router)
        addMemberRoutes(to: router)
        addByokRoutes(to: router)
        addSettingsRoutes(to: router)
        addUsageRoutes(to: router)
        addAuditRoutes(to: router)
        addRoutePages(to: router)
        addRequestLogRoutes(to: router)
        addChainRoutes(to: router)
        addCustodyRoutes(to: router)
    }

    // MARK: Helpers

    /// Runs a page for a signed-in session; no session → the sign-in page; an error → a page that says it.
    func page(_ request: Request, _ body: (WebSession) async throws -> Response) async throws -> Response {
        guard let session = try await session(request) else { return WebResponse.redirect("/login") }
        do {
            var response = try await body(session)
            // A one-time message is shown by the page it is for, then gone (a reload shows it no more).
            if request.method == .get, let cookie = WebResponse.cookieValue(WebFlash.cookieName, in: request),
               await app.sessions.openFlash(cookie, for: session, path: request.uri.path) != nil {
                response.headers.append(HTTPField(name: .setCookie, value: WebResponse.cookie(WebFlash.cookieName, "", maxAge: 0, secure: WebResponse.isSecure(request))))
            }
            return response
        } catch let error as VaultError where error.isCustodyUnavailable {
            // A customer's key revoked, or the master key's device away: said on a page, not answered as JSON.
            let said = error.isCustomerKeyRevoked
                ? KeywardenError(.forbidden, code: error.code, message: "This workspace's keys are sealed under its own KMS key, and access to that key has been revoked by the customer; nothing was changed.")
                : KeywardenError(.conflict, code: error.code, message: "The key that opens these secrets cannot be reached right now; nothing was changed. Try again shortly.")
            let content = ErrorPage(said)
            let chrome = try await chrome(session, title: content.heading, nav: "", workspaceID: session.principal.workspaceID, error: said.message)
            return WebResponse.page("error", PageView(chrome: chrome, content: content), status: error.isCustomerKeyRevoked ? .forbidden : .serviceUnavailable)
        } catch let error as KeywardenError {
            let status = APIError(error).status
            let content = ErrorPage(error)
            let chrome = try await chrome(session, title: content.heading, nav: "", workspaceID: session.principal.workspaceID, error: error.message)
            return WebResponse.page("error", PageView(chrome: chrome, content: content), status: status)
        }
    }

    func session(_ request: Request) async throws -> WebSession? {
        guard let cookie = WebResponse.cookieValue(Self.sessionCookie, in: request) else { return nil }
        return try await app.sessions.session(cookie: cookie)
    }

    func home(_ principal: Principal) -> String {
        if principal.isPlatformAdmin { return "/platform/providers" }
        if let workspace = principal.workspaceID { return "/workspaces/\(workspace)/keys" }
        return "/audit"
    }

    /// The error page: a heading that says what kind of trouble it is, and what to do; the message is the chrome's.
    struct ErrorPage: Encodable {
        let heading: String
        let advice: String

        init(_ error: KeywardenError) {
            if error.code == "customer_key_revoked" {
                heading = "Key access revoked by the customer"
                advice = "Restore Keywarden's access to the workspace's KMS key (enable the key, or grant it again in the key's policy); its keys open again within seconds."
                return
            }
            switch error.kind {
            case .forbidden:
                heading = "You do not have permission for this"
                advice = "Your sign-in token's role or permissions do not include this action. Ask the workspace's owner or the platform admin to grant it."
            case .notFound:
                heading = "Not found"
                advice = "It may have been deleted, or it belongs to a workspace you cannot see."
            case .invalid, .unprocessable:
                heading = "That did not work"
                advice = "Go back, correct what the message names, and try again."
            default:
                heading = "Something went wrong"
                advice = "Try again in a moment; nothing was changed."
            }
        }
    }

    /// One entry of a Default model list; a separator before the legacy models.
    struct ModelOption: Encodable {
        let value: String
        let label: String
        let selected: Bool
        let separator: Bool
    }

    static func modelOptions(_ provider: ProviderDefinition, selected: String?) -> [ModelOption] {
        var options = provider.models.filter { !$0.legacy }.map { ModelOption(value: $0.id, label: $0.label, selected: $0.id == selected, separator: false) }
        let legacy = provider.models.filter(\.legacy)
        if !legacy.isEmpty {
            options.append(ModelOption(value: "", label: "── Legacy ──", selected: false, separator: true))
            options += legacy.map { ModelOption(value: $0.id, label: $0.label + " (legacy)", selected: $0.id == selected, separator: false) }
        }
        if let selected, provider.isCustomModel(selected) {
            options.append(ModelOption(value: selected, label: "\(selected) (custom)", selected: true, separator: false))
        }
        return options
    }

    static func noticeText(_ code: String, provider: String) -> String {
        switch code {
        case "saved": return "\(provider) settings saved."
        case "activated": return "\(provider) activated."
        case "deactivated": return "\(provider) deactivated."
        case "key_removed": return "\(provider)'s key removed; the card is inactive."
        case "created": return "API key created."
        case "updated": return "API key updated."
        case "deleted": return "API key deleted."
        default: return "Done."
        }
    }

    static func badge(_ card: PlatformCard) -> String {
        guard card.hasKey else { return card.state.active ? "Active · no key" : "No key" }
        let status = card.status.rawValue.replacingOccurrences(of: "_", with: " ")
        return (card.state.active ? "Active" : "Inactive") + " · " + status
    }

    static func badgeClass(_ status: VerificationStatus?) -> String {
        switch status {
        case .valid?: return "ok"
        case .invalid?, .quotaExceeded?, .unreadable?, .noPermission?: return "bad"
        case .rateLimited?, .unreachable?, .modelNotFound?: return "warn"
        default: return ""
        }
    }

    static func categoryLabel(_ value: String) -> String {
        ["llm": "LLM", "voice": "Voice", "image": "Image", "search": "Search", "translate": "Translate", "other": "Other"][value] ?? value
    }

    static func queryEscape(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }
}

/// Whether a route path belongs to the admin pages rather than the API (the OpenAPI document covers the API only).
public func isAdminPagePath(_ path: String) -> Bool { PagesController.isPage(path) }
