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
        var dirty = false
    }

    private let entries = Mutex<[Key: Entry]>([:])

    /// Whether the key's counters are held (loaded from the store once, on first use).
    func holds(_ key: Key) -> Bool { entries.withLock { $0[key] != nil } }

    /// Starts holding a key's counters as stored (holds from an earlier process do not survive it).
    func load(_ key: Key, spent: Int, announced: Int) {
        entries.withLock { entries in
            if entries[key] == nil { entries[key] = Entry(spend: BudgetSpend(spent: spent, reserved: 0, announced: announced)) }
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

    /// Gives back a hold and adds the cost; the counters after it.
    func settle(_ key: Key, reserved: Int, cost: Int) -> BudgetSpend {
        entries.withLock { entries in
            var entry = entries[key] ?? Entry(spend: BudgetSpend())
            entry.spend.reserved = max(0, entry.spend.reserved - reserved)
            entry.spend.spent = entry.spend.spent.saturatingAdding(cost)
            entry.dirty = entry.dirty || cost != 0
            entries[key] = entry
            return entry.spend
        }
    }

    /// Moves the announced threshold from `from` to `to`; whether this call did.
    func announce(_ key: Key, from: Int, to: Int) -> Bool {
        entries.withLock { entries in
            guard var entry = entries[key], entry.spend.announced == from else { return false }
            entry.spend.announced = to
            entry.dirty = true
            entries[key] = entry
            return true
        }
    }

    /// The counters of a key, if held.
    func spend(_ key: Key) -> BudgetSpend? { entries.withLock { $0[key]?.spend } }

    /// The counters changed since the last call (marked clean), and forgets months other than `currentPeriod` once written.
    func takeDirty(currentPeriod: String) -> [(Key, BudgetSpend)] {
        entries.withLock { entries in
            var changed: [(Key, BudgetSpend)] = []
            for (key, entry) in entries where entry.dirty {
                changed.append((key, entry.spend))
                entries[key]?.dirty = false
            }
            entries = entries.filter { $0.key.period == currentPeriod || $0.value.dirty || $0.value.spend.reserved > 0 }
            return changed
        }
    }

    /// Puts back counters whose write failed, so the next round writes them.
    func markDirty(_ keys: [Key]) {
        entries.withLock { entries in for key in keys { entries[key]?.dirty = true } }
    }
}
