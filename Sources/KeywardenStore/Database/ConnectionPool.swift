/// A small async pool: at most `capacity` connections, handed out one caller at a time, in arrival order.
actor ConnectionPool<Connection: Sendable> {
    private let capacity: Int
    private let open: @Sendable () async throws -> Connection
    private let closeConnection: @Sendable (Connection) async -> Void
    private var idle: [Connection] = []
    private var opened = 0
    private var waiters: [CheckedContinuation<Connection, any Error>] = []
    private var isClosed = false

    init(
        capacity: Int,
        open: @escaping @Sendable () async throws -> Connection,
        close: @escaping @Sendable (Connection) async -> Void
    ) {
        self.capacity = max(1, capacity)
        self.open = open
        self.closeConnection = close
    }

    /// Runs `body` with a connection and returns it to the pool afterwards.
    nonisolated func withConnection<R: Sendable>(_ body: (Connection) async throws -> R) async throws -> R {
        let connection = try await acquire()
        do {
            let result = try await body(connection)
            await release(connection)
            return result
        } catch {
            await release(connection)
            throw error
        }
    }

    private func acquire() async throws -> Connection {
        guard !isClosed else { throw StoreError.closed }
        if let connection = idle.popLast() {
            return connection
        }
        if opened < capacity {
            opened += 1
            do {
                return try await open()
            } catch {
                opened -= 1
                throw error
            }
        }
        return try await withCheckedThrowingContinuation { waiters.append($0) }
    }

    private func release(_ connection: Connection) async {
        if isClosed {
            opened -= 1
            await closeConnection(connection)
        } else if !waiters.isEmpty {
            waiters.removeFirst().resume(returning: connection)
        } else {
            idle.append(connection)
        }
    }

    /// Closes idle connections now and busy ones when they come back; fails every waiter.
    func close() async {
        guard !isClosed else { return }
        isClosed = true
        for waiter in waiters { waiter.resume(throwing: StoreError.closed) }
        waiters.removeAll()
        let connections = idle
        idle.removeAll()
        opened -= connections.count
        for connection in connections { await closeConnection(connection) }
    }
}
