import Foundation
import KeywardenCore
import KeywardenStore
import Logging
import Synchronization

/// Applies the change log to this instance's caches: after a change of this process (before the writing call
/// returns), when another instance announces one (PostgreSQL `NOTIFY`), and on a short poll of the log's newest
/// number (another process on SQLite, or a lost notification). Each change reloads only the scope it names.
final class ChangeFollower: Sendable {
    /// How often the log's newest number is read when nothing announced a change.
    static let pollInterval: Duration = .milliseconds(250)
    /// Changes read per round trip.
    static let batch = 1_000

    private struct State {
        /// The last change applied; `nil` until the first pass.
        var applied: Int64?
        /// The pass running or queued last; passes run one after another.
        var tail: Task<Void, Never>?
        var poller: Task<Void, Never>?
        var compactedAt: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let app: AppServicesReference

    init(app: AppServicesReference) {
        self.app = app
    }

    /// The last change applied here.
    var applied: Int64? { state.withLock { $0.applied } }

    /// Applies every change committed so far; returns when they are applied.
    func catchUp() async {
        let task: Task<Void, Never> = state.withLock { state in
            let previous = state.tail
            let task = Task { [self] in
                await previous?.value
                await self.pass()
            }
            state.tail = task
            return task
        }
        await task.value
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
        state.withLock { $0.poller = poller }
    }

    func stop() {
        state.withLock { $0.poller?.cancel() }
    }

    /// One pass: reads the changes after the last applied one, applies each scope once, moves the mark.
    private func pass() async {
        guard let services = app.services else { return }
        let engine = services.store.engine
        do {
            guard let applied = state.withLock({ $0.applied }) else {
                // The first pass: what is cached was read after the newest change (or is read later).
                let latest = try await engine.read { db in try await ChangeLog.latest(on: db) }
                services.resolutionState.invalidateAll()
                services.tokenCache.invalidateAll()
                try await services.resolution.reloadPlatform()
                state.withLock { $0.applied = max($0.applied ?? 0, latest) }
                return
            }
            var position = applied
            while true {
                let from = position
                let changes = try await engine.read { db in try await ChangeLog.since(from, limit: Self.batch, on: db) }
                guard let last = changes.last else { break }
                // Numbers have no gaps: a first one past the next means the log was compacted beyond this instance.
                var scopes = Set(changes.map(\.scope))
                if let first = changes.first, first.seq != position + 1 { scopes = [.everything] }
                try await apply(scopes, services: services)
                position = last.seq
                state.withLock { $0.applied = position }
                if changes.count < Self.batch { break }
            }
            try await compactIfDue(services: services)
        } catch {
            // Not applied: the next pass tries again from the same place (the caches keep their parts meanwhile).
            services.store.logger.warning("resolution: the change log could not be applied", metadata: ["error": "\(error)"])
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
        var workspaces: Set<String> = []
        for scope in scopes {
            switch scope {
            case .workspace(let id): workspaces.insert(id)
            case .credential(let id):
                switch cache.owner(of: id) {
                case .workspace(let workspaceID): workspaces.insert(workspaceID)
                case .platform: platform = true
                case nil: cache.invalidateLoadsInFlight()
                }
            case .platform: platform = true
            case .token(let id): services.tokenCache.invalidate(tokenID: id)
            case .tokens: services.tokenCache.invalidateAll()
            case .uncached, .everything: break
            }
        }
        if platform { try await resolution.reloadPlatform() }
        for id in workspaces where cache.invalidate(workspace: id) {
            // A workspace in use is read again now, so its next call does not wait for it.
            _ = try? await resolution.loadWorkspace(id)
        }
    }

    /// Drops log entries older than an hour, at most once a minute (any instance may; the newest entry stays).
    private func compactIfDue(services: AppServices) async throws {
        let due = state.withLock { state -> Bool in
            if let last = state.compactedAt, ContinuousClock.now - last < .seconds(60) { return false }
            state.compactedAt = .now
            return true
        }
        guard due else { return }
        try await services.store.engine.transaction(changesState: false) { db in
            try await ChangeLog.compact(olderThan: Date().addingTimeInterval(-3600), on: db)
        }
    }
}

/// A weak reference from a cache's helper back to the services that own it.
final class AppServicesReference: Sendable {
    private let reference = Mutex<WeakBox>(WeakBox())
    private struct WeakBox { weak var value: AppServices? }

    var services: AppServices? { reference.withLock { $0.value } }

    func set(_ services: AppServices) { reference.withLock { $0.value = services } }
}
