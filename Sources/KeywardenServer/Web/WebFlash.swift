import Foundation
import Hummingbird
import KeywardenApp
import KeywardenCore

/// What a form's POST tells the page it redirects to (post / redirect / get): a notice, a Test's result on its row, a
/// token value shown once. Sealed by the vault into a cookie bound to the session and the page it is for, opened and
/// cleared by that page (another page, in another tab, leaves it), so a reload shows it no more and re-sends nothing.
struct WebFlash: Codable, Sendable {
    var notice: String?
    /// A Test's (or Save & Verify's) result, on the row of the key it is about.
    var note: PagesController.RowNote?
    var revealed: PagesController.MembersPage.Revealed?

    static let cookieName = "kw_flash"
}

extension PagesController {
    /// Redirects to `location` carrying `flash` for the page there.
    func redirect(_ location: String, flash: WebFlash, session: WebSession, request: Request) async throws -> Response {
        let json = try JSONEncoder().encode(flash)
        let path = String(location.prefix { $0 != "?" && $0 != "#" })
        let sealed = try await app.sessions.sealFlash(Secret(String(decoding: json, as: UTF8.self)), for: session, path: path)
        return WebResponse.redirect(location, cookies: [WebResponse.cookie(WebFlash.cookieName, sealed, maxAge: Int(SessionService.flashLifetime),
                                                                           secure: WebResponse.isSecure(request))])
    }

    /// The message the previous POST left for this page, if it is this session's and fresh (``page(_:_:)`` clears it).
    func flash(_ request: Request, session: WebSession) async -> WebFlash? {
        guard let cookie = WebResponse.cookieValue(WebFlash.cookieName, in: request),
              let opened = await app.sessions.openFlash(cookie, for: session, path: request.uri.path) else { return nil }
        return try? JSONDecoder().decode(WebFlash.self, from: Data(opened.unprotectedString.utf8))
    }
}
