import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import Logging
import Synchronization

/// Keywarden's application layer: the services the API, the pages, the command line and the gateway call, over one
/// store. Services validate, run each change in one transaction with its audit entry, and keep the caches the
/// gateway reads (the resolution snapshot, recent tokens). Only this layer writes audit entries.
///
/// The store's repositories and engine are reached through ``store`` (or directly, `app.engine`, by member lookup).
@dynamicMemberLookup
public final class AppServices: Sendable {
    public let store: Store

    /// The parts of resolution held in memory (the platform's, the workspaces in use).
    let resolutionState: ResolutionState
    /// Recent token lookups, until a change touches them.
    let tokenCache = TokenCache()
    /// Budget counters held in memory when the store is a single process's (SQLite).
    let budgetBook = LocalBudgetBook()
    /// The budget periods caught up with the ledger in this process.
    let budgetCatchUps = BudgetCatchUps()
    /// Rate-limit windows held in memory when the store is a single process's (SQLite).
    let rateBook = LocalRateBook()
    /// Heartbeats, and the reclaim of dead instances' budget holds (PostgreSQL).
    let holdKeeper: BudgetHoldKeeper

    /// Whether the store serves one process only (SQLite), so counters may live in this process's memory instead of
    /// shared rows.
    var isSingleProcess: Bool { store.engine.name == "sqlite" }
    /// Tokens' last-used times, written at most once a minute per token.
    let tokenUsage: TokenUsageRecorder
    /// Applies the change log to both.
    let follower: ChangeFollower
    /// Gateway calls on workspaces' own keys, counted per minute until their custody entries are appended.
    let custodyTally: CustodyTally
    /// Who hears that keys got a new secret (the gateway lifts their rests).
    private let keyReplacedHandlers = Mutex<[@Sendable ([String]) -> Void]>([])

    public init(store: Store) {
        self.store = store
        tokenUsage = TokenUsageRecorder(store: store)
        custodyTally = CustodyTally(instanceID: store.engine.instanceID)
        holdKeeper = BudgetHoldKeeper(deadAfter: store.configuration.instanceDeadAfter)
        resolutionState = ResolutionState(capacity: store.configuration.resolutionCacheWorkspaces)
        let reference = AppServicesReference()
        follower = ChangeFollower(app: reference, staleAfter: store.configuration.staleAfter)
        reference.set(self)
        // A change of this process is applied before the call that made it returns: the next request uses it.
        let follower = self.follower
        store.engine.changes.onCommit { _ in await follower.afterCommit() }
    }

    /// Starts following other processes' changes (a serving instance): their announcements, and a poll of the
    /// change log every 250 ms. Loads the platform's part first, so `/readyz` can say the state is loaded.
    public func followChanges() async throws {
        await follower.catchUp()
        _ = try await resolution.platformPart()
        follower.start()
    }

    /// Calls `handler` with the ids of keys whose secret was replaced (by any instance or process), once this
    /// instance applies the change.
    public func onKeysReplaced(_ handler: @escaping @Sendable ([String]) -> Void) {
        keyReplacedHandlers.withLock { $0.append(handler) }
    }

    func keysReplaced(_ ids: [String]) {
        for handler in keyReplacedHandlers.withLock({ $0 }) { handler(ids) }
    }

    /// Whether the resolution state is loaded (the platform's part; workspaces load on their first call).
    public var resolutionReady: Bool { resolutionState.platform != nil }

    /// Whether what this instance holds (keys, tokens) is confirmed current within the staleness bound: the gateway
    /// serves from memory only while it is.
    public var isCurrent: Bool { follower.isCurrent }

    /// How long ago this instance last confirmed it is current (`nil`: never), and the bound.
    public var staleness: (sinceConfirmed: Duration?, bound: Duration) { (follower.sinceConfirmed, follower.staleAfter) }

    public subscript<Value>(dynamicMember keyPath: KeyPath<Store, Value>) -> Value {
        store[keyPath: keyPath]
    }

