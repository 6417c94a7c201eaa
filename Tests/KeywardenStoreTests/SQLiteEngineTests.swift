import Foundation
import Logging
import SQLKit
import Testing
@testable import KeywardenStore

@Suite("SQLite engine")
struct SQLiteEngineTests {
    @Test("writes blocked on another connection's lock, more of them than there are cores, hold only their own threads: another engine answers meanwhile")
    func blockedWritersHoldOnlyTheirOwnThreads() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kw-sqlite-threads-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let logger = Logger(label: "test")
        let lockedPath = directory.appendingPathComponent("locked.sqlite").path
        // The waiters wait for the lock (SQLite's busy timeout is the operation's deadline) far longer than the other
        // engine can take to answer on a loaded machine.
        let patient = DatabaseTimeouts(operation: .seconds(60))
        let holder = try await SQLiteEngine(path: lockedPath, readers: 1, timeouts: patient, logger: logger)
        // More blocked writers than NIO's shared thread pool has threads (one per core).
        var waiters: [SQLiteEngine] = []
        for _ in 0...ProcessInfo.processInfo.activeProcessorCount {
            waiters.append(try await SQLiteEngine(path: lockedPath, readers: 1, timeouts: patient, logger: logger))
        }
        let other = try await SQLiteEngine(path: directory.appendingPathComponent("other.sqlite").path, readers: 1, timeouts: patient, logger: logger)

        let answered = Flag()
        let waiterDone = Flag()
        let (held, holding) = AsyncStream.makeStream(of: Void.self)
        let holderTask = Task {
            try await holder.transaction(changesState: false) { db in
                try await db.raw("CREATE TABLE IF NOT EXISTS t (x INTEGER)").run()
                holding.yield()
                // The lock is held (no thread is) until the other engine answered. Were its calls to share a pool the
                // waiters hold, that would be only once a waiter gave up (its busy timeout): the order of the two
                // tells, whatever the machine's load, and the waiters' failure too.
                while await !answered.isSet {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
        }
        for await _ in held { break }
        // Each waiter's BEGIN IMMEDIATE sleeps in SQLite's busy handler, on a thread, until the holder commits.
        let waiting = waiters.map { engine in
            Task {
                do {
                    try await engine.transaction(changesState: false) { db in try await db.raw("INSERT INTO t (x) VALUES (1)").run() }
                    await waiterDone.set()
                } catch {
                    await waiterDone.set()
                    throw error
                }
            }
        }
        try await Task.sleep(for: .milliseconds(500))

        let one = try await other.read { db in try await db.raw("SELECT 1 AS one").first()?.decode(column: "one", as: Int.self) }
        let answeredWhileWaitersBlocked = await !waiterDone.isSet
        await answered.set()
        #expect(one == 1)
        #expect(answeredWhileWaitersBlocked, "the other engine answered only once a waiter gave up: its call waited for a thread")

        try await holderTask.value
        for task in waiting { try await task.value }
        let rows = try await holder.read { db in try await db.raw("SELECT count(*) AS n FROM t").first()?.decode(column: "n", as: Int.self) }
        #expect(rows == waiters.count)
        for engine in waiters + [holder, other] { await engine.close() }
    }

    @Test("a connection waits for another's write lock as long as an operation may take (KEYWARDEN_DATABASE_TIMEOUT), SQLite's int at most")
    func busyTimeoutIsTheOperationDeadline() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kw-sqlite-busy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (operation, expected) in [(Duration.seconds(10), 10_000), (.milliseconds(2_500), 2_500), (.seconds(90), 90_000)] {
            let engine = try await SQLiteEngine(
                path: directory.appendingPathComponent("\(expected).sqlite").path, readers: 1,
                timeouts: DatabaseTimeouts(operation: operation), logger: Logger(label: "test")
            )
            let writer = try await engine.transaction(changesState: false) { db in
                try await db.raw("PRAGMA busy_timeout").first()?.decode(column: "timeout", as: Int.self)
            }
            let reader = try await engine.read { db in try await db.raw("PRAGMA busy_timeout").first()?.decode(column: "timeout", as: Int.self) }
            await engine.close()
            #expect(writer == expected)
            #expect(reader == expected)
        }
        #expect(SQLiteEngine.connectionPragmas(readOnly: false, busyTimeout: .seconds(Int64.max / 2)).contains("PRAGMA busy_timeout = \(Int32.max)"))
        #expect(SQLiteEngine.connectionPragmas(readOnly: true, busyTimeout: .seconds(-1)).contains("PRAGMA busy_timeout = 0"))
    }
}
