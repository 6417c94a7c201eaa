import ServiceLifecycle
import Synchronization

/// The gateway calls under way on the data plane, so a graceful shutdown waits for them: a call runs as a task of its
/// own (not a child of the connection's), and its effects and usage row must reach their owners before those stop.
final class LiveCalls: Sendable {
    private struct State {
        var count = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    init() {}

    /// How many calls are under way.
    var count: Int { state.withLock { $0.count } }

    /// A call began.
    func begin() {
        state.withLock { $0.count += 1 }
    }

    /// A call ended (its answer written or cut, its effects handed on).
    func end() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.count = max(0, state.count - 1)
            guard state.count == 0 else { return [] }
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once no call is under way.
    func drained() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.count == 0 { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}

/// Waits, at a graceful shutdown, for the gateway calls under way after the server stopped taking new ones; it runs
/// between the HTTP server and the gateway's effects in the service group, so the last calls' effects and usage rows
/// are carried out. The group's shutdown bound (and the cancellation at 80 % of it) still ends a call that hangs.
struct DataPlaneDrain: Service {
    let calls: LiveCalls

    func run() async throws {
        try? await gracefulShutdown()
        await calls.drained()
    }
}
