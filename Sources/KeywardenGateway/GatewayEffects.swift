import Foundation
import KeywardenApp
import KeywardenCore
import Logging
import ServiceLifecycle

/// The gateway's side effects off the call's path, each a value, carried out by one owner.
///
/// A call decides (`FailoverPolicy`, the meter) and submits what must follow — a key's status to record, a rest to
/// announce, a fallback event, a rate-limit or budget settlement — without waiting. ``run()`` carries each out as a
/// child task of its own, so none is detached: a failure is logged, and at graceful shutdown the effects already
/// submitted finish before the store closes (this service stops after the HTTP server, before the usage ledger).
public final class GatewayEffects: Service, Sendable {
    /// One thing to do after a call.
    public enum Effect: Sendable {
        /// Record what the vendor said of a key; then ask for a health check when the policy says so.
        case recordStatus(credentialID: String, status: VerificationStatus, message: String, keyVersion: KeyVersion, checkHealth: Bool)
        /// Tell the other instances on the database (PostgreSQL `NOTIFY`; nothing on SQLite).
        case announce(String)
        /// A workspace's own key serves again: its `fallback.engaged` row goes, and the other instances hear.
        case releaseFallback(workspaceID: String, providerID: String)
        /// A workspace with its own keys was served by the platform's or the managed key: `fallback.engaged`, once.
        case recordFallback(workspaceID: String, providerID: String, source: KeySource, reason: String)
        /// Count the tokens a call used against its rate-limit admission (0: an attempt that failed over).
        case settleTokens(RateAdmission, used: Int)
        /// Give a budget hold back.
        case releaseBudget(BudgetReservation)
        /// Raise the budget thresholds a settlement reached.
        case announceThresholds([Int], reservation: BudgetReservation, spent: Int)
    }

    private let app: any GatewayBackend
    private let health: HealthCheckService?
    private let ledger: UsageLedger
    private let logger: Logger
    private let effects: AsyncStream<Effect>
    private let submitted: AsyncStream<Effect>.Continuation

    public init(app: any GatewayBackend, health: HealthCheckService?, ledger: UsageLedger, logger: Logger) {
        self.app = app
        self.health = health
        self.ledger = ledger
        self.logger = logger
        (effects, submitted) = AsyncStream.makeStream(of: Effect.self, bufferingPolicy: .unbounded)
    }

    /// Hands an effect to the owner; never waits. After the owner stopped, the effect is logged and dropped.
    public func submit(_ effect: Effect) {
        if case .terminated = submitted.yield(effect) {
            logger.warning("gateway: an effect after shutdown was not carried out", metadata: ["effect": "\(Self.name(of: effect))"])
        }
    }

    /// Carries out every submitted effect until graceful shutdown, then the ones already submitted.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            await withGracefulShutdownHandler {
                for await effect in effects {
                    group.addTask { await self.perform(effect) }
                }
            } onGracefulShutdown: {
                self.submitted.finish()
            }
        }
    }

    /// Carries out one effect; a failure is logged (the call it follows was answered already).
    func perform(_ effect: Effect) async {
        do {
            switch effect {
            case .recordStatus(let credentialID, let status, let message, let keyVersion, let checkHealth):
                defer { if checkHealth { health?.requestCheck(credentialID: credentialID) } }
                try await app.recordStatus(credentialID: credentialID, status: status, message: message, keyVersion: keyVersion)
            case .announce(let payload):
                await app.announceRest(payload)
            case .releaseFallback(let workspaceID, let providerID):
                try await app.releaseFallback(workspaceID: workspaceID, providerID: providerID)
                await app.announceRest(FallbackTracker.payload(engaged: false, workspaceID: workspaceID, providerID: providerID))
            case .recordFallback(let workspaceID, let providerID, let source, let reason):
                // The platform's key is not named to the workspace's hooks: the source says who paid. Another instance
                // may have recorded the move already: then there is no second event.
                try await app.recordFallback(workspaceID: workspaceID, providerID: providerID, source: source, reason: reason)
                await app.announceRest(FallbackTracker.payload(engaged: true, workspaceID: workspaceID, providerID: providerID))
            case .settleTokens(let admission, let used):
                try await app.settle(admission, used: used)
            case .releaseBudget(let reservation):
                do { try await app.release(reservation) } catch { ledger.releaseLater(reservation) }
            case .announceThresholds(let reached, let reservation, let spent):
                try await app.announceThresholds(reached, reservation: reservation, spent: spent)
            }
        } catch {
            var metadata = Self.subject(of: effect)
            metadata["error"] = "\(error)"
            logger.error("gateway: \(Self.name(of: effect)) not recorded", metadata: metadata)
        }
    }

    /// Whom an effect concerns, for a log line: the key or the workspace (ids only).
    static func subject(of effect: Effect) -> Logger.Metadata {
        switch effect {
        case .recordStatus(let credentialID, _, _, _, _): ["key": "\(credentialID)"]
        case .announce: [:]
        case .releaseFallback(let workspaceID, let providerID), .recordFallback(let workspaceID, let providerID, _, _):
            ["workspace": "\(workspaceID)", "provider": "\(providerID)"]
        case .settleTokens(let admission, _): ["workspace": "\(admission.workspaceID)"]
        case .releaseBudget(let reservation), .announceThresholds(_, let reservation, _): ["workspace": "\(reservation.workspaceID)"]
        }
    }

    /// What an effect is, for a log line (no secret, no message of the vendor's).
    static func name(of effect: Effect) -> String {
        switch effect {
        case .recordStatus: "key status"
        case .announce: "announcement"
        case .releaseFallback: "fallback release"
        case .recordFallback: "fallback event"
        case .settleTokens: "rate-limit tokens"
        case .releaseBudget: "budget release"
        case .announceThresholds: "budget threshold"
        }
    }
}
