import Foundation
import KeywardenCore
import KeywardenTestSupport
import Logging
import NIOCore
import SQLKit
import Synchronization
import Testing
@testable import KeywardenStore

/// The PostgreSQL engine against a real server's faults: a backend terminated in the middle of a transaction (what
/// a restart does to every connection: `57P01`), a lock held past the deadline, a statement past it.
@Suite("PostgreSQL faults", .enabled(if: TestDatabase.postgresAvailable), .serialized)
struct PostgresFaultTests {
    static var logger: Logger {
        var logger = Logger(label: "pg-faults")
        logger.logLevel = .critical
        return logger
    }

    /// A fresh database and an engine on it with `timeout` as its operation deadline.
    func engine(timeout: Duration = .seconds(10)) async throws -> (PostgresEngine, String) {
        let url = try await TestDatabase.create()
        let engine = try await PostgresEngine(url: url, timeouts: DatabaseTimeouts(operation: timeout), logger: Self.logger)
        try await Migrator().migrate(engine, logger: Self.logger)
        return (engine, url)
    }

    @Test("a backend terminated in the middle of a write transaction answers store_unavailable at once (its ROLLBACK is not left waiting), and the next operation is served")
    func terminatedBackendMidTransaction() async throws {
        // A deadline far past the bound below: an answer within the bound did not wait for it.
        let (engine, url) = try await engine(timeout: .seconds(30))
        let admin = try await PostgresEngine(url: url, timeouts: StoreFixture.databaseTimeouts, logger: Self.logger)
        let ended = Moment()
        await #expect {
            try await engine.transaction { db in
                let pid = try await db.raw("SELECT pg_backend_pid() AS pid").first()?.decode(column: "pid", as: Int.self) ?? 0
                try await db.raw("INSERT INTO settings (key, value, updated_at, updated_by) VALUES ('fault', 'half', 'now', 'test')").run()
                // The server ends this session (as a restart does: FATAL 57P01), then the transaction goes on once the
                // backend is gone (a loaded server takes a while to end it) and the client's loop had a moment to read it.
                _ = try await admin.read { db in try await db.raw("SELECT pg_terminate_backend(CAST(\(bind: pid) AS INTEGER))").run() }
                for _ in 0..<200 {
                    let alive = try await admin.read { db in
                        try await db.raw("SELECT count(*) AS n FROM pg_stat_activity WHERE pid = CAST(\(bind: pid) AS INTEGER)").first()?.decode(column: "n", as: Int.self)
                    }
                    if alive == 0 { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                try await Task.sleep(for: .milliseconds(200))
                ended.mark()
                try await db.raw("INSERT INTO settings (key, value, updated_at, updated_by) VALUES ('fault2', 'never', 'now', 'test')").run()
            }
        } throws: { error in
            (error as? StoreError)?.code == "store_unavailable"
        }
        let since = ended.since
        #expect(since.map { $0 < .seconds(8) } == true, "answered \(String(describing: since)) after the session ended, not at the 30 s deadline")
        // Nothing of the broken transaction stayed, and the engine serves again on a new connection.
        let stored = try await engine.read { db in try await db.raw("SELECT count(*) AS n FROM settings WHERE key LIKE 'fault%'").first()?.decode(column: "n", as: Int.self) }
        #expect(stored == 0)
        try await engine.transaction { db in try await db.raw("INSERT INTO settings (key, value, updated_at, updated_by) VALUES ('after', 'ok', 'now', 'test')").run() }
        await admin.close()
        await engine.close()
    }

    @Test("every pooled connection terminated at once (a restart): the next reads and writes are served, none waits")
    func allConnectionsTerminated() async throws {
        let (engine, url) = try await engine()
        let admin = try await PostgresEngine(url: url, timeouts: StoreFixture.databaseTimeouts, logger: Self.logger)
        // Fill the pool with idle connections, then end all of them.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 { group.addTask { _ = try await engine.read { db in try await db.raw("SELECT pg_sleep(0.05)").run() } } }
            try await group.waitForAll()
        }
        let name = try #require(URLComponents(string: url)?.path.dropFirst())
        _ = try await admin.read { db in
            try await db.raw("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(bind: String(name)) AND pid <> pg_backend_pid()").run()
        }
        try await Task.sleep(for: .milliseconds(200))
        // Each is served, none waits for the deadline. A connection whose end the client has not read yet (a loaded
        // machine) may fail one statement with store_unavailable: at most one per connection ended, never a hang.
        var refused = 0
        for index in 0..<10 {
            for attempt in 0..<3 {
                do {
                    try await engine.transaction { db in try await db.raw("INSERT INTO settings (key, value, updated_at, updated_by) VALUES (\(bind: "k\(index)"), 'v', 'now', 'test') ON CONFLICT (key) DO NOTHING").run() }
                    _ = try await engine.read { db in try await db.raw("SELECT 1 AS one").first() }
                    break
                } catch let error as StoreError where error.code == "store_unavailable" && attempt < 2 {
                    refused += 1
                }
            }
        }
        #expect(refused <= 6, "at most one refusal per connection that was ended")
        await admin.close()
        await engine.close()
    }

