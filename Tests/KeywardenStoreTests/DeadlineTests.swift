import Foundation
import Synchronization
import Testing
@testable import KeywardenStore

/// The deadline every database operation runs under: its caller is answered whatever the work does.
@Suite("Deadlines of database work")
struct DeadlineTests {
    /// Work that never ends and ignores cancellation (what a query written to a closed PostgresNIO channel does).
    static func never() async throws -> Int {
        await withCheckedContinuation { (_: CheckedContinuation<Void, Never>) in }
        return 0
    }

    @Test("work that never ends and ignores cancellation is answered store_unavailable at the limit, and onAbandon runs once")
    func stuckWorkIsAnsweredAtTheLimit() async throws {
        let expired = Mutex(0)
        let started = ContinuousClock.now
        await #expect {
            _ = try await Deadline.run(.milliseconds(200), what: "the test database", onAbandon: { expired.withLock { $0 += 1 } }) {
                try await Self.never()
            }
        } throws: { error in
            (error as? StoreError)?.code == "store_unavailable" && "\(error)".contains("the test database did not answer within 200 ms")
        }
        // Answered, not left waiting (the work never ends): at the limit, or later only as the machine's load delays timers.
        let took = ContinuousClock.now - started
        #expect(took >= .milliseconds(200) && took < .seconds(30), "answered after \(took)")
        try await Task.sleep(for: .milliseconds(50))
        #expect(expired.withLock { $0 } == 1)
    }

    @Test("a result or an error within the limit passes through unchanged, and onAbandon does not run")
    func resultsPassThrough() async throws {
        let expired = Mutex(false)
        let value = try await Deadline.run(.seconds(5), onAbandon: { expired.withLock { $0 = true } }) { 42 }
        #expect(value == 42)
        struct Refused: Error {}
        await #expect(throws: Refused.self) { try await Deadline.run(.seconds(5)) { () async throws -> Int in throw Refused() } }
        try await Task.sleep(for: .milliseconds(50))
        #expect(!expired.withLock { $0 })
    }

    @Test("a caller cancelled while the work is stuck is answered CancellationError at once")
    func callerCancellationIsAnsweredAtOnce() async throws {
        let task = Task { try await Deadline.run(.seconds(30)) { try await Self.never() } }
        try await Task.sleep(for: .milliseconds(50))
        let cancelled = ContinuousClock.now
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(ContinuousClock.now - cancelled < .seconds(15), "answered long before the 30 s limit")
    }

    @Test("a caller cancelled before the run starts is answered at once")
    func cancelledBeforeStart() async throws {
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await Deadline.run(.seconds(30)) { try await Self.never() }
        }
        await #expect(throws: CancellationError.self) { try await task.value }
    }

    @Test("task-local values reach the work (the change collector of a transaction, the follower's lane)")
    func taskLocalsReachTheWork() async throws {
        let lane = try await DatabaseLane.$current.withValue(.following) {
            try await Deadline.run(.seconds(5)) { DatabaseLane.current }
        }
        #expect(lane == .following)
    }

    @Test("many runs at once each get their own answer")
    func manyRunsAtOnce() async throws {
        let results = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for index in 0..<200 {
                group.addTask {
                    let value = try await Deadline.run(.seconds(10)) { () async throws -> Int in
                        try await Task.sleep(for: .milliseconds(Int.random(in: 0...5)))
                        return index * 2
                    }
                    return (index, value)
                }
            }
            var all: [(Int, Int)] = []
            for try await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 200 && results.allSatisfy { $0.1 == $0.0 * 2 })
    }
}

/// The connection pool every engine uses: through a fault it never hands out a dead connection, never keeps a waiter
/// waiting for a connection that cannot come, and never loses a place to a holder that gave up.
@Suite("Connection pool through faults")
struct ConnectionPoolTests {
    /// A connection double: a number, usable until marked dead.
    final class Connection: Sendable {
        let id: Int
        let dead = Atomic(false)
        let closed = Atomic(false)
        init(_ id: Int) { self.id = id }
    }

    /// Opens numbered connections, or fails while `failing` is set.
    final class Opener: Sendable {
        let count = Atomic(0)
        let failing = Atomic(false)
        struct Refused: Error {}

