import Foundation
import KeywardenCore
import KeywardenProviders
import KeywardenStore
import Logging
import ServiceLifecycle

/// How often and how hard the background checks run.
public struct HealthCheckSettings: Sendable {
    /// How long a key's last verification stays fresh (default 6 h).
    public var interval: Duration
    /// Each key's interval is moved by up to this fraction, so checks spread out.
    public var jitter: Double
    /// The most checks in flight at once.
    public var concurrency: Int
    /// How often the service looks for due keys.
    public var tick: Duration
    /// After a key's vendor is unreachable, that key's next checks wait this long, doubling up to `maximumBackoff`
    /// (per key: a workspace whose endpoint is down does not hold back the checks of anyone else's keys).
    public var initialBackoff: Duration
    public var maximumBackoff: Duration
    /// An on-demand check (after the gateway saw a 401) is skipped if the key was checked this recently.
    public var recheckGuard: Duration
    /// Whether every active key is checked on ``interval`` (`KEYWARDEN_HEALTH_INTERVAL=0` turns it off).
    public var periodic: Bool
    /// How soon an active key recorded `quota_exceeded` is checked again (default 15 min, at most ``interval``; `nil`:
    /// only with the others), periodic checks on or off: an account's quota comes back (a new day, a payment), and so
    /// must the key, by itself.
    public var quotaRecheck: Duration?

    public init(
        interval: Duration = .seconds(6 * 3600), jitter: Double = 0.1, concurrency: Int = 4, tick: Duration = .seconds(30),
        initialBackoff: Duration = .seconds(60), maximumBackoff: Duration = .seconds(3600), recheckGuard: Duration = .seconds(60),
        quotaRecheck: Duration? = .seconds(15 * 60), periodic: Bool = true
    ) {
        self.interval = interval
        self.periodic = periodic
        self.quotaRecheck = quotaRecheck.map { periodic ? min($0, interval) : $0 }
        self.jitter = jitter
        self.concurrency = max(1, concurrency)
        self.tick = tick
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
        self.recheckGuard = recheckGuard
    }
}

/// Re-verifies every active key on an interval (jittered, bounded concurrency, never two checks of
/// one key at once), and on demand after the gateway sees a key fail. A key whose vendor is
/// unreachable backs off, so an outage does not become a storm of checks.
public final class HealthCheckService: Service, Sendable {
    let verification: KeyVerificationService
    let app: AppServices
    var store: Store { app.store }
    let settings: HealthCheckSettings
    let logger: Logger
    let state = HealthState()
    /// Probes asked for by the gateway, in all: each key at most once per `recheckGuard`, and a storm of refusals
    /// across many keys does not become a storm of verification calls.
    let probeLimiter = RateLimiter(.init(limit: 120, per: .seconds(60)))

    public init(verification: KeyVerificationService, app: AppServices, settings: HealthCheckSettings, logger: Logger) {
        self.verification = verification
        self.app = app
        self.settings = settings
        self.logger = logger
    }

    public func run() async throws {
        await PeriodicRounds.run(every: settings.tick, logger: logger, failure: "health check round failed") { try await self.checkDueKeys() }
    }

    /// Asks for a check of one key soon (the gateway calls this after a 401, 403 or quota error).
    public func requestCheck(credentialID: String) {
        guard probeLimiter.acquire("probe") == nil else {
            logger.debug("probe skipped: too many lately", metadata: ["credential": "\(credentialID)"])
            return
        }
        Task { [self] in
            guard await state.begin(credentialID, unlessCheckedWithin: settings.recheckGuard) else { return }
            defer { Task { await state.end(credentialID) } }
            do {
                try await check(credentialID: credentialID)
            } catch {
                logger.warning("on-demand check failed", metadata: ["credential": "\(credentialID)", "error": "\(String(describing: error))"])
            }
        }
    }

