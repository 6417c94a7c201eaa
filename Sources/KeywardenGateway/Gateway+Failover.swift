import AsyncHTTPClient
import Foundation
import KeywardenCore
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

    /// Takes a failing key out of rotation for this instance at once, and records what the vendor said
    /// (a refused key is marked invalid and re-checked; a spent quota is recorded) without delaying the call.
    func react(to status: Int, body: [UInt8], headers: HTTPHeaders, credential: Credential, scrubber: SecretScrubber) -> String {
        let (verdict, message, retryAfter) = ResponseClassifier.classify(
            httpStatus: status, body: Data(body), retryAfterHeader: headers.first(name: "retry-after"), scrubber: scrubber
        )
        let reason: String
        var record: VerificationStatus?
        switch verdict {
        case .rateLimited:
            cooldowns.rest(credential.id, for: retryAfter.map { .seconds($0) } ?? settings.defaultCooldown, rateLimited: true)
            reason = "rate_limited"
        case .quotaExceeded:
            cooldowns.rest(credential.id, for: settings.rejectedCooldown, rateLimited: false)
            record = .quotaExceeded
            reason = "quota_exceeded"
        case .invalid where status == 401:
            cooldowns.rest(credential.id, for: settings.rejectedCooldown, rateLimited: false)
            record = .invalid
            reason = "invalid"
        case .noPermission:
            cooldowns.rest(credential.id, for: settings.rejectedCooldown, rateLimited: false)
            reason = "forbidden"
            health?.requestCheck(credentialID: credential.id)
        default:
            reason = "server_error"
        }
        if let record {
            let (store, health, logger) = (self.store, self.health, self.logger)
            Task {
                do {
                    try await store.notifications.recordStatus(credentialID: credential.id, status: record, message: message, checkedAt: Date(), actor: "gateway")
                } catch {
                    logger.error("gateway: key status not recorded", metadata: ["key": "\(credential.id)", "error": "\(error)"])
                }
                if record == .invalid { health?.requestCheck(credentialID: credential.id) }
            }
        }
        return reason
    }

    /// Raises `fallback.engaged` when a workspace that has its own keys for the provider is served by the
    /// platform's or the managed key, once per move; the workspace's own key serving again re-arms it.
    func noteSource(_ candidate: Candidate, call: GatewayCall, snapshot: ResolutionSnapshot, query: ResolutionQuery) {
        guard let workspaceID = call.workspaceID else { return }
        let providerID = query.providerID ?? store.catalog.provider(servingModel: query.model ?? "")?.id ?? candidate.providerID
        if candidate.source == .byok {
            fallbacks.release(workspaceID: workspaceID, providerID: providerID)
            return
        }
        guard snapshot.policy(ofWorkspace: workspaceID)?.byokAllowed == true,
              snapshot.keys(ofWorkspace: workspaceID).contains(where: { $0.providerID == providerID && $0.active && !$0.hint.isEmpty }),
              fallbacks.engage(workspaceID: workspaceID, providerID: providerID)
        else { return }
        let reason = "the workspace's \(providerID) keys could not serve the call; \(candidate.source.rawValue) key used"
        let (store, logger) = (self.store, self.logger)
        Task {
            do {
                try await store.notifications.recordFallback(workspaceID: workspaceID, providerID: providerID, source: candidate.source,
                                                             credentialID: candidate.credentialID, reason: reason)
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
