import Foundation
import KeywardenCore
import KeywardenProviders
import KeywardenStore
import KeywardenVault
import Logging

/// The Test button and the health checks: opens a stored key for one call, verifies it, records the
/// status (and, on a transition, an event) and returns the outcome.
public struct KeyVerificationService: Sendable {
    let app: AppServices
    var store: Store { app.store }
    let verifier: KeyVerifier
    let logger: Logger
    /// Tests on demand per scope (a workspace, the platform); the health checks are not counted.
    let testLimiter: RateLimiter

    public init(app: AppServices, verifier: KeyVerifier, logger: Logger, testLimiter: RateLimiter = RateLimiter(.init(limit: 30, per: .seconds(60)))) {
        self.app = app
        self.verifier = verifier
        self.logger = logger
        self.testLimiter = testLimiter
    }

    /// Tests the platform's key for a provider (its card).
    /// Tests the platform's card key of a provider (platform admins).
    public func testPlatformCard(_ providerID: String, principal: Principal) async throws -> VerificationResult {
        try principal.authorizePlatform()
        return try await testPlatformCard(providerID, actor: principal.actor)
    }

    /// Tests a workspace's key for a principal with `keys.test` there.
    public func testWorkspaceKey(workspaceID: String, keyID: String, principal: Principal) async throws -> VerificationResult {
        try principal.authorize(.keysTest, inWorkspace: workspaceID)
        return try await testWorkspaceKey(workspaceID: workspaceID, keyID: keyID, actor: principal.actor)
    }

    /// Tests a saved workspace key for a principal with `keys.test` there; a key its vendor refuses is turned off.
    public func verifySaved(workspaceID: String, keyID: String, principal: Principal) async throws -> (result: VerificationResult, deactivated: Bool) {
        try principal.authorize(.keysTest, inWorkspace: workspaceID)
        return try await verifySaved(workspaceID: workspaceID, keyID: keyID, actor: principal.actor)
    }

    public func testPlatformCard(_ providerID: String, actor: String) async throws -> VerificationResult {
        if let wait = testLimiter.acquire("platform") { throw KeywardenError.rateLimited("key tests", retryAfter: wait) }
        let card = try await app.platformCards.card(providerID)
        guard let credential = card.credential else {
            throw KeywardenError(.conflict, code: "key_required", message: "Add an API key before testing.", field: "api_key")
        }
        return try await verify(credential, defaultModel: card.state.defaultModel, actor: actor)
    }

    /// Tests a workspace key.
    public func testWorkspaceKey(workspaceID: String, keyID: String, actor: String) async throws -> VerificationResult {
        let details = try await app.keys.get(workspaceID: workspaceID, keyID: keyID)
        if let wait = testLimiter.acquire("workspace:\(workspaceID)") { throw KeywardenError.rateLimited("key tests", retryAfter: wait) }
        return try await verify(details.credential, defaultModel: details.credential.defaultModel, actor: actor)
    }

    /// Save & Verify: tests a key just saved, and turns it off when the vendor refuses it (invalid, or without permission),
    /// so a rejected key never serves as the workspace's active key under a green "saved"; whether it was turned off is
    /// returned (the operator chooses what next). A passing doubt (rate limited, unreachable) leaves it as it is.
    public func verifySaved(workspaceID: String, keyID: String, actor: String) async throws -> (result: VerificationResult, deactivated: Bool) {
        let result = try await testWorkspaceKey(workspaceID: workspaceID, keyID: keyID, actor: actor)
        guard [.invalid, .noPermission].contains(result.status), try await app.keys.get(workspaceID: workspaceID, keyID: keyID).credential.active else {
            return (result, false)
        }
        _ = try await app.keys.deactivate(workspaceID: workspaceID, keyID: keyID, actor: actor)
        return (result, true)
    }

    /// The actor the periodic health check verifies as.
    public static let healthCheckActor = "system:health"

