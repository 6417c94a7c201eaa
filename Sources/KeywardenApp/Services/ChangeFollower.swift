import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import Logging
import Synchronization

/// Applies the change log to this instance's caches: after a change of this process (before the writing call
/// returns), when another instance announces one (PostgreSQL `NOTIFY`), and on a short poll of the log's newest
/// number (another process on SQLite, or a lost notification). Each change reloads only the scope it names.
///
/// Each pass that reads the log to its end **confirms** that what this instance holds was current when the pass began.
/// Passes run on connections of their own (``DatabaseLane/following``) and every database operation has a deadline, so
/// a fault fails a pass instead of stopping the ones after it; the poll catches up by itself once the database
/// answers. Until then, ``isCurrent`` turns false once the last confirmation is older than the staleness bound, and
/// the gateway stops serving from what it holds (a key deactivated elsewhere is never used past the bound).
final class ChangeFollower: Sendable {
    /// How often the log's newest number is read when nothing announced a change.
    static let pollInterval: Duration = .milliseconds(250)
    /// Changes read per round trip.
    static let batch = 1_000
    /// Entries kept when compacting (an instance further behind reloads everything).
    static let kept = 100_000
    /// The longest a writing call waits for its change to be applied here (a stalled database must not hold every
    /// write that already committed; the poll applies it later).
    static let commitWait: Duration = .seconds(5)

    /// Set while a pass runs, so a write made by a pass never waits for the passes (it would wait for itself).
    @TaskLocal static var inPass = false

    private struct State {
        /// The last change applied; `nil` until the first pass.
        var applied: Int64?
        /// The pass running or queued last; passes run one after another.
        var tail: Task<Void, Never>?
        /// A pass queued and not started yet: later callers join it (it will read their changes too).
        var queued: Task<Void, Never>?
        var poller: Task<Void, Never>?
        var compactedAt: ContinuousClock.Instant?
        /// When the last pass that read the log to its end began: everything committed before it is applied.
        var confirmedAt: ContinuousClock.Instant?
        /// Whether the poll runs (a serving instance); a process that does not follow is not judged stale.
        var following = false
        /// When the database last answered a pass (every 250 ms while it answers).
        var answeredAt: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let app: AppServicesReference
    /// How long what this instance holds may serve without a confirmation (`KEYWARDEN_STALE_AFTER`).
    let staleAfter: Duration

    init(app: AppServicesReference, staleAfter: Duration) {
        self.app = app
        self.staleAfter = staleAfter
    }

    /// The last change applied here.
    var applied: Int64? { state.withLock { $0.applied } }

    /// Whether a pass confirmed, within the staleness bound, that what this instance holds is current.
    var isCurrent: Bool {
        state.withLock { state in
            guard state.following else { return true }
            return state.confirmedAt.map { ContinuousClock.now - $0 <= staleAfter } ?? false
        }
    }

    /// Whether the database answered a pass within `window` (`nil`: this process does not follow, so it cannot say).
    func databaseAnswered(within window: Duration) -> Bool? {
        state.withLock { state in
            guard state.following else { return nil }
            return state.answeredAt.map { ContinuousClock.now - $0 <= window } ?? false
        }
    }

    /// How long ago the last confirmation began (`nil`: never).
    var sinceConfirmed: Duration? { state.withLock { $0.confirmedAt.map { ContinuousClock.now - $0 } } }

    /// Applies every change committed so far; returns when they are applied.
    func catchUp() async {
        let task: Task<Void, Never> = state.withLock { state in
            if let queued = state.queued { return queued }
            let previous = state.tail
            let task = Task { [self] in
                await previous?.value
                self.state.withLock { $0.queued = nil }
                await ChangeFollower.$inPass.withValue(true) {
                    await DatabaseLane.$current.withValue(.following) { await self.pass() }
                }
            }
            state.tail = task
            state.queued = task
            return task
        }
        await task.value
    }

    /// What runs after a commit of this process: the change is applied before the writing call returns, unless that
    /// takes longer than ``commitWait`` (then the poll applies it).
    func afterCommit() async {
        guard !Self.inPass else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let gate = ResumeOnce(continuation)
            let timer = Task { try? await Task.sleep(for: Self.commitWait); gate.resume() }
            Task {
                await self.catchUp()
                gate.resume()
                timer.cancel()
            }
        }
    }

