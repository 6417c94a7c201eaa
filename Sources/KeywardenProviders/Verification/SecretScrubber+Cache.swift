import Synchronization

extension SecretScrubber {
    /// Scrubbers for the secrets calls used lately, so a call does not build its own (about 15 µs for a long key).
    ///
    /// A scrubber's table can rebuild the secrets it was made for: the cache holds them in memory only (as the opened
    /// keyring and the vendor connections' requests do), never writes them anywhere, keeps at most `capacity` of them and
    /// none longer than `lifetime`.
    public final class Cache: Sendable {
        private struct Entry {
            let scrubber: SecretScrubber
            let built: ContinuousClock.Instant
        }

        private let entries = Mutex<[[String]: Entry]>([:])
        private let capacity: Int
        private let lifetime: Duration

        public init(capacity: Int = 1024, lifetime: Duration = .seconds(60)) {
            self.capacity = capacity
            self.lifetime = lifetime
        }

        /// The scrubber for `secrets`: a recent one, or one built now.
        public func scrubber(for secrets: [String]) -> SecretScrubber {
            guard !secrets.isEmpty else { return SecretScrubber(secrets: []) }
            let now = ContinuousClock.now
            if let entry = entries.withLock({ $0[secrets] }), now - entry.built < lifetime { return entry.scrubber }
            let scrubber = SecretScrubber(secrets: secrets)
            entries.withLock { entries in
                if entries.count >= capacity {
                    entries = entries.filter { now - $0.value.built < lifetime }
                    if entries.count >= capacity { entries.removeAll() }
                }
                entries[secrets] = Entry(scrubber: scrubber, built: now)
            }
            return scrubber
        }

        /// How many scrubbers are held.
        var count: Int { entries.withLock { $0.count } }

        /// Forgets every scrubber (their secrets with them).
        public func removeAll() {
            entries.withLock { $0.removeAll() }
        }
    }
}
