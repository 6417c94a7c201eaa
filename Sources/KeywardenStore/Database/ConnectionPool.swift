import Synchronization

/// A small async pool: at most `capacity` connections, handed out one caller at a time, in arrival order.
///
/// What it guarantees through a database fault:
/// - A connection that is closed (the server went away) or that its holder gave up on is never handed out again, and
///   its place is refilled for the next waiter.
/// - A holder that never comes back (work stuck on a dead connection past its deadline) is forgotten with
///   ``release(_:reusable:)`` `reusable: false`: its place is free at once, and its late return changes nothing.
/// - A waiter whose task is cancelled (its deadline passed) leaves the queue at once.
/// - When a connection cannot be opened, every waiter is told at once, and for ``retryDelay`` afterwards a caller
///   that would open one fails at once with the same error instead of trying again (a down server is not hammered,
///   and callers fail fast).
///
/// Its state changes under one lock, never across a suspension; only opening and closing connections wait.
final class ConnectionPool<Connection: Sendable>: Sendable {
    /// A connection handed out, with the number that identifies this hand-out.
    struct Lease: Sendable {
        let id: UInt64
        let connection: Connection
    }

    /// How long after a failed open new opens are not tried.
    static var retryDelay: Duration { .milliseconds(500) }

    private typealias Waiter = CheckedContinuation<Lease, any Error>

    /// Where a caller waiting for a connection is.
    private enum Waiting {
        /// Counted, its continuation not in place yet.
        case registered
        case waiting(Waiter)
        /// Cancelled before its continuation was in place.
        case cancelled
    }

    private struct State {
        var idle: [Connection] = []
        var leased: [UInt64: Connection] = [:]
        var opening = 0
        var nextID: UInt64 = 0
        /// Waiters in arrival order, and where each is.
        var queue: [UInt64] = []
        var waiting: [UInt64: Waiting] = [:]
        var lastFailure: (at: ContinuousClock.Instant, error: any Error)?
        var isClosed = false
        /// Connections out of the pool whose closing has not finished.
        var closing = 0
        /// Callers of ``ConnectionPool/close(within:)`` waiting for the last connection to be closed.
        var drainWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// Waits whose limit passed before their caller was in place (it then goes on at once).
        var expiredDrains: Set<UInt64> = []

        var total: Int { idle.count + leased.count + opening }

        /// Closed, with no connection open, opening or closing.
        var isDrained: Bool { isClosed && total == 0 && closing == 0 }

        /// Every caller waiting for the drain, taken, once the pool is drained.
        mutating func drainWaitersIfDrained() -> [CheckedContinuation<Void, Never>] {
            guard isDrained, !drainWaiters.isEmpty else { return [] }
            defer { drainWaiters.removeAll() }
            return Array(drainWaiters.values)
        }

        /// The most recently returned idle connection that is still usable; unusable ones met on the way are taken off,
        /// counted as closing, and put in `unusable` for the caller to close.
        mutating func popUsableIdle(_ isUsable: (Connection) -> Bool, unusable: inout [Connection]) -> Connection? {
            while let connection = idle.popLast() {
                if isUsable(connection) { return connection }
                closing += 1
                unusable.append(connection)
            }
            return nil
        }

        mutating func lease(_ connection: Connection) -> Lease {
            nextID &+= 1
            leased[nextID] = connection
            return Lease(id: nextID, connection: connection)
        }

        /// The first waiter whose continuation is in place, taken off the queue; cancelled ones are dropped, and one
        /// still registering is left (it looks for an idle connection itself once its continuation is in place).
        mutating func nextWaiter() -> Waiter? {
            var index = 0
            while index < queue.count {
                let id = queue[index]
                switch waiting[id] {
                case .waiting(let continuation)?:
                    queue.remove(at: index)
                    waiting[id] = nil
                    return continuation
                case .registered?:
                    index += 1
                case .cancelled?, nil:
                    // Its registration, when it comes, finds nothing and answers CancellationError.
                    queue.remove(at: index)
                    waiting[id] = nil
                }
            }
            return nil
        }

        /// Every waiter, taken off the queue.
        mutating func allWaiters() -> [Waiter] {
            var all: [Waiter] = []
            while let waiter = nextWaiter() { all.append(waiter) }
            return all
        }
    }

    private let capacity: Int
    private let open: @Sendable () async throws -> Connection
    private let closeConnection: @Sendable (Connection) async -> Void
    private let isUsable: @Sendable (Connection) -> Bool
    private let state = Mutex(State())

    /// `isUsable` says whether a connection may be handed out or kept (PostgreSQL: not closed by the server).
    init(
        capacity: Int,
        open: @escaping @Sendable () async throws -> Connection,
        close: @escaping @Sendable (Connection) async -> Void,
        isUsable: @escaping @Sendable (Connection) -> Bool = { _ in true }
    ) {
        self.capacity = max(1, capacity)
        self.open = open
        self.closeConnection = close
        self.isUsable = isUsable
    }

