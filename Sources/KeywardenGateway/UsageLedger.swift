import Foundation
import KeywardenCore
import KeywardenApp
import Logging
import ServiceLifecycle
import Synchronization

/// Buffers usage rows and writes them in batches: every ``GatewaySettings/flushInterval``, and a last time at
/// graceful shutdown, after the server has finished its calls.
///
/// A row written settles the budget hold of its call in the same statement (PostgreSQL) or the same transaction as
/// the counters held in memory (SQLite), so the budgets' spending and the ledger agree after any fault.
///
/// Through a database fault nothing stops: every write has the database's deadline, a batch the database refuses
/// stays buffered and is tried again on every round, up to ``maximumBuffered`` rows; beyond that the oldest are
/// dropped, counted in `keywarden_usage_rows_dropped_total` and logged. `keywarden_usage_rows_buffered` shows how many
/// wait. Holds an attempt gave back while the database refused are given back on later rounds the same way (giving
/// back is harmless to repeat). At shutdown the last rows are tried for ``finalFlushWindow``; rows that still cannot be
/// written are counted in the log (`usage rows not written at shutdown`).
public final class UsageLedger: Service, Sendable {
    static let maximumBuffered = 200_000
    let app: any GatewayBackend
    let interval: Duration
    let metrics: GatewayMetrics
    let logger: Logger
    /// How long the last flush at shutdown keeps trying while the database refuses.
    let finalFlushWindow: Duration

    /// A row and the budget reservation its write settles (whose limit says which thresholds it reaches).
    struct Entry: Sendable {
        let record: UsageRecord
        let reservation: BudgetReservation?
    }

    private struct Buffer {
        var entries: [Entry] = []
        /// Rows being written at once (those that settle a shared hold), so a flush can wait for them.
        var writing: [UInt64: Task<Void, Never>] = [:]
        var nextWrite: UInt64 = 0
        /// Holds to give back (failed attempts') that the database refused so far.
        var releases: [BudgetReservation] = []
        /// When a failed write was last logged (failures repeat every round during an outage).
        var lastFailureLogged: ContinuousClock.Instant?
    }

    private let buffer = Mutex(Buffer())

    public init(app: any GatewayBackend, interval: Duration, metrics: GatewayMetrics, logger: Logger, finalFlushWindow: Duration = .seconds(5)) {
        self.finalFlushWindow = finalFlushWindow
        self.app = app
        self.interval = interval
        self.metrics = metrics
        self.logger = logger
    }

    /// Adds a call's row to the next batch; its write settles `reservation`'s hold (PostgreSQL), when given.
    public func append(_ record: UsageRecord, settling reservation: BudgetReservation? = nil) {
        buffer.withLock { $0.entries.append(Entry(record: record, reservation: reservation)) }
    }

    /// Writes a call's row at once, off the call's path, settling `reservation`'s shared hold in the same statement, so
    /// the hold's room comes back as soon as the call ends (a budget's limit then holds as closely as it did when holds
    /// were settled by themselves); a row the database refuses joins the next batch (writing it twice counts it once).
    public func appendSettlingNow(_ record: UsageRecord, settling reservation: BudgetReservation) {
        buffer.withLock { state in
            let id = state.nextWrite
            state.nextWrite &+= 1
            state.writing[id] = Task { [self] in
                do {
                    try await app.record([record], settling: [reservation]) { error in
                        logger.error("budget thresholds not recorded", metadata: ["error": "\(error)"])
                    }
                } catch {
                    // Refused or not answered: with the next batch (written twice, it counts once).
                    append(record, settling: reservation)
                }
                _ = buffer.withLock { $0.writing.removeValue(forKey: id) }
            }
        }
    }

    /// Gives a reservation back on a later round (it could not be given back at once).
    public func releaseLater(_ reservation: BudgetReservation) {
        buffer.withLock { $0.releases.append(reservation) }
    }

    /// Rows waiting to be written.
    public var pending: Int { buffer.withLock { $0.entries.count } }