    /// Starts following: woken by other instances' announcements, and polling the log.
    func start() {
        guard let services = app.services else { return }
        services.store.engine.listen(.changes) { [self] _ in Task { await self.catchUp() } }
        let poller = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.pollInterval)
                await self.catchUp()
            }
        }
        state.withLock { state in
            state.poller = poller
            state.following = true
        }
    }

    func stop() {
        state.withLock { $0.poller?.cancel() }
    }

    /// One pass: reads the log's newest number (one indexed read), and when it moved, the changes after the last
    /// applied one; applies each scope once; moves the mark.
    private func pass() async {
        guard let services = app.services else { return }
        let engine = services.store.engine
        let began = ContinuousClock.now
        do {
            let latest = try await engine.read { db in try await ChangeLog.latest(on: db) }
            state.withLock { $0.answeredAt = .now }
            guard let applied = state.withLock({ $0.applied }), latest >= applied else {
                // The first pass, or a log that went back (a restored database): what is held was read before it.
                try await apply([.everything], services: services)
                state.withLock { $0.applied = latest }
                confirm(began)
                return
            }
            var position = applied
            while position < latest {
                let from = position
                let changes = try await engine.read { db in try await ChangeLog.since(from, limit: Self.batch, on: db) }
                guard let last = changes.last else { break }
                var scopes = Set(changes.map(\.scope))
                // Numbers have no holes: one (the log compacted beyond this instance) means something was missed.
                var expected = position + 1
                for change in changes {
                    if change.seq != expected { scopes = [.everything]; break }
                    expected += 1
                }
                do {
                    try await apply(scopes, services: services)
                } catch {
                    // What could not be read again is not kept: the next call reads it, the next pass retries.
                    services.resolutionState.invalidateAll()
                    services.tokenCache.invalidateAll()
                    throw error
                }
                position = last.seq
                state.withLock { $0.applied = position }
                if changes.count < Self.batch { break }
            }
            if position >= latest { confirm(began) }
            try await compactIfDue(services: services)
        } catch {
            // Not applied: the next pass tries again from the same place.
            services.store.logger.warning("resolution: the change log could not be applied", metadata: ["error": "\(error)"])
        }
    }

    /// Notes that everything committed before `began` is applied.
    private func confirm(_ began: ContinuousClock.Instant) {
        state.withLock { state in
            if state.confirmedAt.map({ $0 < began }) ?? true { state.confirmedAt = began }
        }
    }

    private func apply(_ scopes: Set<ChangeScope>, services: AppServices) async throws {
        let resolution = services.resolution
        let cache = services.resolutionState
        if scopes.contains(.everything) {
            cache.invalidateAll()
            services.tokenCache.invalidateAll()
            try await resolution.reloadPlatform()
            return
        }
        var platform = false
        var reload: [String: [String: SealedSecret]] = [:]
        for scope in scopes {
            switch scope {
            case .workspace(let id):
                if let old = cache.invalidate(workspace: id) { reload[id] = old.sealed }
            case .credential(let id):
                // The workspace's part was dropped with the key; the secrets held are compared after its next read.
                if let previous = cache.workspace(forCredential: id) { reload[previous.resolution.id] = previous.sealed }
                switch cache.invalidate(credential: id) {
                case .workspace: break
                case .platform: platform = true
                case nil: break
                }
            case .platform: platform = true
            case .token(let id): services.tokenCache.invalidate(tokenID: id)
            case .tokens: services.tokenCache.invalidateAll()
            case .uncached, .everything: break
            }
        }
        var replaced: [String] = []
        if platform {
            let old = cache.platform?.sealed ?? [:]
            replaced += Self.replacedKeys(old: old, new: try await resolution.reloadPlatform().sealed)
        }
        // A workspace in use is read again now, so its next call does not wait for it.
        for (id, old) in reload {
            if let part = try? await resolution.loadWorkspace(id) { replaced += Self.replacedKeys(old: old, new: part.sealed) }
        }
        if !replaced.isEmpty { services.keysReplaced(replaced) }
    }

    /// Keys held before and after whose sealed secret is another one (a new key was saved for them).
    static func replacedKeys(old: [String: SealedSecret], new: [String: SealedSecret]) -> [String] {
        old.compactMap { entry -> String? in
            guard entry.key.hasSuffix("/" + CredentialRepository.keyField), let now = new[entry.key], now.ciphertext != entry.value.ciphertext else { return nil }
            return String(entry.key.dropLast(CredentialRepository.keyField.count + 1))
        }
    }

    /// Keeps the newest ``kept`` entries, at most once a minute (any instance may; a range delete on the key).
    private func compactIfDue(services: AppServices) async throws {
        let due = state.withLock { state -> Bool in
            if let last = state.compactedAt, ContinuousClock.now - last < .seconds(60) { return false }
            state.compactedAt = .now
            return true
        }
        guard due else { return }
        try await services.store.engine.transaction(changesState: false) { db in
            try await ChangeLog.compact(keeping: Self.kept, on: db)
        }
    }
}

/// Resumes a continuation once, whichever of several tasks comes first.
private final class ResumeOnce: Sendable {
    private let continuation: CheckedContinuation<Void, Never>
    private let done = Mutex(false)

    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }

    func resume() {
        let first = done.withLock { done in
            defer { done = true }
            return !done
        }
        if first { continuation.resume() }
    }
}

/// A weak reference from a cache's helper back to the services that own it.
final class AppServicesReference: Sendable {
    private let reference = Mutex<WeakBox>(WeakBox())
    private struct WeakBox { weak var value: AppServices? }

    var services: AppServices? { reference.withLock { $0.value } }

    func set(_ services: AppServices) { reference.withLock { $0.value = services } }
}
