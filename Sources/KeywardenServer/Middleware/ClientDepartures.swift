import NIOCore
import Synchronization

/// The client connections being served, each able to cancel the work done for it when its client leaves.
///
/// A client that closes its connection (an SDK's timeout, a user who stops a chat) must not leave the vendor working,
/// and billing, for it: ``ClientConnectionGuard`` tells the connection's ``Connection`` when its client's side closes
/// (the end of its input, as nginx reads a client's abort, or the connection itself), and the tasks working for it are
/// cancelled; the vendor's connection closes with them.
final class ClientDepartures: Sendable {
    private let connections = Mutex<[ObjectIdentifier: Connection]>([:])

    init() {}

    /// The connection of `channel`, from when it opens.
    func opened(_ channel: any Channel) -> Connection {
        let connection = Connection()
        connections.withLock { $0[ObjectIdentifier(channel)] = connection }
        return connection
    }

    /// Forgets a closed connection.
    func closed(_ channel: any Channel) {
        _ = connections.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// The connection a request arrived on; `nil` when none is followed (a router tested without a server).
    func connection(_ id: ObjectIdentifier) -> Connection? {
        connections.withLock { $0[id] }
    }

    /// One client connection: whether its client has left, and the tasks to cancel when it does.
    final class Connection: Sendable {
        /// A task working for the client, held only while it runs the work it registered for.
        private struct Worker: @unchecked Sendable {
            let task: UnsafeCurrentTask
        }

        private struct State {
            var left = false
            var workers: [Int: Worker] = [:]
            var next = 0
        }

        private let state = Mutex(State())

        /// Whether the client has left.
        var hasLeft: Bool { state.withLock { $0.left } }

        /// The client left: every task working for it is cancelled.
        func clientLeft() {
            state.withLock { state in
                state.left = true
                for worker in state.workers.values { worker.task.cancel() }
                state.workers.removeAll()
            }
        }

        /// Runs `work`, its task cancelled if the client leaves meanwhile (at once if it has already left).
        ///
        /// The task is cancelled only under the lock and only while registered, and it is unregistered, under the same
        /// lock, before `work`'s scope ends: it is alive whenever it is cancelled.
        func cancellingOnDeparture<Result>(_ work: () async throws -> Result) async rethrows -> Result {
            let id: Int? = withUnsafeCurrentTask { task in
                guard let task else { return nil }
                return state.withLock { state -> Int? in
                    if state.left {
                        task.cancel()
                        return nil
                    }
                    state.next &+= 1
                    state.workers[state.next] = Worker(task: task)
                    return state.next
                }
            }
            defer {
                if let id { _ = state.withLock { $0.workers.removeValue(forKey: id) } }
            }
            return try await work()
        }
    }
}
