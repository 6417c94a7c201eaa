/// When a cached value was made, and the rule for trusting it: this process has committed nothing since
/// (the engine's change counter), and it is at most a second old (another process may have written).
struct CacheStamp: Sendable {
    static let maximumAge: Duration = .seconds(1)
    let generation: UInt64
    let madeAt: ContinuousClock.Instant

    init(generation: UInt64, madeAt: ContinuousClock.Instant = .now) {
        self.generation = generation
        self.madeAt = madeAt
    }

    func isFresh(generation current: UInt64) -> Bool {
        generation == current && ContinuousClock.now - madeAt < Self.maximumAge
    }
}
