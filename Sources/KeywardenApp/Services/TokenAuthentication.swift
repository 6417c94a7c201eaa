import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import Synchronization

extension AppServices {
    /// The principal of a presented token, or `nil` for an unknown or revoked one.
    ///
    /// Answers come from a cache keyed by the token's digest (never the token), trusted while this
    /// process has committed nothing since and for at most a second, like the resolution snapshot:
    /// a revocation here takes effect on the next call, one made by another process within a second.
    public func authenticate(presented: String) async throws -> Principal? {
        let digest = AccessToken.digest(of: presented)
        let generation = store.engine.changes.value
        if let cached = tokenCache.lookup(digest, generation: generation) { return cached }
        let record = try await store.engine.read { db in try await self.store.tokens.find(presented: presented, on: db) }
        tokenCache.store(digest, principal: record?.principal, generation: generation)
        return record?.principal
    }
}

/// Token digests recently looked up, with their principal (or `nil`: not a live token).
final class TokenCache: Sendable {
    static let maximumEntries = 10_000
    private struct Entry {
        let principal: Principal?
        let stamp: CacheStamp
    }
    private let entries = Mutex<[String: Entry]>([:])

    /// `.some(nil)` is a cached "not a live token"; `nil` means "look it up".
    func lookup(_ digest: String, generation: UInt64) -> Principal?? {
        entries.withLock { entries -> Principal?? in
            guard let entry = entries[digest], entry.stamp.isFresh(generation: generation) else { return nil }
            return .some(entry.principal)
        }
    }

    func store(_ digest: String, principal: Principal?, generation: UInt64) {
        entries.withLock { entries in
            if entries.count >= Self.maximumEntries { entries.removeAll(keepingCapacity: true) }
            entries[digest] = Entry(principal: principal, stamp: CacheStamp(generation: generation))
        }
    }
}
