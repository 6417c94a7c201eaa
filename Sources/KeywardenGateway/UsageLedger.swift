import KeywardenCore
import KeywardenApp
import KeywardenStore
import Logging
import ServiceLifecycle
import Synchronization

/// Buffers usage rows and writes them in batches: every ``GatewaySettings/flushInterval``, and a
/// last time at graceful shutdown, after the server has finished its calls.
///
/// A batch the database refuses stays buffered for the next round (up to ``maximumBuffered`` rows;
/// beyond that the oldest are dropped, counted in a metric and logged).
public final class UsageLedger: Service, Sendable {
    static let maximumBuffered = 200_000
    let app: AppServices
    let interval: Duration
    let metrics: GatewayMetrics
    let logger: Logger
    private let buffer = Mutex<[UsageRecord]>([])

    public init(app: AppServices, interval: Duration, metrics: GatewayMetrics, logger: Logger) {
        self.app = app
        self.interval = interval
        self.metrics = metrics
        self.logger = logger
    }

    /// Adds a row to the next batch.
    public func append(_ record: UsageRecord) {
        buffer.withLock { $0.append(record) }
    }

    /// Rows waiting to be written.
    public var pending: Int { buffer.withLock { $0.count } }

    public func run() async throws {
        // The wait ends early at graceful shutdown; the last flush runs after the server has stopped.
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            await flush()
        }
        await flush()
    }

    /// Writes every buffered row now.
    public func flush() async {
        // Budget counters a single-process store holds in memory are written on the same rounds.
        do { try await app.budgets.flushHeldCounters() } catch {
            logger.error("budget counters not written; kept for the next round", metadata: ["error": "\(error)"])
        }
        let batch = buffer.withLock { rows -> [UsageRecord] in
            defer { rows.removeAll(keepingCapacity: true) }
            return rows
        }
        guard !batch.isEmpty else { return }
        do {
            try await app.usage.record(batch)
        } catch {
            logger.error("usage rows not written; kept for the next round", metadata: ["rows": "\(batch.count)", "error": "\(error)"])
            let dropped = buffer.withLock { rows -> Int in
                rows.insert(contentsOf: batch, at: 0)
                let excess = max(0, rows.count - Self.maximumBuffered)
                rows.removeFirst(excess)
                return excess
            }
            if dropped > 0 {
                metrics.usageDropped(dropped)
                logger.critical("usage rows dropped", metadata: ["rows": "\(dropped)"])
            }
        }
    }
}