        func open() throws -> Connection {
            if failing.load(ordering: .relaxed) { throw Refused() }
            return Connection(count.add(1, ordering: .relaxed).newValue)
        }
    }

    func pool(_ opener: Opener, capacity: Int) -> ConnectionPool<Connection> {
        ConnectionPool(capacity: capacity, open: { try opener.open() }, close: { $0.closed.store(true, ordering: .relaxed) },
                       isUsable: { !$0.dead.load(ordering: .relaxed) })
    }

    /// Closes `pool` in a task of its own (with a limit no test reaches); the flag is set once close returned.
    func startClosing(_ pool: ConnectionPool<Connection>) -> (Task<Void, Never>, Flag) {
        let returned = Flag()
        let closing = Task {
            await pool.close(within: .seconds(60))
            await returned.set()
        }
        return (closing, returned)
    }

    /// Whether `connection` is closed within 5 s (a connection given back is closed off the caller's path).
    static func closedSoon(_ connection: Connection) async throws -> Bool {
        for _ in 0..<500 {
            if connection.closed.load(ordering: .relaxed) { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return connection.closed.load(ordering: .relaxed)
    }

    @Test("a connection that died while idle is not handed out again; a new one is opened in its place and the dead one closed")
    func deadIdleConnectionIsReplaced() async throws {
        let opener = Opener()
        let pool = pool(opener, capacity: 1)
        let first = try await pool.acquire()
        pool.release(first, reusable: true)
        first.connection.dead.store(true, ordering: .relaxed)
        let second = try await pool.acquire()
        #expect(second.connection.id != first.connection.id)
        #expect(try await Self.closedSoon(first.connection))
        pool.release(second, reusable: true)
    }

    @Test("a lease given up (its work stuck past the deadline) frees its place at once, and its late return changes nothing")
    func abandonedLeaseFreesItsPlace() async throws {
        let opener = Opener()
        let pool = pool(opener, capacity: 1)
        let stuck = try await pool.acquire()
        let waiter = Task { try await pool.acquire() }
        try await Task.sleep(for: .milliseconds(20))
        pool.release(stuck, reusable: false)
        let next = try await waiter.value
        #expect(next.connection.id != stuck.connection.id, "the waiter got a new connection, not the abandoned one")
        pool.release(stuck, reusable: true)
        #expect(pool.counts.open == 1, "the late return of the abandoned lease neither adds nor frees a place")
        pool.release(next, reusable: true)
    }

    @Test("a waiter whose task is cancelled leaves the queue, and the next waiter is served")
    func cancelledWaiterLeaves() async throws {
        let opener = Opener()
        let pool = pool(opener, capacity: 1)
        let held = try await pool.acquire()
        let cancelled = Task { try await pool.acquire() }
        try await Task.sleep(for: .milliseconds(20))
        let next = Task { try await pool.acquire() }
        try await Task.sleep(for: .milliseconds(20))
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { _ = try await cancelled.value }
        #expect(pool.counts.waiting == 1)
        pool.release(held, reusable: true)
        let served = try await next.value
        #expect(served.connection.id == held.connection.id)
        pool.release(served, reusable: true)
    }

    @Test("when a connection cannot be opened, every waiter is told at once and callers fail fast until the retry delay passes")
    func failedOpenFailsWaitersAndFailsFast() async throws {
        let opener = Opener()
        let pool = pool(opener, capacity: 1)
        let held = try await pool.acquire()
        let waiters = (0..<3).map { _ in Task { try await pool.acquire() } }
        try await Task.sleep(for: .milliseconds(20))
        opener.failing.store(true, ordering: .relaxed)
        pool.release(held, reusable: false)  // the server went away: its place is refilled, and that fails
        for waiter in waiters {
            await #expect(throws: Opener.Refused.self) { _ = try await waiter.value }
        }
        let opens = opener.count.load(ordering: .relaxed)
        await #expect(throws: Opener.Refused.self) { _ = try await pool.acquire() }
        let opensAfter = opener.count.load(ordering: .relaxed)
        #expect(opensAfter == opens, "within the retry delay no new open is tried")
        opener.failing.store(false, ordering: .relaxed)
        try await Task.sleep(for: ConnectionPool<Connection>.retryDelay + .milliseconds(50))
        let back = try await pool.acquire()
        let dead = back.connection.dead.load(ordering: .relaxed)
        #expect(!dead)
        pool.release(back, reusable: true)
    }

    @Test("a closed pool fails its waiters at once, closes what comes back, and returns from close only once the last held connection came back and was closed")
    func closeFailsWaitersAndWaitsForHeldConnections() async throws {
        let opener = Opener()
        let pool = pool(opener, capacity: 2)
        let first = try await pool.acquire()
        let second = try await pool.acquire()
        let waiter = Task { try await pool.acquire() }
        try await Task.sleep(for: .milliseconds(20))
        let (closing, returned) = startClosing(pool)
        await #expect(throws: StoreError.closed) { _ = try await waiter.value }
        pool.release(first, reusable: true)
        try await Task.sleep(for: .milliseconds(200))
        let firstClosed = first.connection.closed.load(ordering: .relaxed)
        #expect(firstClosed)
        #expect(await !returned.isSet, "close waits for the connection still held")
        pool.release(second, reusable: true)
        await closing.value
        let secondClosed = second.connection.closed.load(ordering: .relaxed)
        #expect(secondClosed, "closed before close returned")
        await #expect(throws: StoreError.closed) { _ = try await pool.acquire() }
    }

    @Test("an idle connection is closed by the time close returns")
    func closeClosesIdleConnections() async throws {
        let pool = pool(Opener(), capacity: 1)
        let lease = try await pool.acquire()
        pool.release(lease, reusable: true)
        await pool.close(within: .seconds(60))
        let closed = lease.connection.closed.load(ordering: .relaxed)
        #expect(closed)
    }

    @Test("close gives up waiting at its limit for a holder that never comes back; the connection is closed when it does")
    func closeGivesUpOnAHolderThatStays() async throws {
        let opener = Opener()
        let pool = pool(opener, capacity: 1)
        let held = try await pool.acquire()
        let start = ContinuousClock.now
        await pool.close(within: .milliseconds(300))
        #expect(ContinuousClock.now - start >= .milliseconds(300))
        let closedEarly = held.connection.closed.load(ordering: .relaxed)
        #expect(!closedEarly)
        pool.release(held, reusable: true)
        #expect(try await Self.closedSoon(held.connection))
    }

    @Test("close called from a cancelled task returns at once, held connections or not (its wait ends with the task)")
    func closeFromACancelledTaskDoesNotWait() async throws {
        let pool = pool(Opener(), capacity: 1)
        let held = try await pool.acquire()
        let (started, starting) = AsyncStream.makeStream(of: Void.self)
        let closing = Task {
            // Cancelled before close is called: the limit's sleep ends at once, whichever of the two steps runs first.
            for await _ in started { break }
            await pool.close(within: .seconds(3_600))
        }
        closing.cancel()
        starting.yield()
        let start = ContinuousClock.now
        await closing.value
        #expect(ContinuousClock.now - start < .seconds(60))
        pool.release(held, reusable: true)
    }

    @Test("a connection still opening when the pool closes is closed once it opened, and close waits for that")
    func closeWaitsForAnOpeningConnection() async throws {
        let opened = Atomic<Int>(0)
        let gate = AsyncStream.makeStream(of: Void.self)
        let connections = Mutex<[Connection]>([])
        let pool = ConnectionPool<Connection>(
            capacity: 1,
            open: {
                for await _ in gate.stream { break }
                let connection = Connection(opened.add(1, ordering: .relaxed).newValue)
                connections.withLock { $0.append(connection) }
                return connection
            },
            close: { $0.closed.store(true, ordering: .relaxed) }
        )
        let waiter = Task { try await pool.acquire() }
        try await Task.sleep(for: .milliseconds(50))
        let (closing, returned) = startClosing(pool)
        await #expect(throws: StoreError.closed) { _ = try await waiter.value }
        try await Task.sleep(for: .milliseconds(100))
        #expect(await !returned.isSet, "close waits for the connection being opened")
        gate.continuation.yield()
        await closing.value
        let all = connections.withLock { $0 }
        #expect(all.count == 1 && all.allSatisfy { $0.closed.load(ordering: .relaxed) })
    }
}
