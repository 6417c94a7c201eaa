import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import SQLKit

/// A signed-in browser session of the admin UI.
public struct WebSession: Sendable {
    public let principal: Principal
    /// The session's anti-forgery token, put in every form and checked on every POST.
    public let csrf: String
    public let expiresAt: Date
}

/// Admin UI sessions: created by signing in with a token, stored as a digest of the cookie, ended by
/// signing out, by expiry, or when the token they signed in with is revoked.
public struct SessionService: Sendable {
    let app: AppServices
    var store: Store { app.store }
    static let table = "sessions"
    /// How long a session lasts after signing in.
    public static let lifetime: TimeInterval = 8 * 3600

    /// Signs in with a presented token: the new cookie value (shown to the browser only) and the session.
    public func signIn(presented: String) async throws -> (cookie: String, session: WebSession)? {
        guard AccessToken.looksLikeToken(presented) else { return nil }
        let cookie = AccessToken.generate().value
        let csrf = AccessToken.generate().value
        let expires = Date().addingTimeInterval(Self.lifetime)
        // Sessions are no input of the resolution snapshot or the token cache: signing in does not make them reload.
        return try await store.engine.transaction(changesState: false) { db in
            guard let record = try await self.store.tokens.find(presented: presented, on: db) else { return nil }
            try await db.delete(from: Self.table).where("expires_at", .lessThan, Timestamp.now).run()
            try await db.insert(into: Self.table).columns("digest", "token_id", "csrf", "created_at", "expires_at")
                .values(SQLBind(AccessToken.digest(of: cookie)), SQLBind(record.id), SQLBind(csrf), SQLBind(Timestamp.now), SQLBind(Timestamp.string(expires)))
                .run()
            try await self.store.audit.append(AuditEvent(
                actor: record.principal.actor, action: "session.created", targetType: "token", targetID: record.id,
                workspaceID: record.workspaceID, details: [:]
            ), on: db)
            return (cookie, WebSession(principal: record.principal, csrf: csrf, expiresAt: expires))
        }
    }

    /// The live session of a cookie value, if any (its token still live, not expired).
    public func session(cookie: String) async throws -> WebSession? {
        guard AccessToken.looksLikeToken(cookie) else { return nil }
        let digest = AccessToken.digest(of: cookie)
        return try await store.engine.read { db in
            guard let row = try await db.select().columns("token_id", "csrf", "expires_at").from(Self.table).where("digest", .equal, digest).first(),
                  let expires = Timestamp.date(try row.decode(column: "expires_at", as: String.self)), expires > Date(),
                  let record = try await self.store.tokens.get(try row.decode(column: "token_id", as: String.self), on: db),
                  record.revokedAt == nil
            else { return nil }
            return WebSession(principal: record.principal, csrf: try row.decode(column: "csrf", as: String.self), expiresAt: expires)
        }
    }

    /// Ends a session.
    public func signOut(cookie: String) async throws {
        let digest = AccessToken.digest(of: cookie)
        try await store.engine.transaction(changesState: false) { db in
            try await db.delete(from: Self.table).where("digest", .equal, digest).run()
        }
    }

    // MARK: One-time messages between a form's POST and the page it redirects to

    /// How long a sealed message waits for the page that shows it.
    public static let flashLifetime: TimeInterval = 120

    /// Seals a message for the page at `path` of this session (post / redirect / get): opened only there, with the same
    /// session, within ``flashLifetime``, by any instance (the vault's master key is shared). It may carry a one-time
    /// token value.
    public func sealFlash(_ message: Secret, for session: WebSession, path: String, now: Date = Date()) async throws -> String {
        let expires = Int(now.timeIntervalSince1970 + Self.flashLifetime)
        let sealed = try await store.vault.seal(message, in: Self.flashContext(session, path: path, expires: expires), keys: store.scopeKeys)
        var bytes = [UInt8](String(expires).utf8) + [0x2E]
        bytes += [UInt8(sealed.wrappedKey.count >> 8), UInt8(sealed.wrappedKey.count & 0xFF)] + sealed.wrappedKey + sealed.ciphertext
        return Base64URL.encode(bytes)
    }

    /// Opens a message sealed by ``sealFlash(_:for:path:now:)`` for this session and page; `nil` when it is not one, is
    /// another session's or page's, was tampered with, or has expired.
    public func openFlash(_ text: String, for session: WebSession, path: String, now: Date = Date()) async -> Secret? {
        guard text.utf8.count <= 8192, let bytes = Base64URL.decode(text), let dot = bytes.firstIndex(of: 0x2E),
              let expires = UntrustedNumber.integer(String(decoding: bytes[..<dot], as: UTF8.self)),
              Double(expires) > now.timeIntervalSince1970, Double(expires) <= now.timeIntervalSince1970 + Self.flashLifetime + 5
        else { return nil }
        let rest = Array(bytes[(dot + 1)...])
        guard rest.count >= 2 else { return nil }
        let length = Int(rest[0]) << 8 | Int(rest[1])
        guard rest.count >= 2 + length else { return nil }
        let sealed = SealedSecret(wrappedKey: Array(rest[2..<(2 + length)]), ciphertext: Array(rest[(2 + length)...]))
        return try? await store.vault.open(sealed, in: Self.flashContext(session, path: path, expires: expires), keys: store.scopeKeys)
    }

    /// Binds a message to its session (by a digest of its anti-forgery token, which no other session shares), the page
    /// that shows it, and its expiry.
    static func flashContext(_ session: WebSession, path: String, expires: Int) -> SecretContext {
        SecretContext(scope: .platform, ownerID: "session:" + AccessToken.digest(of: session.csrf), field: "flash:\(expires):\(path)")
    }
}
