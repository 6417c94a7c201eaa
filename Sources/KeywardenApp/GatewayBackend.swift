import Foundation
import KeywardenCore
import KeywardenStore

/// What the data plane needs of the App layer, and nothing more: the resolution view and the secrets it names, the
/// limits a call is admitted under and settles, the usage it records, the statuses and fallbacks it reports, and the
/// announcements instances exchange about rests.
///
/// ``AppServices`` is the one implementation; the gateway holds it only as this, so what a call may touch of the store
/// is written here, in one place.
public protocol GatewayBackend: Sendable {
    /// The providers, their dialects and models.
    var catalog: ProviderCatalog { get }
    /// Whether what this instance holds (keys, tokens) is confirmed current within the staleness bound.
    var isCurrent: Bool { get }
    /// How long ago this instance last confirmed it is current (`nil`: never).
    var sinceConfirmed: Duration? { get }
    /// The principal a presented token names, or `nil` when it is not valid (from memory while recently seen).
    func authenticate(presented: String) async throws -> Principal?

    // MARK: Resolution

    /// The keys a workspace's calls (or the platform's, for `nil`) may be served by, from memory once loaded.
    func resolutionView(for workspaceID: String?) async throws -> ResolutionView
    /// A key's secret and extras, opened for the moment of a call, and the version of them that was opened.
    func openSecrets(of credential: Credential, slot: KeySlot) async throws -> (key: Secret?, extras: [String: Secret], version: KeyVersion)
    /// The tag of the secret this instance holds for a key (``KeyVersion/tag``).
    func heldKeyTag(of credentialID: String) -> String?
    /// An HMAC of `text` for `purpose` under the vault's fingerprint key (`nil` while the key cannot be opened).
    func signature(of text: String, purpose: String) -> String?
    /// Calls `handler` with the ids of keys whose secret was replaced, once this instance applies the change.
    func onKeysReplaced(_ handler: @escaping @Sendable ([String]) -> Void)

    // MARK: Limits and usage

    /// Admits a call under a workspace's rate limits, holding its estimated tokens.
    func admit(workspaceID: String, limits: RateLimits, estimatedTokens: Int) async throws -> RateVerdict
    /// Settles an admission's tokens in memory when this instance keeps the window; `false` when the store must.
    func settleHeld(_ admission: RateAdmission, used: Int) -> Bool
    /// Settles an admission's tokens in the store.
    func settle(_ admission: RateAdmission, used: Int) async throws
    /// Holds `amount` of a workspace's budget for a call; `nil` when it does not fit.
    func reserve(workspaceID: String, scope: BudgetScope, amount: Int, limit: Int, cycle: BudgetCycle) async throws -> BudgetReservation?
    /// Settles a hold this instance keeps in memory: what is spent and the thresholds reached, or `nil` when the store must.
    func settleHeld(_ reservation: BudgetReservation, cost: Int) -> (spent: Int, reached: [Int])?
    /// Gives a hold back.
    func release(_ reservation: BudgetReservation) async throws
    /// Raises the events of budget thresholds a settle reached (once across instances).
    func announceThresholds(_ reached: [Int], reservation: BudgetReservation, spent: Int) async throws
    /// Writes calls' usage rows, settling their holds in the same statement, then raises the thresholds they reached.
    /// Throws only when the rows were not written; a failure to raise thresholds is reported to `thresholdsFailed`.
    func record(_ records: [UsageRecord], settling reservations: [BudgetReservation], thresholdsFailed: @Sendable (any Error) -> Void) async throws
    /// Writes this instance's heartbeat and gives back dead instances' budget holds, when due.
    func keepBudgetHolds() async
    /// Appends to the workspaces' custody logs the gateway calls of the minutes that have ended (called each second).
    func appendCustody() async
    /// The most usage rows ``record(_:settling:thresholdsFailed:)`` takes at once.
    var usageBatchSize: Int { get }
    /// Whether an error means the store is away (try again later), not that it refused what it was given.
    func isUnavailable(_ error: any Error) -> Bool
    /// The seconds a client is told to wait (`Retry-After`) when the store is away.
    var unavailableRetryAfter: Int { get }

    // MARK: Statuses, fallbacks and rests

    /// Records a key's status as a call found it (nothing when `keyVersion` was replaced meanwhile).
    func recordStatus(credentialID: String, status: VerificationStatus, message: String?, keyVersion: KeyVersion) async throws
    /// Records that a workspace's calls moved to another source's keys (one event across instances).
    func recordFallback(workspaceID: String, providerID: String, source: KeySource, reason: String) async throws
    /// Records that a workspace's calls are served by its own keys again.
    func releaseFallback(workspaceID: String, providerID: String) async throws
    /// Tells the other instances about a rest or a fallback (`payload` as ``Cooldowns`` and ``FallbackTracker`` write it).
    func announceRest(_ payload: String) async
    /// Calls `handler` with every rest or fallback another instance announces.
    func followRests(_ handler: @escaping @Sendable (String) -> Void)
}