    deinit {
        // A pool dropped without close() (a test that failed half way) still closes what it held.
        let (close, idle) = (closeConnection, state.withLock { $0.idle })
        for connection in idle { Task { await close(connection) } }
    }

    /// Runs `body` with a connection and returns it to the pool afterwards (or closes it when it is no longer usable).
    func withConnection<R: Sendable>(_ body: (Connection) async throws -> R) async throws -> R {
        let lease = try await acquire()
        do {
            let result = try await body(lease.connection)
            release(lease, reusable: true)
            return result
        } catch {
            release(lease, reusable: true)
            throw error
        }
    }

    /// What a caller does next.
    private enum Step {
        case take(Lease)
        /// Wait as this waiter; `opens`: a connection was counted to be opened for the waiters.
        case wait(UInt64, opens: Bool)
        case fail(any Error)
    }

    /// A connection: an idle one, else the next one opened or given back (in arrival order).
    ///
    /// Connections are opened in tasks of their own, never in the caller's: a caller that gives up (its deadline passed,
    /// its client left) cancels only its wait, and the connection being opened goes to the next waiter or the idle list.
    func acquire() async throws -> Lease {
        var unusable: [Connection] = []
        let step = state.withLock { state -> Step in
            guard !state.isClosed else { return .fail(StoreError.closed) }
            if let connection = state.popUsableIdle(isUsable, unusable: &unusable) { return .take(state.lease(connection)) }
            var opens = false
            if state.total < capacity {
                if let failure = state.lastFailure, ContinuousClock.now - failure.at < Self.retryDelay { return .fail(failure.error) }
                state.opening += 1
                opens = true
            }
            state.nextID &+= 1
            state.queue.append(state.nextID)
            state.waiting[state.nextID] = .registered
            return .wait(state.nextID, opens: opens)
        }
        for connection in unusable { discard(connection) }
        switch step {
        case .take(let lease):
            return lease
        case .fail(let error):
            throw error
        case .wait(let id, let opens):
            if opens { openForWaiter() }
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: Waiter) in
                    register(id, continuation)
                }
            } onCancel: {
                let waiter = state.withLock { state -> Waiter? in
                    switch state.waiting[id] {
                    case .registered?:
                        state.waiting[id] = .cancelled
                        return nil
                    case .waiting(let continuation)?:
                        state.waiting[id] = nil
                        state.queue.removeAll { $0 == id }
                        return continuation
                    case .cancelled?, nil:
                        return nil
                    }
                }
                waiter?.resume(throwing: CancellationError())
            }
        }
    }

    private enum Registration {
        case cancelled
        case fail(any Error)
        case take(Lease)
        case wait(refill: Bool)
    }

    /// Puts a waiter's continuation in place; a connection that came back (or a place that freed) while it registered
    /// is taken at once, and a waiter cancelled meanwhile (or of a pool closed meanwhile, or with nothing left that could
    /// serve it after a failed open) is answered.
    private func register(_ id: UInt64, _ continuation: Waiter) {
        var unusable: [Connection] = []
        let outcome = state.withLock { state -> Registration in
            guard case .registered? = state.waiting[id] else {
                state.waiting[id] = nil
                state.queue.removeAll { $0 == id }
                return .cancelled
            }
            func leave(_ state: inout State) {
                state.waiting[id] = nil
                state.queue.removeAll { $0 == id }
            }
            if state.isClosed {
                leave(&state)
                return .fail(StoreError.closed)
            }
            if let connection = state.popUsableIdle(isUsable, unusable: &unusable) {
                leave(&state)
                return .take(state.lease(connection))
            }
            if let failure = state.lastFailure, ContinuousClock.now - failure.at < Self.retryDelay, state.leased.isEmpty, state.opening == 0 {
                leave(&state)
                return .fail(failure.error)
            }
            state.waiting[id] = .waiting(continuation)
            return .wait(refill: reserveRefill(&state))
        }
        for connection in unusable { discard(connection) }
        switch outcome {
        case .cancelled: continuation.resume(throwing: CancellationError())
        case .fail(let error): continuation.resume(throwing: error)
        case .take(let lease): continuation.resume(returning: lease)
        case .wait(let refill): if refill { openForWaiter() }
        }
    }

    /// What a connection given back does.
    private enum Return {
        case nothing
        case hand(Waiter, Lease)
        case discard(refill: Bool)
    }

    /// Gives a connection back. `reusable: false` (a holder that gave up, a connection in an unknown state) closes it;
    /// so does a connection that is no longer usable. A lease given back twice, or after it was given up, is ignored.
    func release(_ lease: Lease, reusable: Bool) {
        let usable = reusable && isUsable(lease.connection)
        let next = state.withLock { state -> Return in
            guard state.leased.removeValue(forKey: lease.id) != nil else { return .nothing }
            guard usable, !state.isClosed else {
                state.closing += 1
                return .discard(refill: reserveRefill(&state))
            }
            if let waiter = state.nextWaiter() { return .hand(waiter, state.lease(lease.connection)) }
            state.idle.append(lease.connection)
            return .nothing
        }
        switch next {
        case .nothing:
            break
        case .hand(let waiter, let lease):
            waiter.resume(returning: lease)
        case .discard(let refill):
            discard(lease.connection)
            if refill { openForWaiter() }
        }
    }

    /// Closes idle connections now and leased ones when they come back; fails every waiter. Returns once every
    /// connection is closed (one being opened, once it opened), or after `limit` (a holder that has not come back).
    func close(within limit: Duration) async {
        let (waiters, idle) = state.withLock { state -> ([Waiter], [Connection]) in
            guard !state.isClosed else { return ([], []) }
            state.isClosed = true
            defer { state.idle.removeAll() }
            state.closing += state.idle.count
            return (state.allWaiters(), state.idle)
        }
        for waiter in waiters { waiter.resume(throwing: StoreError.closed) }
        for connection in idle {
            await closeConnection(connection)
            finishedClosing()
        }
        let id = state.withLock { state -> UInt64 in
            state.nextID &+= 1
            return state.nextID
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let drained = self.state.withLock { state -> Bool in
                        if state.isDrained || state.expiredDrains.remove(id) != nil { return true }
                        state.drainWaiters[id] = continuation
                        return false
                    }
                    if drained { continuation.resume() }
                }
            }
            group.addTask {
                // Also when the caller's task is cancelled (the sleep ends at once): close returns without waiting.
                try? await Task.sleep(for: limit)
                let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                    if let waiter = state.drainWaiters.removeValue(forKey: id) { return waiter }
                    // Its caller is not in place yet (or already went on): it must not wait when it comes.
                    if !state.isDrained { state.expiredDrains.insert(id) }
                    return nil
                }
                waiter?.resume()
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// How many connections are open or opening, how many are leased, and how many callers wait (for tests and metrics).
    var counts: (open: Int, leased: Int, waiting: Int) {
        state.withLock { state in
            (state.total, state.leased.count, state.waiting.values.filter { if case .cancelled = $0 { false } else { true } }.count)
        }
    }

    // MARK: Private

    /// Closes a connection counted in ``State/closing``.
    private func discard(_ connection: Connection) {
        let close = closeConnection
        Task {
            await close(connection)
            self.finishedClosing()
        }
    }

    /// A connection counted in ``State/closing`` is closed: a caller of ``close(within:)`` waiting for the last one
    /// goes on.
    private func finishedClosing() {
        let waiters = state.withLock { state in
            state.closing -= 1
            return state.drainWaitersIfDrained()
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Counts an open for the first waiter when one waits and a place is free; whether it did.
    private func reserveRefill(_ state: inout State) -> Bool {
        guard !state.queue.isEmpty, state.total < capacity, !state.isClosed else { return false }
        state.opening += 1
        return true
    }

    /// Opens a connection (already counted) for the first waiter.
    private func openForWaiter() {
        Task {
            do {
                let connection = try await open()
                let next = state.withLock { state -> Return in
                    state.opening -= 1
                    state.lastFailure = nil
                    guard !state.isClosed else {
                        state.closing += 1
                        return .discard(refill: false)
                    }
                    if let waiter = state.nextWaiter() { return .hand(waiter, state.lease(connection)) }
                    state.idle.append(connection)
                    return .nothing
                }
                switch next {
                case .nothing: break
                case .hand(let waiter, let lease): waiter.resume(returning: lease)
                case .discard: discard(connection)
                }
            } catch {
                openFailed(error)
            }
        }
    }

    /// A connection could not be opened: the server is probably unreachable. The waiter it was opened for is told; so
    /// is every waiter when no connection is left or coming that could serve them (none waits for what cannot come).
    private func openFailed(_ error: any Error) {
        let (waiters, drainWaiters) = state.withLock { state -> ([Waiter], [CheckedContinuation<Void, Never>]) in
            state.opening -= 1
            state.lastFailure = (.now, error)
            let drainWaiters = state.drainWaitersIfDrained()
            if state.leased.isEmpty, state.opening == 0 { return (state.allWaiters(), drainWaiters) }
            return (state.nextWaiter().map { [$0] } ?? [], drainWaiters)
        }
        for waiter in waiters { waiter.resume(throwing: error) }
        for waiter in drainWaiters { waiter.resume() }
    }
}
