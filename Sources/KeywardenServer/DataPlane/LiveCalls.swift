import ServiceLifecycle
import Synchronization

/// The gateway calls under way on the data plane, so a graceful shutdown waits for them: a call runs as a task of its
/// own (not a child of the connection's), and its effects and usage row must reach their owners before those stop.
final class LiveCalls: Sendable {
    private let state = Mutex(0)

    init() {}

    /// How many calls are under way.
    var count: Int { state.withLock { $0 } }

    /// A call began.
    func begin() {
        state.withLock { $0 += 1 }
    }

    /// A call ended (its answer written or cut, its effects handed on).
    func end() {
        state.withLock { $0 = max(0, $0 - 1) }
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
