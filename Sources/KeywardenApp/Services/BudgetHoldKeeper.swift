import Foundation
import KeywardenStore
import Logging
import Synchronization

/// Keeps this instance's budget holds from being reclaimed, and gives back the holds of instances that died
/// (PostgreSQL; a single process holds its holds in memory, and they die with it).
///
/// Each instance writes a heartbeat (the database's clock) every sixth of ``deadAfter``. An instance reclaims the holds
/// of instances not seen for ``deadAfter`` only after its own heartbeats have succeeded for ``deadAfter`` without a
/// gap: after an outage every live instance has had that long to be seen again, so none loses a hold it still uses.
/// A hold reclaimed by mistake (an instance cut off from the database for longer) costs nothing but a moment of room
/// in the budget: its call's usage row still adds the cost when it is written.
public final class BudgetHoldKeeper: Sendable {
    /// How long an instance unseen is taken for dead (`KEYWARDEN_INSTANCE_DEAD_AFTER`).
    public let deadAfter: Duration

    private struct State {
        /// Since when the heartbeats have succeeded without a gap (`nil`: the last one failed).
        var healthySince: ContinuousClock.Instant?
        var lastBeat: ContinuousClock.Instant?
        var lastReclaim: ContinuousClock.Instant?
    }

    private let state = Mutex(State())

    init(deadAfter: Duration) {
        self.deadAfter = deadAfter
    }

    var heartbeatInterval: Duration { max(.seconds(1), deadAfter / 6) }

    /// One round: a heartbeat when due, and a reclaim when due and safe. Failures are logged and tried again next round.
    func round(store: Store, now: ContinuousClock.Instant = .now) async {
        let beatDue = state.withLock { state in state.lastBeat.map { now - $0 >= heartbeatInterval } ?? true }
        if beatDue {
            let instance = store.engine.instanceID
            do {
                try await store.engine.counterWrite { db in try await store.budgets.heartbeat(instanceID: instance, on: db) }
                state.withLock { state in
                    state.lastBeat = now
                    if state.healthySince == nil { state.healthySince = now }
                }
            } catch {
                state.withLock { $0.healthySince = nil }
                store.logger.warning("budget holds: heartbeat not written", metadata: ["error": "\(error)"])
                return
            }
        }
        let reclaimDue = state.withLock { state -> Bool in
            guard let since = state.healthySince, now - since >= deadAfter else { return false }
            return state.lastReclaim.map { now - $0 >= deadAfter / 2 } ?? true
        }
        guard reclaimDue else { return }
        state.withLock { $0.lastReclaim = now }
        let seconds = Int(deadAfter.components.seconds)
        do {
            let reclaimed = try await store.engine.counterWrite { db in try await store.budgets.reclaimHolds(deadAfter: seconds, on: db) }
            if reclaimed > 0 {
                store.logger.notice("budget holds of instances not seen for \(seconds) s given back", metadata: ["holds": "\(reclaimed)"])
            }
        } catch {
            store.logger.warning("budget holds: reclaim failed", metadata: ["error": "\(error)"])
        }
    }
}