    @Test("a write waiting for the write lock gives up at half its deadline with store_unavailable (it does no work late), and the holder commits")
    func lockWaitGivesUp() async throws {
        let (engine, url) = try await engine(timeout: .seconds(6))
        let holder = try await PostgresEngine(url: url, timeouts: DatabaseTimeouts(operation: .seconds(20)), logger: Self.logger)
        // The waiter starts once the holder holds the lock (its insert done), not after a guess of time: a loaded CI
        // machine once took longer than 300 ms to get there, and the waiter went first.
        let (held, signal) = AsyncStream<Void>.makeStream()
        let holding = Task {
            try await holder.transaction { db in
                try await db.raw("INSERT INTO settings (key, value, updated_at, updated_by) VALUES ('holder', 'x', 'now', 'test')").run()
                signal.yield()
                try await db.raw("SELECT pg_sleep(7)").run()
            }
        }
        for await _ in held { break }
        try await Task.sleep(for: .milliseconds(100))
        let started = ContinuousClock.now
        await #expect {
            try await engine.transaction { db in try await db.raw("INSERT INTO settings (key, value, updated_at, updated_by) VALUES ('waiter', 'y', 'now', 'test')").run() }
        } throws: { error in (error as? StoreError)?.code == "store_unavailable" }
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(2800) && waited < .milliseconds(5800), "gave up after \(waited), at the lock timeout (3 s), before the deadline (6 s)")
        try await holding.value
        let keys = try await engine.read { db in try await db.raw("SELECT key FROM settings ORDER BY key").all().map { try $0.decode(column: "key", as: String.self) } }
        #expect(keys == ["holder"])
        await holder.close()
        await engine.close()
    }

    @Test("a statement past the deadline is stopped by the server too, and its caller answered at the deadline")
    func statementPastTheDeadline() async throws {
        let (engine, url) = try await engine(timeout: .seconds(1))
        let admin = try await PostgresEngine(url: url, timeouts: StoreFixture.databaseTimeouts, logger: Self.logger)
        let started = ContinuousClock.now
        await #expect {
            try await engine.read { db in try await db.raw("SELECT pg_sleep(10)").run() }
        } throws: { error in (error as? StoreError)?.code == "store_unavailable" }
        #expect(ContinuousClock.now - started < .seconds(8))
        // The server stopped it: no session of this database is still sleeping, within moments of the deadline (its own
        // statement timeout fires a little after the caller's; a busy machine stretches that) and long before the 10 s
        // the statement asked for.
        var sleeping: Int?
        let deadline = ContinuousClock.now + .seconds(4)
        repeat {
            sleeping = try await admin.read { db in
                try await db.raw("SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(10)%' AND state = 'active'").first()?.decode(column: "n", as: Int.self)
            }
            if sleeping == 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < deadline
        #expect(sleeping == 0, "still sleeping \(ContinuousClock.now - started) after the call began")
        await admin.close()
        await engine.close()
    }

    @Test("a server that is not there is reported at once as store_unavailable, not after a wait")
    func unreachableServer() async throws {
        let (engine, _) = try await engine()
        await engine.close()
        await #expect {
            try await engine.read { db in try await db.raw("SELECT 1").run() }
        } throws: { error in error as? StoreError == .closed }
        let port = try freePort()
        await #expect(throws: StoreError.self) {
            _ = try await PostgresEngine(url: "postgres://postgres@127.0.0.1:\(port)/x?sslmode=disable", logger: Self.logger)
        }
    }

    func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Budget holds and rate admissions on the shared rows: one statement (one round trip) each, exact under concurrency,
