import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenProviders
import KeywardenStore
import KeywardenVault
import NIOCore

/// Signing in and out, and the pages' static assets.
extension PagesController {
    /// The sign-in page (no chrome: nobody is signed in yet).
    struct SignInPage: Encodable {
        let title = "Sign in"
        let csrf: String
        var error: String?
    }

    func addSignInRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("/") { request, _ in
            guard let session = try await session(request) else { return WebResponse.redirect("/login") }
            return WebResponse.redirect(home(session.principal))
        }
        router.get("assets/:file") { _, context -> Response in
            let file = try context.parameters.require("file")
            let types = ["app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8", "favicon.svg": "image/svg+xml"]
            guard let type = types[file], let data = ServerResources.data("web/assets/\(file)") else { throw KeywardenError.notFound("asset") }
            return Response(status: .ok, headers: [.contentType: type, .cacheControl: "public, max-age=300", .init("X-Content-Type-Options")!: "nosniff"],
                            body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.get("login") { request, _ in
            if let session = try await session(request) { return WebResponse.redirect(home(session.principal)) }
            let csrf = AccessToken.generate().value
            return WebResponse.signIn(SignInPage(csrf: csrf),
                                    cookies: [WebResponse.cookie(Self.loginCookie, csrf, maxAge: 1800, secure: WebResponse.isSecure(request))])
        }
        router.post("login") { request, context in
            // Before a session exists the form is checked against a cookie set with it (double submit).
            let expected = WebResponse.cookieValue(Self.loginCookie, in: request) ?? ""
            let form = try await WebForm.read(request, context: context, csrf: expected.isEmpty ? UUID().uuidString : expected)
            guard let token = form.text("token"), let (cookie, session) = try await app.sessions.signIn(presented: token) else {
                let csrf = AccessToken.generate().value
                let cookies = [WebResponse.cookie(Self.loginCookie, csrf, maxAge: 1800, secure: WebResponse.isSecure(request))]
                // Failed attempts are counted per client: a valid token always signs in (a neighbour behind the same
                // proxy cannot lock anyone out), and guessing is answered 429 past the limit.
                if let wait = signInLimiter.acquire(context.clientAddress ?? "unknown") {
                    var response = WebResponse.signIn(SignInPage(csrf: csrf, error: "Too many failed sign-in attempts; try again in \(wait) s."),
                                                    status: .tooManyRequests, cookies: cookies)
                    response.headers[.retryAfter] = "\(wait)"
                    return response
                }
                return WebResponse.signIn(SignInPage(csrf: csrf, error: "That token is not valid or was revoked."), status: .unauthorized,
                                        cookies: cookies)
            }
            return WebResponse.redirect(home(session.principal), cookies: [
                WebResponse.cookie(Self.sessionCookie, cookie, maxAge: Int(SessionService.lifetime), secure: WebResponse.isSecure(request)),
                WebResponse.cookie(Self.loginCookie, "", maxAge: 0, secure: WebResponse.isSecure(request)),
            ])
        }
        router.post("logout") { request, context in
            if let cookie = WebResponse.cookieValue(Self.sessionCookie, in: request), let session = try await app.sessions.session(cookie: cookie) {
                _ = try await WebForm.read(request, context: context, csrf: session.csrf)
                try await app.sessions.signOut(cookie: cookie)
            }
            return WebResponse.redirect("/login", cookies: [WebResponse.cookie(Self.sessionCookie, "", maxAge: 0, secure: WebResponse.isSecure(request))])
        }
    }
}
