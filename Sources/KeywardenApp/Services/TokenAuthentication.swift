import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import Synchronization

extension AppServices {
    /// The principal of a presented token, or `nil` for an unknown or revoked one.
    ///
    /// Answers come from a cache keyed by the token's digest (never the token), kept until a change touches the
    /// token (the change log) and at most 5 s: a revocation here takes effect on the next call, one made by another
    /// process as soon as this instance applies it (within the change log's poll, 250 ms; on PostgreSQL, its
    /// announcement).
    public func authenticate(presented: String) async throws -> Principal? {
        let digest = AccessToken.digest(of: presented)
        if let cached = tokenCache.lookup(digest) { return cached }
        let mark = tokenCache.mark()
        let record = try await store.engine.read { db in try await self.store.tokens.find(presented: presented, on: db) }
        tokenCache.store(digest, principal: record?.principal, readAfter: mark)
        return record?.principal
    }
}

/// Token digests recently looked up, with their principal (or `nil`: not a live token).
final class TokenCache: Sendable {
    static let maximumEntries = 10_000
    /// An answer is read again after this long, whatever the change log says (a safety net if it stalls).
    static let maximumAge: Duration = .seconds(5)
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