    /// Holds waiting to be given back.
    public var pendingReleases: Int { buffer.withLock { $0.releases.count } }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            // The heartbeat keeps its own time: a long round of writes after an outage must not make this instance look
            // dead to the others (they would give back its budget holds).
            group.addTask { [self] in
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    await app.keepBudgetHolds()
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
                }
            }
            // The custody log's minutes, apart: a slow append must not delay the heartbeat.
            group.addTask { [self] in
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    await app.appendCustody()
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
                }
            }
            group.addTask { [self] in await writeUntilShutdown() }
            await group.waitForAll()
        }
    }

    /// Writes every round until the graceful shutdown, then the last rows.
    private func writeUntilShutdown() async {
        // The wait ends early at graceful shutdown; the last flush runs after the server has stopped.
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            await flush()
        }
        // The last rows are tried again while the database refuses, for a part of the shutdown's bound (the process
        // exits at the bound whatever happens; a cancelled shutdown stops trying at once).
        let until = ContinuousClock.now + finalFlushWindow
        await flush()
        while pending > 0 || pendingReleases > 0, ContinuousClock.now < until, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(250))
            await flush()
        }
        let (rows, releases) = buffer.withLock { ($0.entries.count, $0.releases.count) }
        if rows > 0 || releases > 0 {
            logger.critical("usage rows not written at shutdown", metadata: ["rows": "\(rows)", "holds_not_released": "\(releases)"])
        }
    }

    /// Writes every buffered row and gives back every pending hold now (after the rows being written at once are done);
    /// what the database refuses stays for the next round.
    ///
    /// Rows go a statement's worth at a time, each with the database's deadline: a long backlog drains across rounds
    /// instead of starting again from its first rows on every one. A statement the database refuses for what it holds
    /// (not for being away) is written row by row, so one bad row never holds back the others: a row refused alone is
    /// dropped (logged, counted) and its hold given back.
    public func flush() async {
        for write in buffer.withLock({ Array($0.writing.values) }) { await write.value }
        await releasePending()
        let batch = buffer.withLock { buffer -> [Entry] in
            defer { buffer.entries.removeAll(keepingCapacity: true) }
            return buffer.entries
        }
        defer { report() }
        var start = 0
        while start < batch.count {
            let chunk = Array(batch[start..<min(start + app.usageBatchSize, batch.count)])
            do {
                try await write(chunk)
            } catch where app.isUnavailable(error) {
                logFailure("usage rows not written; kept for the next round", rows: batch.count - start, error: error)
                keep(Array(batch[start...]))
                return
            } catch {
                // Refused for what it holds: one row at a time.
                for (index, entry) in chunk.enumerated() {
                    do {
                        try await write([entry])
                    } catch where app.isUnavailable(error) {
                        keep(Array(chunk[index...]) + Array(batch[(start + chunk.count)...]))
                        return
                    } catch {
                        metrics.usageDropped(1)
                        logger.critical("usage row refused by the database; dropped", metadata: ["row": "\(entry.record.id)", "error": "\(error)"])
                        if let reservation = entry.reservation { releaseLater(reservation) }
                    }
                }
            }
            start += chunk.count
        }
    }

    /// Writes rows (one statement on PostgreSQL), then claims the budget thresholds their settles reached.
    private func write(_ entries: [Entry]) async throws {
        try await app.record(entries.map(\.record), settling: entries.compactMap(\.reservation)) { [logger] error in
            logger.error("budget thresholds not recorded", metadata: ["error": "\(error)"])
        }
    }

    /// Puts rows back at the front of the buffer for the next round; beyond ``maximumBuffered`` the oldest are dropped.
    private func keep(_ entries: [Entry]) {
        let dropped = buffer.withLock { buffer -> Int in
            buffer.entries.insert(contentsOf: entries, at: 0)
            let excess = max(0, buffer.entries.count - Self.maximumBuffered)
            buffer.entries.removeFirst(excess)
            return excess
        }
        if dropped > 0 {
            metrics.usageDropped(dropped)
            logger.critical("usage rows dropped", metadata: ["rows": "\(dropped)"])
        }
    }

    private func releasePending() async {
        let releases = buffer.withLock { buffer -> [BudgetReservation] in
            defer { buffer.releases.removeAll() }
            return buffer.releases
        }
        var failed: [BudgetReservation] = []
        for (index, reservation) in releases.enumerated() {
            do {
                try await app.release(reservation)
            } catch {
                // The database refuses: the rest wait for the next round too.
                failed = Array(releases[index...])
                logFailure("budget holds not given back; kept for the next round", rows: failed.count, error: error)
                break
            }
        }
        guard !failed.isEmpty else { return }
        buffer.withLock { buffer in
            buffer.releases.insert(contentsOf: failed, at: 0)
            // Beyond the cap the oldest are left to the reclaim of this instance's holds once it is gone.
            buffer.releases.removeFirst(max(0, buffer.releases.count - Self.maximumBuffered))
        }
    }

    /// Logs a failed write at most every 30 s (an outage fails every round).
    private func logFailure(_ message: Logger.Message, rows: Int, error: any Error) {
        let due = buffer.withLock { buffer -> Bool in
            let now = ContinuousClock.now
            if let last = buffer.lastFailureLogged, now - last < .seconds(30) { return false }
            buffer.lastFailureLogged = now
            return true
        }
        if due { logger.error(message, metadata: ["rows": "\(rows)", "error": "\(error)"]) }
    }

    private func report() {
        let (rows, releases) = buffer.withLock { ($0.entries.count, $0.releases.count) }
        metrics.usageBuffered(rows: rows, releases: releases)
    }
}