/// settled once by their usage rows, reclaimed from instances that died.
@Suite("Shared budget holds", .enabled(if: TestDatabase.postgresAvailable), .serialized)
struct SharedBudgetHoldTests {
    /// Counts the statements sent through it.
    struct CountingDatabase: SQLDatabase {
        final class Count: Sendable {
            let value = Mutex(0)
            func add() { value.withLock { $0 += 1 } }
        }
        let base: any SQLDatabase
        let count: Count

        var logger: Logger { base.logger }
        var eventLoop: any EventLoop { base.eventLoop }
        var version: (any SQLDatabaseReportedVersion)? { base.version }
        var dialect: any SQLDialect { base.dialect }
        var queryLogLevel: Logger.Level? { nil }

        func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
            count.add()
            return base.execute(sql: query, onRow)
        }

        func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
            count.add()
            try await base.execute(sql: query, onRow)
        }

        func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R { try await closure(self) }
    }

    /// Runs `body` on a counting database; the number of statements it sent.
    func statements(_ engine: PostgresEngine, _ body: @escaping @Sendable (any SQLDatabase) async throws -> Void) async throws -> Int {
        try await engine.counterWrite { db in
            let counting = CountingDatabase(base: db, count: CountingDatabase.Count())
            try await body(counting)
            return counting.count.value.withLock { $0 }
        }
    }

    func engine() async throws -> PostgresEngine {
        let engine = try await PostgresEngine(url: try await TestDatabase.create(), timeouts: StoreFixture.databaseTimeouts, logger: PostgresFaultTests.logger)
        try await Migrator().migrate(engine, logger: PostgresFaultTests.logger)
        return engine
    }

    let budgets = BudgetRepository()
    let usage = UsageRepository()

    func spend(_ engine: PostgresEngine, _ workspace: String) async throws -> BudgetSpend {
        try await engine.read { db in try await BudgetRepository().spend(workspaceID: workspace, period: "2026-12", scope: .platform, on: db) }
    }

    func row(_ workspace: String, cost: Int, hold: String?) -> UsageRecord {
        UsageRecord(at: Date(), workspaceID: workspace, providerID: "openai", model: "m", credentialID: nil, source: .platform, modality: .chat,
                    consumer: nil, status: 200, latencyMilliseconds: 1, counts: UsageCounts(), milliCredits: cost, attempts: 1, holdID: hold)
    }

    @Test("a hold, a settle, a rate admission and a token count are one statement each; a batch of usage rows with their settles is one")
    func oneRoundTripEach() async throws {
        let engine = try await engine()
        let (budgets, usage) = (self.budgets, self.usage)
        let held = Mutex(false)
        let holding = try await statements(engine) { db in
            let ok = try await budgets.hold("h1", workspaceID: "w", period: "2026-12", scope: .platform, amount: 500, limit: 1000, instanceID: "i", on: db)
            held.withLock { $0 = ok }
        }
        #expect(holding == 1 && held.withLock { $0 })
        #expect(try await statements(engine) { db in _ = try await budgets.settle(hold: "h1", cost: 0, on: db) } == 1)
        let admitted = Mutex(false)
        let admitting = try await statements(engine) { db in
            let ok = try await RateWindowRepository().admit(workspaceID: "w", minute: "2026-12-06T10:00", staleBefore: "2026-12-06T09:58",
                                                            requests: 10, tokens: 1000, on: db)
            admitted.withLock { $0 = ok }
        }
        #expect(admitting == 1 && admitted.withLock { $0 })
        #expect(try await statements(engine) { db in
            try await RateWindowRepository().addTokens(workspaceID: "w", minute: "2026-12-06T10:00", tokens: 30, on: db)
        } == 1)
        _ = try await engine.counterWrite { db in try await budgets.hold("h2", workspaceID: "w", period: "2026-12", scope: .platform, amount: 300, limit: 1000, instanceID: "i", on: db) }
        let rows = [row("w", cost: 250, hold: "h2")] + (0..<300).map { _ in row("w", cost: 0, hold: nil) }
        #expect(try await statements(engine) { db in _ = try await usage.insertSettlingHolds(rows, on: db) } == 1)
        await engine.close()
    }

    @Test("holds from many tasks at once never pass the limit; a hold larger than the limit never fits")
    func holdsNeverPassTheLimit() async throws {
        let engine = try await engine()
        let budgets = self.budgets
        let held = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<40 {
                group.addTask {
                    try await engine.counterWrite { db in
                        try await budgets.hold("h\(index)", workspaceID: "w", period: "2026-12", scope: .platform, amount: 300, limit: 3000, instanceID: "i", on: db)
                    }
                }
            }
            var count = 0
            for try await ok in group where ok { count += 1 }
            return count
        }
        #expect(held == 10)
        #expect(try await spend(engine, "w").reserved == 3000)
        let tooLarge = try await engine.counterWrite { db in
            try await budgets.hold("big", workspaceID: "other", period: "2026-12", scope: .platform, amount: 3001, limit: 3000, instanceID: "i", on: db)
        }
        #expect(!tooLarge)
        await engine.close()
    }

    @Test("a usage row settles its hold once: a batch written again (its first answer lost) counts nothing twice")
    func usageRowsSettleOnce() async throws {
        let engine = try await engine()
        let (budgets, usage) = (self.budgets, self.usage)
        _ = try await engine.counterWrite { db in try await budgets.hold("h1", workspaceID: "w", period: "2026-12", scope: .platform, amount: 800, limit: 5000, instanceID: "i", on: db) }
        _ = try await engine.counterWrite { db in try await budgets.hold("h2", workspaceID: "w", period: "2026-12", scope: .platform, amount: 800, limit: 5000, instanceID: "i", on: db) }
        let batch = [row("w", cost: 650, hold: "h1"), row("w", cost: 1200, hold: "h2")]
        let settled = try await engine.counterWrite { db in try await usage.insertSettlingHolds(batch, on: db) }
        #expect(settled == [UsageRepository.Settled(workspaceID: "w", period: "2026-12", scope: "platform", spent: 1850, announced: 0)])
        let again = try await engine.counterWrite { db in try await usage.insertSettlingHolds(batch, on: db) }
        #expect(again.isEmpty)
        let spend = try await spend(engine, "w")
        #expect(spend.spent == 1850 && spend.reserved == 0)
        let rows = try await engine.read { db in try await db.raw("SELECT count(*) AS n FROM usage").first()?.decode(column: "n", as: Int.self) }
        #expect(rows == 2)
        // A hold given back by its own settle is not given back again by a second settle.
        #expect(try await engine.counterWrite { db in try await budgets.settle(hold: "h1", cost: 0, on: db) } == nil)
        await engine.close()
    }

    @Test("the holds of an instance not seen are given back, a live instance's are kept, and a reclaimed hold's late usage row still adds its cost")
    func deadInstancesHoldsAreReclaimed() async throws {
        let engine = try await engine()
        let (budgets, usage) = (self.budgets, self.usage)
        _ = try await engine.counterWrite { db in
            try await budgets.heartbeat(instanceID: "alive", on: db)
            // Both holds are a minute old; the dead instance was last seen two minutes ago.
            _ = try await budgets.hold("live", workspaceID: "w", period: "2026-12", scope: .platform, amount: 400, limit: 5000, instanceID: "alive", on: db)
            _ = try await budgets.hold("dead", workspaceID: "w", period: "2026-12", scope: .platform, amount: 700, limit: 5000, instanceID: "gone", on: db)
            try await db.raw("UPDATE budget_holds SET created_at = created_at - 60").run()
            try await db.raw("INSERT INTO instances (id, seen_at) VALUES ('gone', CAST(extract(epoch FROM now()) AS BIGINT) - 120)").run()
        }
        // A hold younger than the dead time is never reclaimed, even of an instance never seen.
        _ = try await engine.counterWrite { db in try await budgets.hold("young", workspaceID: "w", period: "2026-12", scope: .platform, amount: 100, limit: 5000, instanceID: "new", on: db) }
        let reclaimed = try await engine.counterWrite { db in try await budgets.reclaimHolds(deadAfter: 30, on: db) }
        #expect(reclaimed == 1)
        #expect(try await spend(engine, "w").reserved == 500)
        #expect(try await engine.counterWrite { db in try await budgets.reclaimHolds(deadAfter: 30, on: db) } == 0, "reclaimed once")
        // The dead instance's call did finish after all: its row adds the cost and gives back nothing more.
        _ = try await engine.counterWrite { db in try await usage.insertSettlingHolds([self.row("w", cost: 900, hold: "dead")], on: db) }
        let spend = try await spend(engine, "w")
        #expect(spend.spent == 900 && spend.reserved == 500)
        await engine.close()
    }
}

/// When something happened, set from any task.
final class Moment: Sendable {
    private let instant = Mutex<ContinuousClock.Instant?>(nil)

    func mark() { instant.withLock { $0 = ContinuousClock.now } }

    /// How long ago it happened (`nil`: it has not).
    var since: Duration? { instant.withLock { $0.map { ContinuousClock.now - $0 } } }
}