    /// Verifies a stored credential and records the outcome.
    public func verify(_ credential: Credential, defaultModel: String?, actor: String) async throws -> VerificationResult {
        guard let provider = store.catalog.provider(credential.providerID) else { throw KeywardenError.unknownProvider(credential.providerID) }
        guard provider.verification.available else {
            throw KeywardenError(.unprocessable, code: "verification_unavailable",
                                 message: provider.verification.note ?? "\(provider.displayName) has no read-only call to test a key with.")
        }
        let result: VerificationResult
        var version: KeyVersion?
        var usedSecret = false
        do {
            let (key, extras, used) = try await store.engine.read { db in
                (try await self.store.credentials.openKey(of: credential, on: db),
                 try await VaultError.unlessUnreadable { try await self.store.credentials.openExtras(of: credential, on: db) } ?? [:],
                 try await self.store.credentials.keyVersion(of: credential, on: db))
            }
            version = used
            if provider.requiresKey, key == nil {
                throw KeywardenError(.conflict, code: "key_required", message: "Add an API key before testing.", field: "api_key")
            }
            result = await verifier.verify(provider: provider, credentials: VendorCredentials(key: key, extras: extras), defaultModel: defaultModel,
                                           forWorkspace: credential.scope != .platform, logger: logger)
            usedSecret = true
        } catch let error as VaultError where !error.isCustodyUnavailable {
            logger.warning("stored key does not open", metadata: ["credential": "\(credential.id)", "reason": "\(error)"])
            result = VerificationResult(status: .unreadable, message: "The stored key cannot be decrypted.")
        }
        // The secret went to its vendor: the workspace's custody log says so.
        if usedSecret {
            // The verdict is recorded whatever becomes of this entry (the vendor was called; a missing entry is logged).
            do { try await app.custody.record(actor == Self.healthCheckActor ? .healthCheck : .test, of: credential, actor: actor) } catch {
                logger.warning("custody: a test's use was not recorded", metadata: ["credential": "\(credential.id)", "error": "\(error)"])
            }
        }
        // A missing field is the operator's to fix, not a verdict on the key: it is answered, not recorded. A verdict on a
        // key that was replaced while it was being tested is not recorded on the new one.
        if result.status != .unverified {
            try await app.notifications.recordStatus(
                credentialID: credential.id, status: result.status, message: result.message, checkedAt: result.checkedAt, actor: actor,
                keyVersion: version
            )
        }
        return result
    }

    /// Tests the secret staged for a key's rotation with the key's extras, and records the verdict on the staged
    /// secret (the key's own status is not touched: the current secret keeps serving).
    /// Tests a staged key for a principal with `keys.test` on it (the platform's card key: platform admins).
    public func testStaged(_ reference: KeyRotationService.Reference, principal: Principal) async throws -> (VerificationResult, Credential) {
        try reference.authorize(principal, .keysTest)
        return try await testStaged(reference, actor: principal.actor)
    }

    public func testStaged(_ reference: KeyRotationService.Reference, actor: String) async throws -> (VerificationResult, Credential) {
        let rotation = app.keyRotation
        let credential = try await store.engine.read { db in try await rotation.credential(reference, on: db) }
        if let wait = testLimiter.acquire(credential.scope.workspaceID.map { "workspace:\($0)" } ?? "platform") {
            throw KeywardenError.rateLimited("key tests", retryAfter: wait)
        }
        guard let staged = credential.lifecycle.staged else {
            throw KeywardenError(.conflict, code: "nothing_staged", message: "No new key is staged for this key; add one first.")
        }
        guard let provider = store.catalog.provider(credential.providerID) else { throw KeywardenError.unknownProvider(credential.providerID) }
        guard provider.verification.available else {
            throw KeywardenError(.unprocessable, code: "verification_unavailable",
                                 message: provider.verification.note ?? "\(provider.displayName) has no read-only call to test a key with.")
        }
        let result: VerificationResult
        do {
            let (key, extras) = try await rotation.openStaged(credential)
            result = await verifier.verify(provider: provider, credentials: VendorCredentials(key: key, extras: extras),
                                           defaultModel: credential.defaultModel, forWorkspace: credential.scope != .platform, logger: logger)
        } catch let error as VaultError where !error.isCustodyUnavailable {
            logger.warning("staged key does not open", metadata: ["credential": "\(credential.id)", "reason": "\(error)"])
            result = VerificationResult(status: .unreadable, message: "The staged key cannot be decrypted.")
        }
        let recorded = try await rotation.recordStagedTest(reference, hint: staged.hint, stagedAt: staged.stagedAt, result: result, actor: actor)
        return (result, recorded)
    }
}
