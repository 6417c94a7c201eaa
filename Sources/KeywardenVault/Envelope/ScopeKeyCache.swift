import Crypto
import KeywardenCore
import Synchronization

/// Scope keys in the clear, each kept for a bounded time, at most a bounded number.
///
/// A key is dropped when its time is up (the next use unwraps it again through the custodian, so a key the device no
/// longer opens stops working within this bound), when the cache is full (the ones closest to expiring go first), or
/// when its scope is shredded. A dropped key's bytes are zeroed once no call still holds it.
final class ScopeKeyCache: Sendable {
    private struct Entry {
        let key: ScopeKey
        let expires: ContinuousClock.Instant
    }

    private let entries = Mutex<[String: Entry]>([:])
    let timeToLive: Duration
    let capacity: Int

    init(timeToLive: Duration, capacity: Int) {
        self.timeToLive = timeToLive
        self.capacity = max(1, capacity)
    }

    /// The key with this id, when held and not expired.
    func key(id: String) -> ScopeKey? {
        let now = ContinuousClock.now
        return entries.withLock { entries in
            guard let entry = entries[id] else { return nil }
            guard entry.expires > now else {
                entries[id] = nil
                return nil
            }
            return entry.key
        }
    }

    /// Holds `key` for the time to live.
    func hold(_ key: ScopeKey) {
        let now = ContinuousClock.now
        entries.withLock { entries in
            if entries.count >= capacity, entries[key.id] == nil {
                entries = entries.filter { $0.value.expires > now }
                if entries.count >= capacity {
                    // The ones closest to expiring go first: an eighth at a time, so a full cache does not sort per miss.
                    let drop = entries.sorted { $0.value.expires < $1.value.expires }.prefix(max(1, capacity / 8))
                    for (id, _) in drop { entries[id] = nil }
                }
            }
            entries[key.id] = Entry(key: key, expires: now.advanced(by: timeToLive))
        }
    }

    /// Drops the key with this id.
    func forget(id: String) {
        entries.withLock { $0[id] = nil }
    }

    /// Drops every key of `scope`.
    func forget(scope: Scope) {
        entries.withLock { $0 = $0.filter { $0.value.key.scope != scope } }
    }

    /// Drops every key.
    func removeAll() {
        entries.withLock { $0 = [:] }
    }

    /// How many keys are held (expired ones included until they are next looked at).
    var count: Int { entries.withLock { $0.count } }
}