extension AppServices: GatewayBackend {
    public var catalog: ProviderCatalog { store.catalog }

    public var sinceConfirmed: Duration? { staleness.sinceConfirmed }

    public func resolutionView(for workspaceID: String?) async throws -> ResolutionView {
        try await resolution.view(for: workspaceID)
    }

    public func openSecrets(of credential: Credential, slot: KeySlot) async throws -> (key: Secret?, extras: [String: Secret], version: KeyVersion) {
        try await resolution.openSecrets(of: credential, slot: slot)
    }

    public func heldKeyTag(of credentialID: String) -> String? {
        resolution.heldKeyTag(of: credentialID)
    }

    public func signature(of text: String, purpose: String) -> String? {
        store.credentials.signature(of: text, purpose: purpose)
    }

    public func admit(workspaceID: String, limits: RateLimits, estimatedTokens: Int) async throws -> RateVerdict {
        try await rateLimits.admit(workspaceID: workspaceID, limits: limits, estimatedTokens: estimatedTokens)
    }

    public func settleHeld(_ admission: RateAdmission, used: Int) -> Bool {
        rateLimits.settleHeld(admission, used: used)
    }

    public func settle(_ admission: RateAdmission, used: Int) async throws {
        try await rateLimits.settle(admission, used: used)
    }

    public func reserve(workspaceID: String, scope: BudgetScope, amount: Int, limit: Int, cycle: BudgetCycle) async throws -> BudgetReservation? {
        try await budgets.reserve(workspaceID: workspaceID, scope: scope, amount: amount, limit: limit, cycle: cycle)
    }

    public func settleHeld(_ reservation: BudgetReservation, cost: Int) -> (spent: Int, reached: [Int])? {
        budgets.settleHeld(reservation, cost: cost)
    }

    public func release(_ reservation: BudgetReservation) async throws {
        try await budgets.release(reservation)
    }

    public func announceThresholds(_ reached: [Int], reservation: BudgetReservation, spent: Int) async throws {
        _ = try await budgets.announce(reached, reservation: reservation, spent: spent)
    }

    public func record(_ records: [UsageRecord], settling reservations: [BudgetReservation], thresholdsFailed: @Sendable (any Error) -> Void) async throws {
        let settled = try await usage.record(records)
        // Custody: the calls on workspaces' own keys are counted (not on the calls' path: where the ledger writes its
        // batch); ``appendCustody()`` appends each minute once it has ended.
        custodyTally.add(records)
        guard !settled.isEmpty else { return }
        // The settles are written; the thresholds they reached are claimed and raised once across instances.
        do { try await budgets.settled(settled, reservations: reservations) } catch { thresholdsFailed(error) }
    }

    public var usageBatchSize: Int { UsageRepository.batchSize }

    public func appendCustody() async {
        do { try await custody.appendTallied() } catch {
            store.logger.warning("custody: gateway calls not appended; kept (merged per key) until the store takes them", metadata: ["error": "\(error)"])
        }
    }

    public func isUnavailable(_ error: any Error) -> Bool {
        if error is CancellationError { return true }
        guard let error = error as? StoreError else { return false }
        switch error {
        case .unavailable, .closed, .databaseUnavailable, .storageFull: return true
        default: return false
        }
    }

    public var unavailableRetryAfter: Int { StoreError.retryAfterSeconds }

    public func recordStatus(credentialID: String, status: VerificationStatus, message: String?, keyVersion: KeyVersion) async throws {
        _ = try await notifications.recordStatus(credentialID: credentialID, status: status, message: message, checkedAt: Date(), actor: "gateway",
                                                 keyVersion: keyVersion)
    }

    public func recordFallback(workspaceID: String, providerID: String, source: KeySource, reason: String) async throws {
        // The platform's key is not named to the workspace's hooks: the source says who paid.
        _ = try await notifications.recordFallback(workspaceID: workspaceID, providerID: providerID, source: source, credentialID: nil, reason: reason)
    }

    public func releaseFallback(workspaceID: String, providerID: String) async throws {
        try await notifications.releaseFallback(workspaceID: workspaceID, providerID: providerID)
    }

    public func announceRest(_ payload: String) async {
        await store.engine.announce(.rests, payload)
    }

    public func followRests(_ handler: @escaping @Sendable (String) -> Void) {
        store.engine.listen(.rests, handler)
    }
}
