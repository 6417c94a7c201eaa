import AsyncHTTPClient
import Foundation
import KeywardenCore
import KeywardenApp
import KeywardenProviders
import KeywardenStore
import NIOCore
import NIOHTTP1

extension Gateway {
    // MARK: Failover decisions

    /// Statuses that send the call to the next key: the key was refused, rate limited, or the vendor failed.
    static func triggersFailover(_ status: Int) -> Bool {
        status == 401 || status == 403 || status == 429 || (500...599).contains(status)
    }

    /// Takes a failing key out of rotation and records what the vendor said, without delaying the call.
    ///
    /// - A 429 rests the key for its `Retry-After` (clamped): for everyone when the caller owns the key; a shared key
    ///   for the calling workspace, and for everyone once a second workspace meets a 429 on it (``Cooldowns/rateLimited``).
    /// - A refusal (401, 403, no quota) of a key the caller owns rests it and records the verdict (its own key).
    /// - A refusal of a key the caller does not own (the platform's, the managed default) is no proof the key is bad:
    ///   the caller's request (its path, its headers) shaped the answer. Only the calling workspace moves on from the
    ///   key for a while, and Keywarden's own probe (a verification call, at most once a minute per key) decides
    ///   whether the key is marked invalid for everyone.
    func react(to status: Int, body: [UInt8], headers: HTTPHeaders, credential: Credential, owned: Bool, workspaceID: String?,
               keyVersion: KeyVersion, scrubber: SecretScrubber) -> String {
        let maximum = UntrustedNumber.integer(Double(settings.maximumCooldown.components.seconds), clampedTo: 0...Int(Int32.max)) ?? 3600
        let (verdict, message, retryAfter) = ResponseClassifier.classify(
            httpStatus: status, body: Data(body), retryAfterHeader: headers.first(name: "retry-after"), scrubber: scrubber,
            maximumRetryAfter: maximum
        )
        let reason: String
        var record: VerificationStatus?
        switch verdict {
        case .rateLimited:
            let duration = retryAfter.map { Duration.seconds($0) } ?? settings.defaultCooldown
            cooldowns.rateLimited(credential.id, for: duration, owned: owned, workspaceID: workspaceID)
            announce(.init(credentialID: credential.id, workspaceID: workspaceID, owned: owned, rateLimited: true, duration: duration))
            return "rate_limited"
        case .quotaExceeded:
            record = .quotaExceeded
            reason = "quota_exceeded"
        case .invalid where status == 401:
            record = .invalid
            reason = "invalid"
        case .noPermission:
            reason = "forbidden"
        default:
            return "server_error"
        }
        guard owned else {
            cooldowns.rest(credential.id, for: settings.rejectedCooldown, rateLimited: false, onlyFor: workspaceID)
            announce(.init(credentialID: credential.id, workspaceID: workspaceID, owned: false, rateLimited: false, duration: settings.rejectedCooldown))
            health?.requestCheck(credentialID: credential.id)
            return reason
        }
        cooldowns.rest(credential.id, for: settings.rejectedCooldown, rateLimited: false)
        announce(.init(credentialID: credential.id, workspaceID: workspaceID, owned: true, rateLimited: false, duration: settings.rejectedCooldown))
        guard let record else {
            health?.requestCheck(credentialID: credential.id)
            return reason
        }
        let (app, health, logger) = (self.app, self.health, self.logger)
        Task {
            do {
                try await app.notifications.recordStatus(credentialID: credential.id, status: record, message: message, checkedAt: Date(),
                                                           actor: "gateway", keyVersion: keyVersion)
            } catch {
                logger.error("gateway: key status not recorded", metadata: ["key": "\(credential.id)", "error": "\(error)"])
            }
            if record == .invalid { health?.requestCheck(credentialID: credential.id) }
        }
        return reason
    }

    /// Tells the other instances on the database about a rest (PostgreSQL `NOTIFY`), so they do not hammer a key the
    /// vendor just refused; without it each instance would meet the vendor's 429 once itself.
    func announce(_ rest: Cooldowns.Announcement) {
        let engine = app.engine
        Task { await engine.announce(.rests, rest.payload) }
    }

    /// Raises `fallback.engaged` when a workspace that has its own keys for the provider is served by the
    /// platform's or the managed key, once per move; the workspace's own key serving again re-arms it.
    func noteSource(_ candidate: Candidate, call: GatewayCall, snapshot: ResolutionView, query: ResolutionQuery) {
        guard let workspaceID = call.workspaceID else { return }
        let providerID = query.providerID ?? app.catalog.provider(servingModel: query.model ?? "")?.id ?? candidate.providerID
        if candidate.source == .byok {
            // Released where it was engaged (here, or announced by another instance): the row goes, and the others hear.
            guard fallbacks.release(workspaceID: workspaceID, providerID: providerID) else { return }
            let (app, logger) = (self.app, self.logger)
            Task {
                do {
                    try await app.notifications.releaseFallback(workspaceID: workspaceID, providerID: providerID)
                    await app.engine.announce(.rests, FallbackTracker.payload(engaged: false, workspaceID: workspaceID, providerID: providerID))
                } catch {
                    logger.error("gateway: fallback release not recorded", metadata: ["error": "\(error)"])
                }
            }
            return
        }
        guard snapshot.policy(ofWorkspace: workspaceID)?.byokAllowed == true,
              snapshot.keys(ofWorkspace: workspaceID).contains(where: { $0.providerID == providerID && $0.active && !$0.hint.isEmpty }),
              fallbacks.engage(workspaceID: workspaceID, providerID: providerID)
        else { return }
        let reason = "the workspace's \(providerID) keys could not serve the call; \(candidate.source.rawValue) key used"
        let (app, logger) = (self.app, self.logger)
        Task {
            do {
                // The platform's key is not named to the workspace's hooks: the source says who paid. Another instance
                // may have recorded the move already: then there is no second event.
                try await app.notifications.recordFallback(workspaceID: workspaceID, providerID: providerID, source: candidate.source,
                                                             credentialID: nil, reason: reason)
                await app.engine.announce(.rests, FallbackTracker.payload(engaged: true, workspaceID: workspaceID, providerID: providerID))
            } catch {
                logger.error("gateway: fallback event not recorded", metadata: ["error": "\(error)"])
            }
        }
    }

    static func isTimeout(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError {
            return error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout
        }
        return false
    }
}
