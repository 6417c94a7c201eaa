import KeywardenCore
import Testing
@testable import KeywardenApp
import KeywardenStore

@Suite("Snapshot cache")
struct SnapshotCacheTests {
    func entry(generation: UInt64, age: Duration = .zero) -> SnapshotCache.Entry {
        SnapshotCache.Entry(snapshot: ResolutionSnapshot(), sealed: [:], stamp: CacheStamp(generation: generation, madeAt: .now - age))
    }

    func kind(_ lookup: SnapshotCache.Lookup) -> String {
        switch lookup {
        case .fresh: "fresh"
        case .refreshing: "refreshing"
        case .reload: "reload"
        }
    }

    @Test("an old snapshot is rebuilt by one caller while the others use it; a local change makes every caller wait for a new one")
    func oneRebuildPerTurn() {
        let cache = SnapshotCache()
        #expect(kind(cache.lookup(generation: 1)) == "reload")
        cache.store(entry(generation: 1))
        #expect(kind(cache.lookup(generation: 1)) == "fresh")

        // Older than the age rule: the first caller rebuilds, the next ones are served the old one meanwhile.
        cache.store(entry(generation: 1, age: .seconds(2)))
        #expect(kind(cache.lookup(generation: 1)) == "reload")
        #expect(kind(cache.lookup(generation: 1)) == "refreshing")
        #expect(kind(cache.lookup(generation: 1)) == "refreshing")
        // A local commit: nobody is served the old snapshot.
        #expect(kind(cache.lookup(generation: 2)) == "reload")
        #expect(kind(cache.lookup(generation: 2)) == "reload")
        cache.store(entry(generation: 2))
        #expect(kind(cache.lookup(generation: 2)) == "fresh")
        // A slow rebuild of the older generation does not replace the newer snapshot.
        cache.store(entry(generation: 1))
        #expect(kind(cache.lookup(generation: 2)) == "fresh")

        // A rebuild that failed lets the next caller try again.
        cache.store(entry(generation: 2, age: .seconds(2)))
        #expect(kind(cache.lookup(generation: 2)) == "reload")
        cache.reloadFailed()
        #expect(kind(cache.lookup(generation: 2)) == "reload")
    }
}
