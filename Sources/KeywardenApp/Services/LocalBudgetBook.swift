import Foundation
import KeywardenCore
import KeywardenStore
import Synchronization

/// Budget counters of a single-process store (SQLite): held in memory, checked and changed under one lock, and
/// written behind in batches. Two durable commits per call (hold, settle) would cost more than the call itself on a
/// file synced at every commit; with one process there is no other instance to agree with. A crash loses at most the
/// spending of the last unwritten batch (the ledger's rows still have it) and never a hold (holds die with the process).
final class LocalBudgetBook: Sendable {
    struct Key: Hashable, Sendable {
        let workspaceID: String
        let period: String
        let scope: BudgetScope
    }

    private struct Entry {
        var spend: BudgetSpend
        /// When the key's period ends (periods run on each workspace's own cycle).
        var periodEnd: Date
        var dirty = false
    }

    private let entries = Mutex<[Key: Entry]>([:])

    /// Whether the key's counters are held (loaded from the store once, on first use).
    func holds(_ key: Key) -> Bool { entries.withLock { $0[key] != nil } }

    /// Starts holding a key's counters as stored (holds from an earlier process do not survive it).
    func load(_ key: Key, spent: Int, announced: Int, periodEnd: Date) {
        entries.withLock { entries in
            if entries[key] == nil { entries[key] = Entry(spend: BudgetSpend(spent: spent, reserved: 0, announced: announced), periodEnd: periodEnd) }
        }
    }

    /// Raises a held key's spending to at least `spent` (the ledger's, caught up); a key not held is loaded from the store later.
    func raise(_ key: Key, toAtLeast spent: Int) {
        entries.withLock { entries in
            guard var entry = entries[key], entry.spend.spent < spent else { return }
            entry.spend.spent = spent
            entry.dirty = true
            entries[key] = entry
        }
    }

    /// Holds `amount` when spent and held stay within `limit`.
    func reserve(_ key: Key, amount: Int, limit: Int) -> Bool {
        entries.withLock { entries in
            guard var entry = entries[key] else { return false }
            guard entry.spend.spent.saturatingAdding(entry.spend.reserved).saturatingAdding(amount) <= limit else { return false }
            entry.spend.reserved = entry.spend.reserved.saturatingAdding(amount)
            entries[key] = entry
            return true
        }
    }

    /// Gives back a hold, adds the cost, and claims the thresholds of `limit` this spending reached that were not
    /// announced yet — all under one lock, so two settles cannot both miss (or both claim) a threshold.
    func settle(_ key: Key, reserved: Int, cost: Int, limit: Int, periodEnd: Date) -> (spend: BudgetSpend, reached: [Int]) {
        entries.withLock { entries in
            var entry = entries[key] ?? Entry(spend: BudgetSpend(), periodEnd: periodEnd)
            entry.spend.reserved = max(0, entry.spend.reserved - reserved)
            entry.spend.spent = entry.spend.spent.saturatingAdding(cost)
            let reached = BudgetThreshold.reached(spent: entry.spend.spent, limit: limit, above: entry.spend.announced)
            if let highest = reached.last { entry.spend.announced = highest }
            entry.dirty = entry.dirty || cost != 0 || !reached.isEmpty
            entries[key] = entry
            return (entry.spend, reached)
        }
    }

    /// The counters of a key, if held.
    func spend(_ key: Key) -> BudgetSpend? { entries.withLock { $0[key]?.spend } }

    /// The counters changed since the last call (marked clean). Periods ended by `now` are forgotten once written and
    /// free of holds (a failed write marks them dirty again, so they stay until written).
    func takeDirty(now: Date) -> [(Key, BudgetSpend)] {
        entries.withLock { entries in
            entries = entries.filter { $0.value.periodEnd > now || $0.value.dirty || $0.value.spend.reserved > 0 }
            var changed: [(Key, BudgetSpend)] = []
            for (key, entry) in entries where entry.dirty {
                changed.append((key, entry.spend))
                entries[key]?.dirty = false
            }
            return changed
        }
    }

    /// Puts back counters whose write failed, so the next round writes them.
    func markDirty(_ keys: [Key]) {
        entries.withLock { entries in for key in keys { entries[key]?.dirty = true } }
    }
}

/// The budget periods this process has caught up with the ledger (``BudgetService/catchUp(workspaceID:period:scope:)``):
/// each once, before its first hold or meter. Forgetting them (past a bound) only costs a statement more.
final class BudgetCatchUps: Sendable {
    private let done = Mutex<Set<LocalBudgetBook.Key>>([])
    static let bound = 100_000

    func isDone(_ key: LocalBudgetBook.Key) -> Bool { done.withLock { $0.contains(key) } }

    func markDone(_ key: LocalBudgetBook.Key) {
        done.withLock { done in
            if done.count >= Self.bound { done.removeAll(keepingCapacity: true) }
            done.insert(key)
        }
    }
}
