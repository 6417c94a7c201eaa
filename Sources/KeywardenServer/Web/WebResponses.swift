import Foundation
import HTTPTypes
import Hummingbird
import KeywardenStore
import NIOCore

/// Responses of the admin pages: HTML with strict security headers, redirects, cookies.
enum WebResponse {
    /// Scripts and styles only from this origin, no framing, no inline code; forms post only here.
    static let contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

    static func securityHeaders() -> HTTPFields {
        [
            .contentSecurityPolicy: contentSecurityPolicy,
            .init("X-Frame-Options")!: "DENY",
            .init("X-Content-Type-Options")!: "nosniff",
            .init("Referrer-Policy")!: "same-origin",
            // Pages show key metadata: never kept by a browser or a proxy.
            .cacheControl: "no-store",
        ]
    }

    /// The sign-in page.
    static func signIn(_ page: PagesController.SignInPage, status: HTTPResponse.Status = .ok, cookies: [String] = []) -> Response {
        render("login", page, status: status, cookies: cookies)
    }

    /// Renders a template with a view model as its context.
    static func render(_ template: String, _ object: Any, status: HTTPResponse.Status, cookies: [String]) -> Response {
        let html = ServerResources.templates.render(object, withTemplate: template) ?? "<!doctype html><p>The page template \(template) is missing from this build.</p>"
        var headers = securityHeaders()
        headers[.contentType] = "text/html; charset=utf-8"
        for cookie in cookies { headers.append(HTTPField(name: .setCookie, value: cookie)) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// A page saying the database cannot answer (it cannot render the usual chrome, which reads the database), with the
    /// error's status and `Retry-After`; what was submitted was not saved, and the page says so.
    static func storeError(_ error: APIError) -> Response {
        var headers = securityHeaders()
        headers[.contentType] = "text/html; charset=utf-8"
        for field in error.headers { headers.append(field) }
        let html = """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><title>Keywarden — \(error.status.code)</title>\
        <link rel="stylesheet" href="/assets/app.css"></head><body><main class="error-page"><h1>\(error.status.code == 507 ? "Storage full" : "Database unavailable")</h1>\
        <p>\(error.message)</p><p>Go back and submit again once it answers; this page does not resend anything.</p></main></body></html>
        """
        return Response(status: error.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// A 303 to `location` (after a POST, so a reload does not post again).
    static func redirect(_ location: String, cookies: [String] = []) -> Response {
        var headers = securityHeaders()
        headers[.location] = location
        for cookie in cookies { headers.append(HTTPField(name: .setCookie, value: cookie)) }
        return Response(status: .seeOther, headers: headers)
    }

    /// A cookie the page's scripts cannot read, sent only to this site (and only over TLS when served over TLS).
    static func cookie(_ name: String, _ value: String, maxAge: Int, secure: Bool) -> String {
        "\(name)=\(value); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(maxAge)" + (secure ? "; Secure" : "")
    }

    /// Whether the browser reached us over TLS (directly or through a proxy that says so).
    static func isSecure(_ request: Request) -> Bool {
        request.uri.scheme == .https || request.headers[.init("X-Forwarded-Proto")!]?.lowercased() == "https"
    }

    /// A cookie's value from the request.
    static func cookieValue(_ name: String, in request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if pair.count == 2, pair[0] == name { return String(pair[1]) }
            }
        }
        return nil
    }
}