    /// The platform's provider cards.
    public var platformCards: PlatformCardService { PlatformCardService(app: self) }
    /// Workspaces, members and tokens.
    public var workspaceService: WorkspaceService { WorkspaceService(app: self) }
    /// Workspace keys.
    public var keys: KeyService { KeyService(app: self) }
    /// Plans and their default limits.
    public var plans: PlanService { PlanService(app: self) }
    /// Guided rotations of keys under their stable ids.
    public var keyRotation: KeyRotationService { KeyRotationService(app: self) }
    /// Webhooks, SMTP settings, key status events.
    public var notifications: NotificationSettingsService { NotificationSettingsService(app: self) }
    /// Reading the audit log.
    public var auditQuery: AuditQueryService { AuditQueryService(app: self) }
    /// Resolution and bindings.
    public var resolution: ResolutionService { ResolutionService(app: self) }
    /// Chat routes (the unified face's fallback across providers).
    public var routes: RouteService { RouteService(app: self) }
    /// The usage ledger.
    public var usage: UsageService { UsageService(app: self) }
    /// The request log: each call with its key's and workspace's names.
    public var requestLog: RequestLogService { RequestLogService(app: self) }
    /// Admin UI sessions.
    public var sessions: SessionService { SessionService(app: self) }
    /// Each workspace's custody log.
    public var custody: CustodyService { CustodyService(app: self) }

    /// Opens the store and brings the application's state up: the catalog seeded, and on a first run the first
    /// platform-admin token issued (both audited).
    public static func open(_ configuration: StoreConfiguration, createIfMissing: Bool, logger: Logger) async throws -> (AppServices, OpenReport) {
        let (store, opened) = try await Store.open(configuration, createIfMissing: createIfMissing, logger: logger)
        var report = opened
        let app = AppServices(store: store)
        do {
            report.seed = try await app.seedCatalog()
            if report.createdDatabase {
                report.adminToken = try await store.engine.transaction { db in
                    try await app.issueToken(name: "initial platform admin", kind: .platformAdmin, actor: "system", on: db).0
                }
            }
            return (app, report)
        } catch {
            await store.close()
            throw error
        }
    }

    /// Inserts missing catalog providers and moves still-seeded values to the catalog's seeds.
    public func seedCatalog() async throws -> SeedReport {
        let catalog = store.configuration.catalog
        let (providers, audit) = (store.providers, store.audit)
        return try await store.engine.transaction { db in
            let report = try await providers.seed(catalog, on: db)
            if !report.inserted.isEmpty || !report.reseeded.isEmpty {
                try await audit.append(AuditEvent(
                    actor: "system", action: "catalog.seeded", targetType: "catalog",
                    details: ["inserted": report.inserted.joined(separator: ","), "reseeded": report.reseeded.joined(separator: ",")]
                ), on: db)
            }
            return report
        }
    }

    /// A rotation of the master key over this store.
    public func rotation() -> MasterKeyRotation {
        MasterKeyRotation(engine: store.engine, vault: store.vault, source: store.configuration.keyringSource, logger: store.logger)
    }

    /// Writes this instance's heartbeat and gives back dead instances' budget holds, when due (PostgreSQL; the
    /// gateway's usage ledger calls it on each of its rounds).
    public func keepBudgetHolds() async {
        guard !isSingleProcess else { return }
        await holdKeeper.round(store: store)
    }

    /// Whether the database answers (for `/readyz`): a serving instance reads it from its change follower, which asks the
    /// database every 250 ms (so `/readyz` never queues for a connection, however often it is asked); another process
    /// asks the database with a 1 s deadline.
    public func ping() async -> Bool {
        if let answered = follower.databaseAnswered(within: .seconds(2)) { return answered }
        return await store.ping()
    }

    /// Stops following changes, lets the last-used writes under way finish, and closes the database.
    public func close() async {
        follower.stop()
        // The minutes under way are appended now (the usage rows were written before: the gateway drained first).
        do { try await custody.appendTallied(everything: true) } catch {
            store.logger.warning("custody: gateway calls of the last minutes were not appended", metadata: ["error": "\(error)", "slots": "\(custodyTally.pending)"])
        }
        await tokenUsage.close()
        await store.close()
    }
}
