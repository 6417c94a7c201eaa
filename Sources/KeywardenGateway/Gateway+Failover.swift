import AsyncHTTPClient
import Foundation
import KeywardenCore
import KeywardenApp
import KeywardenProviders
import NIOCore
import NIOHTTP1

extension Gateway {
    // MARK: Carrying out failover decisions

    /// Takes a failing key out of rotation as the policy decided, and records what the vendor said, without delaying the call.
    ///
    /// A rate-limited shared key rests for the calling workspace, and for everyone once a second workspace meets a 429
    /// on it (``Cooldowns/rateLimited(_:for:owned:workspaceID:now:)``).
    func carryOut(_ failover: FailoverPolicy.Failover, credential: Credential, workspaceID: String?, keyVersion: KeyVersion, message: String) {
        if let rest = failover.rest {
            if rest.rateLimited {
                cooldowns.rateLimited(credential.id, for: rest.duration, owned: rest.owned, workspaceID: workspaceID, keyTag: keyVersion.tag)
            } else {
                cooldowns.rest(credential.id, for: rest.duration, rateLimited: false, onlyFor: rest.owned ? nil : workspaceID, keyTag: keyVersion.tag)
            }
            announce(.init(credentialID: credential.id, workspaceID: workspaceID, owned: rest.owned, rateLimited: rest.rateLimited,
                           duration: rest.duration, keyTag: keyVersion.tag))
        }
        guard let record = failover.record else {
            if failover.checkHealth { health?.requestCheck(credentialID: credential.id) }
            return
        }
        effects.submit(.recordStatus(credentialID: credential.id, status: record, message: message, keyVersion: keyVersion,
                                     checkHealth: failover.checkHealth))
    }

    /// Tells the other instances on the database about a rest (PostgreSQL `NOTIFY`), so they do not hammer a key the
    /// vendor just refused; without it each instance would meet the vendor's 429 once itself.
    func announce(_ rest: Cooldowns.Announcement) {
        effects.submit(.announce(rest.payload))
    }

    /// Raises `fallback.engaged` when a workspace that has its own keys for the provider is served by the
    /// platform's or the managed key, once per move; the workspace's own key serving again re-arms it.
    func noteSource(_ candidate: Candidate, call: GatewayCall, snapshot: ResolutionView, query: ResolutionQuery, customerKeyRevoked: Bool = false) {
        guard let workspaceID = call.workspaceID else { return }
        let providerID = query.providerID ?? app.catalog.provider(servingModel: query.model ?? "")?.id ?? candidate.providerID
        if candidate.source == .byok {
            // Released where it was engaged (here, or announced by another instance): the row goes, and the others hear.
            guard fallbacks.release(workspaceID: workspaceID, providerID: providerID) else { return }
            effects.submit(.releaseFallback(workspaceID: workspaceID, providerID: providerID))
            return
        }
        guard snapshot.policy(ofWorkspace: workspaceID)?.byokAllowed == true,
              snapshot.keys(ofWorkspace: workspaceID).contains(where: { $0.providerID == providerID && $0.active && !$0.hint.isEmpty }),
              fallbacks.engage(workspaceID: workspaceID, providerID: providerID)
        else { return }
        let reason = customerKeyRevoked
            ? "key access revoked by the customer: the workspace's own KMS key refuses Keywarden, so its \(providerID) keys do not open; \(candidate.source.rawValue) key used"
            : "the workspace's \(providerID) keys could not serve the call; \(candidate.source.rawValue) key used"
        effects.submit(.recordFallback(workspaceID: workspaceID, providerID: providerID, source: candidate.source, reason: reason))
    }

    /// Whether an attempt's error ended it after the vendor had its request (the first-byte deadline, a read timeout):
    /// the vendor bills such an attempt. A connect that timed out sent nothing.
    static func vendorReceived(_ error: any Error) -> Bool {
        guard let error = error as? HTTPClientError else { return false }
        return error == .deadlineExceeded || error == .readTimeout
    }

    /// Whether an attempt ended because the client left (its task was cancelled): not the vendor's failure.
    static func clientLeft(_ error: any Error) -> Bool {
        error is VendorCallCancelled || error is CancellationError || Task.isCancelled
    }

    /// The status a call's usage row carries when the client closed its connection before the answer (nginx's 499).
    static let clientClosedStatus = 499

    static func isTimeout(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError {
            return error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout
        }
        return false
    }
}
