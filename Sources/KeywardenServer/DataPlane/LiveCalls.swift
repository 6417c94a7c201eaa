import ServiceLifecycle
import Synchronization

/// The gateway calls under way on the data plane, so a graceful shutdown waits for them: a call runs as a task of its
/// own (not a child of the connection's), and its effects and usage row must reach their owners before those stop.
final class LiveCalls: Sendable {
    /// Calls under way, and calls ever started.
    private let state = Mutex((underWay: 0, started: 0))

    init() {}

    /// How many calls are under way.
    var count: Int { state.withLock { $0.underWay } }

    /// How many calls have started since the process began (wrapping, never trapping).
    var started: Int { state.withLock { $0.started } }

    /// A call began.
    func begin() {
        state.withLock { state in
            state.underWay += 1
            state.started &+= 1
        }
    }

    /// A call ended (its answer written or cut, its effects handed on).
    func end() {
        state.withLock { $0.underWay = max(0, $0.underWay - 1) }
    }

    /// Returns once no call is under way, or when the waiting task is cancelled (the service group's bound).
    func drained() async {
        while count > 0, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Waits, at a graceful shutdown, for the gateway calls under way after the server stopped taking new ones; it runs
/// between the HTTP server and the gateway's effects in the service group, so the last calls' effects and usage rows
/// are carried out. It waits no longer than the group lets it: at 80 % of the shutdown bound it is cancelled and returns.
struct DataPlaneDrain: Service {
    let calls: LiveCalls

    func run() async throws {
        try? await gracefulShutdown()
        await calls.drained()
    }
}
