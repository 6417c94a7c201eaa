import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import Synchronization

extension AppServices {
    /// The principal of a presented token, or `nil` for an unknown or revoked one.
    ///
    /// Answers come from a cache keyed by the token's digest (never the token), kept until a change touches the
    /// token (the change log): a revocation here takes effect on the next call, one made by another process as soon
    /// as this instance applies it (within the change log's poll, 250 ms; on PostgreSQL, its announcement). The cache
    /// answers only while the instance is current (``isCurrent``), so it serves through a database outage up to the
    /// staleness bound and never past it; then tokens are read again (and the call fails fast while that cannot be).
    ///
    /// A live token's last use is noted (``TokenUsageRecorder``): at most once a minute per token, off the request path.
    public func authenticate(presented: String) async throws -> Principal? {
        let digest = AccessToken.digest(of: presented)
        if isCurrent, let cached = tokenCache.lookup(digest) {
            if let principal = cached { tokenUsage.used(principal.tokenID) }
            return cached
        }
        let mark = tokenCache.mark()
        let record = try await store.engine.read { db in try await self.store.tokens.find(presented: presented, on: db) }
        tokenCache.store(digest, principal: record?.principal, readAfter: mark)
        if let record { tokenUsage.used(record.id) }
        return record?.principal
    }
}

/// Writes tokens' last-used time (`tokens.last_used_at`): at most once a minute per token in this process, in a task of
/// its own so no request waits for it, in a transaction that changes no state (no cache reloads for it). A revoked
/// token is never written, and the time only moves forward (several instances may write it). A failed write is
/// logged and otherwise ignored: the next use after the minute tries again.
final class TokenUsageRecorder: Sendable {
    /// The shortest time between two writes for one token.
    static let interval: TimeInterval = 60
    /// Tokens remembered at most by default; when full, the memory is cleared (the cost: one extra write per token).
    static let maximumEntries = 10_000

    private struct State {
        /// When each token's last write was started.
        var written: [String: Date] = [:]
        /// The writes under way, so closing (and tests) can wait for them.
        var inFlight: [UInt64: Task<Void, Never>] = [:]
        var nextWrite: UInt64 = 0
        /// How many writes were started (for tests).
        var started = 0
        var closed = false
        var clock: @Sendable () -> Date = { Date() }
    }

    private let state = Mutex(State())
    private let store: Store
    /// Tokens remembered at most.
    let capacity: Int

    init(store: Store, capacity: Int = TokenUsageRecorder.maximumEntries) {
        self.store = store
        self.capacity = max(1, capacity)
    }

    /// Notes a use of a live token now; starts a write unless one was started for it less than a minute ago.
    func used(_ tokenID: String) {
        state.withLock { state in
            guard !state.closed else { return }
            let now = state.clock()
            if let last = state.written[tokenID], now >= last, now.timeIntervalSince(last) < Self.interval { return }
            if state.written.count >= capacity, state.written[tokenID] == nil { state.written.removeAll(keepingCapacity: true) }
            state.written[tokenID] = now
            state.started += 1
            let id = state.nextWrite
            state.nextWrite &+= 1
            state.inFlight[id] = Task.detached { [self] in
                await self.write(tokenID, at: now)
                self.state.withLock { _ = $0.inFlight.removeValue(forKey: id) }
            }
        }
    }

    private func write(_ tokenID: String, at date: Date) async {
        let at = Timestamp.string(date)
        do {
            try await store.engine.transaction(changesState: false) { db in
                try await self.store.tokens.markUsed(tokenID, at: at, on: db)
            }
        } catch {
            store.logger.warning("tokens: the last use of a token could not be written", metadata: ["token": "\(tokenID)", "error": "\(error)"])
        }
    }

    /// Returns when the writes started so far are done.
    func waitForWrites() async {
        let tasks = state.withLock { Array($0.inFlight.values) }
        for task in tasks { await task.value }
    }

    /// Starts no more writes and waits for those under way (before the store closes).
    func close() async {
        state.withLock { $0.closed = true }
        await waitForWrites()
    }

    /// How many writes were started.
    var writesStarted: Int { state.withLock { $0.started } }

    /// How many tokens are remembered.
    var remembered: Int { state.withLock { $0.written.count } }

    /// Replaces the clock (tests move time without waiting for it).
    func setClock(_ clock: @escaping @Sendable () -> Date) {
        state.withLock { $0.clock = clock }
    }
}

/// Token digests recently looked up, with their principal (or `nil`: not a live token).
final class TokenCache: Sendable {
    static let maximumEntries = 10_000
    /// An answer is read again after this long, whatever the change log says (a safety net; while the change log
    /// stalls, the instance is not current and the cache is not asked).
    static let maximumAge: Duration = .seconds(600)
    private struct Entry {
        let principal: Principal?
        let storedAt: ContinuousClock.Instant
    }
    private struct State {
        var entries: [String: Entry] = [:]
        /// Counts invalidations; a lookup that raced one is not kept.
        var invalidations: UInt64 = 0
    }
    private let state = Mutex(State())

    /// `.some(nil)` is a cached "not a live token"; `nil` means "look it up".
    func lookup(_ digest: String) -> Principal?? {
        state.withLock { state -> Principal?? in
            guard let entry = state.entries[digest], ContinuousClock.now - entry.storedAt < Self.maximumAge else { return nil }
            return .some(entry.principal)
        }
    }

    /// The mark to take before reading a token.
    func mark() -> UInt64 { state.withLock { $0.invalidations } }

    func store(_ digest: String, principal: Principal?, readAfter mark: UInt64) {
        state.withLock { state in
            guard state.invalidations == mark else { return }
            if state.entries.count >= Self.maximumEntries { state.entries.removeAll(keepingCapacity: true) }
            state.entries[digest] = Entry(principal: principal, storedAt: .now)
        }
    }

    /// A token changed: its entry goes, and every "not a live token" (it may be the new one).
    func invalidate(tokenID: String) {
        state.withLock { state in
            state.invalidations += 1
            state.entries = state.entries.filter { _, entry in entry.principal.map { $0.tokenID != tokenID } ?? false }
        }
    }

    func invalidateAll() {
        state.withLock { state in
            state.invalidations += 1
            state.entries.removeAll()
        }
    }
}
