import Foundation
import Logging
import SQLKit
import Testing
@testable import KeywardenStore

@Suite("SQLite engine")
struct SQLiteEngineTests {
    /// Whether something happened.
    actor Flag {
        private(set) var isSet = false
        func set() { isSet = true }
    }

    @Test("writes blocked on another connection's lock, more of them than there are cores, hold only their own threads: another engine answers meanwhile")
    func blockedWritersHoldOnlyTheirOwnThreads() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kw-sqlite-threads-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let logger = Logger(label: "test")
        let lockedPath = directory.appendingPathComponent("locked.sqlite").path
        let holder = try await SQLiteEngine(path: lockedPath, readers: 1, logger: logger)
        // More blocked writers than NIO's shared thread pool has threads (one per core).
        var waiters: [SQLiteEngine] = []
        for _ in 0...ProcessInfo.processInfo.activeProcessorCount {
            waiters.append(try await SQLiteEngine(path: lockedPath, readers: 1, logger: logger))
        }
        let other = try await SQLiteEngine(path: directory.appendingPathComponent("other.sqlite").path, readers: 1, logger: logger)

        let released = Flag()
        let answered = Flag()
        let (held, holding) = AsyncStream.makeStream(of: Void.self)
        let holderTask = Task {
            try await holder.transaction(changesState: false) { db in
                try await db.raw("CREATE TABLE IF NOT EXISTS t (x INTEGER)").run()
                holding.yield()
                // The lock is held (no thread is) until the other engine answered, or for 7 s (inside the busy timeout
                // and the deadline): an engine whose call waits for a thread the waiters hold answers only after this.
                let start = ContinuousClock.now
                while await !answered.isSet, ContinuousClock.now - start < .seconds(7) {
                    try await Task.sleep(for: .milliseconds(20))
                }
                await released.set()
            }
        }
        for await _ in held { break }
        // Each waiter's BEGIN IMMEDIATE sleeps in SQLite's busy handler, on a thread, until the holder commits.
        let waiting = waiters.map { engine in
            Task { try await engine.transaction(changesState: false) { db in try await db.raw("INSERT INTO t (x) VALUES (1)").run() } }
        }
        try await Task.sleep(for: .milliseconds(500))

        let one = try await other.read { db in try await db.raw("SELECT 1 AS one").first()?.decode(column: "one", as: Int.self) }
        let answeredWhileHeld = await !released.isSet
        await answered.set()
        #expect(one == 1)
        #expect(answeredWhileHeld, "the other engine answered only once the lock was let go: its call waited for a thread")

        try await holderTask.value
        for task in waiting { try await task.value }
        let rows = try await holder.read { db in try await db.raw("SELECT count(*) AS n FROM t").first()?.decode(column: "n", as: Int.self) }
        #expect(rows == waiters.count)
        for engine in waiters + [holder, other] { await engine.close() }
    }
}