    /// One round: every active key whose last check is older than its (jittered) interval.
    public func checkDueKeys(now: Date = Date()) async throws {
        let due = try await dueCredentials(now: now)
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for (credential, model) in due {
                guard await state.available(credential.id, now: ContinuousClock.now) else { continue }
                // Several instances on one database: the one that takes the key's lease checks it this round.
                guard (try? await claim(credential)) == true else { continue }
                guard await state.begin(credential.id, unlessCheckedWithin: nil) else { continue }
                if running >= settings.concurrency {
                    await group.next()
                    running -= 1
                }
                running += 1
                group.addTask { [self] in
                    defer { Task { await state.end(credential.id) } }
                    await run(credential, defaultModel: model)
                    await release(credential)
                }
            }
        }
    }

    /// How long a check's lease is held (longer than any verification call).
    static let lease: TimeInterval = 120

    /// Takes the key's lease from the time of the claim (a long round must not take a lease already run out).
    func claim(_ credential: Credential) async throws -> Bool {
        let credentials = store.credentials
        let now = Date()
        return try await store.engine.transaction(changesState: false) { db in
            try await credentials.claimHealthCheck(credential, now: now, until: now.addingTimeInterval(Self.lease), on: db)
        }
    }

    /// Gives the key's lease back after its check.
    func release(_ credential: Credential) async {
        let credentials = store.credentials
        do {
            try await store.engine.transaction(changesState: false) { db in try await credentials.releaseHealthCheck(credential.id, on: db) }
        } catch {
            logger.debug("health lease not released (it runs out by itself)", metadata: ["credential": "\(credential.id)", "error": "\(String(describing: error))"])
        }
    }

    func check(credentialID: String) async throws {
        guard let credential = try await store.engine.read({ db in try await self.store.credentials.get(credentialID, on: db) }) else { return }
        let model = try await defaultModel(for: credential)
        await run(credential, defaultModel: model)
    }

    func run(_ credential: Credential, defaultModel: String?) async {
        do {
            let result = try await verification.verify(credential, defaultModel: defaultModel, actor: KeyVerificationService.healthCheckActor)
            if result.status == .unreachable {
                await state.failed(credential.id, now: ContinuousClock.now, initial: settings.initialBackoff, maximum: settings.maximumBackoff)
            } else {
                await state.answered(credential.id)
            }
        } catch {
            logger.debug("key not checked", metadata: ["credential": "\(credential.id)", "error": "\(String(describing: error))"])
        }
    }

    /// Active keys due for a check, with the default model each is checked against.
    func dueCredentials(now: Date) async throws -> [(Credential, String?)] {
        guard settings.periodic || settings.quotaRecheck != nil else { return [] }
        let (cards, _) = try await app.platformCards.cards()
        var due: [(Credential, String?)] = []
        for card in cards where card.state.active && card.provider.verification.available {
            if let credential = card.credential, isDue(credential, now: now) { due.append((credential, card.state.defaultModel)) }
        }
        // Only keys that may be due (checked before the earliest jittered interval ends), a bounded number per round.
        let cutoff = now.addingTimeInterval(-Self.seconds(settings.interval) * (1 - settings.jitter))
        let quotaCutoff = settings.quotaRecheck.map { now.addingTimeInterval(-Self.seconds($0) * (1 - settings.jitter)) }
        let periodic = settings.periodic
        let workspaceKeys = try await store.engine.read { db in
            periodic ? try await self.store.credentials.dueForCheck(before: cutoff, quotaExceededBefore: quotaCutoff, limit: Self.keysPerRound, on: db)
                : try await self.store.credentials.quotaExceededDue(before: quotaCutoff ?? .distantPast, limit: Self.keysPerRound, on: db)
        }
        for credential in workspaceKeys where credential.active && isDue(credential, now: now) {
            if store.catalog.provider(credential.providerID)?.verification.available == true {
                due.append((credential, credential.defaultModel))
            }
        }
        return due
    }

    /// A duration in seconds, fractions kept.
    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Workspace keys read per round; the rest are read by the next rounds.
    static let keysPerRound = 2_000

    func isDue(_ credential: Credential, now: Date) -> Bool {
        // A spent quota is looked at again sooner: the key comes back when the vendor's quota does.
        let quota = credential.status == .quotaExceeded ? settings.quotaRecheck : nil
        guard settings.periodic || quota != nil else { return false }
        guard let last = credential.lastVerifiedAt else { return true }
        let interval = Self.seconds(quota ?? settings.interval)
        // A stable per-key jitter (FNV-1a of the id): the same key is always due at the same offset.
        let hash = credential.id.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
        let spread = Double(hash % 1000) / 1000 * 2 - 1
        return now.timeIntervalSince(last) >= interval * (1 + settings.jitter * spread)
    }

    func defaultModel(for credential: Credential) async throws -> String? {
        if credential.scope == .platform { return try await app.platformCards.card(credential.providerID).state.defaultModel }
        return credential.defaultModel
    }
}

/// Which keys are being checked and which are backing off.
actor HealthState {
    private var inFlight = Set<String>()
    private var lastChecked: [String: ContinuousClock.Instant] = [:]
    private var backoff: [String: (until: ContinuousClock.Instant, delay: Duration)] = [:]

    /// Marks a key as being checked; false if it already is (or was checked within `within`).
    func begin(_ id: String, unlessCheckedWithin within: Duration?) -> Bool {
        guard !inFlight.contains(id) else { return false }
        if let within, let last = lastChecked[id], ContinuousClock.now - last < within { return false }
        inFlight.insert(id)
        return true
    }

    func end(_ id: String) {
        inFlight.remove(id)
        lastChecked[id] = .now
    }

    func available(_ id: String, now: ContinuousClock.Instant) -> Bool {
        guard let entry = backoff[id] else { return true }
        return now >= entry.until
    }

    func failed(_ id: String, now: ContinuousClock.Instant, initial: Duration, maximum: Duration) {
        let delay = backoff[id].map { min($0.delay * 2, maximum) } ?? initial
        backoff[id] = (now + delay, delay)
    }

    func answered(_ id: String) {
        backoff[id] = nil
    }

    var checking: Int { inFlight.count }
}
