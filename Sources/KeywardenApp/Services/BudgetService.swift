import Foundation
import KeywardenCore
import KeywardenStore
import Logging
import SQLKit

/// A budget's state in the current period, as the API and the usage page show it.
public struct BudgetStatus: Sendable, Equatable {
    public let scope: BudgetScope
    /// The limit in thousandths of a credit; `nil` when the scope has none.
    public let limit: Int?
    /// Where the limit comes from: the workspace, its plan, or the platform's default; `nil` without a limit.
    public let source: LimitSource?
    public let spent: Int
    public let reserved: Int
    public let period: BudgetPeriod
    /// How the periods run.
    public let cycle: BudgetCycle

    /// Whether the limit is not the workspace's own (its plan's or the platform's default).
    public var isDefault: Bool { source != nil && source != .workspace }

    /// The share spent, 0…∞ (1 is the whole budget); `nil` without a limit.
    public var fraction: Double? { limit.map { $0 > 0 ? Double(spent) / Double($0) : (spent > 0 ? 1 : 0) } }
}

/// A share of a budget held for a call in flight, settled with what the call cost.
public struct BudgetReservation: Sendable, Equatable {
    public let workspaceID: String
    public let scope: BudgetScope
    public let period: String
    public let periodEnd: Date
    public let amount: Int
    public let limit: Int
    /// The hold's row in the shared table (PostgreSQL); `nil` when the counters live in this process's memory.
    public let holdID: String?
}

/// A budget hold whose statement failed without an answer (the database went away, the deadline passed): it may have
/// been written. Giving it back is harmless if it was not (``BudgetService/release(_:)``), and needed if it was.
public struct UncertainHold: Error, Sendable, CustomStringConvertible {
    public let reservation: BudgetReservation
    public let underlying: any Error

    public var description: String { "a budget hold may or may not have been written: \(underlying)" }
}

/// Budgets per workspace: limits set by the platform admin, spending reserved before a call and settled after it in
/// rows every instance shares, and the 80 / 95 / 100 % events raised once per period each.
public struct BudgetService: Sendable {
    let app: AppServices
    var store: Store { app.store }

    /// The limits of a workspace (its own; its plan's and the platform's default are applied where they are read) and,
    /// with `cycle`, how their periods run (`.some(nil)`: its plan's, else calendar months; spending under a new cycle
    /// is counted from zero in its current period, the ledger keeps every call).
    public func setLimits(workspaceID: String, _ limits: BudgetLimits, cycle: BudgetCycle?? = nil, actor: String) async throws -> Workspace {
        try Self.check(limits)
        let workspace = try await saveLimits(workspaceID: workspaceID, limits, cycle: cycle, actor: actor)
        // A limit set now holds the period's spending so far, including calls no limit counted.
        let cycle = try await store.engine.read { db in
            try await self.app.plans.effectiveLimits(of: workspace, defaultPlatformBudget: nil, on: db).cycle
        }
        for scope in BudgetScope.allCases where limits[scope] != nil {
            try await catchUp(workspaceID: workspaceID, period: BudgetPeriod(containing: Date(), cycle: cycle), scope: scope)
        }
        return workspace
    }

    private func saveLimits(workspaceID: String, _ limits: BudgetLimits, cycle: BudgetCycle??, actor: String) async throws -> Workspace {
        try await store.engine.transaction { db in
            guard var workspace = try await self.store.workspaces.get(workspaceID, on: db) else { throw KeywardenError.notFound("workspace") }
            let newCycle = cycle ?? workspace.budgetCycle
            guard workspace.budget != limits || workspace.budgetCycle != newCycle else { return workspace }
            workspace.budget = limits
            workspace.budgetCycle = newCycle
            workspace.updatedAt = Timestamp.now
            try await self.store.workspaces.save(workspace, on: db)
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "budget.updated", targetType: "workspace", targetID: workspaceID, workspaceID: workspaceID,
                details: ["platform_limit_milli": limits.platform.map(String.init) ?? "none", "byok_limit_milli": limits.byok.map(String.init) ?? "none",
                          "period": newCycle?.text ?? "default"]
            ), on: db)
            return workspace
        }
    }

    /// Checks limits against their range (a workspace's and a plan's alike).
    public static func check(_ limits: BudgetLimits) throws(KeywardenError) {
        for (scope, value) in [(BudgetScope.platform, limits.platform), (.byok, limits.byok)] {
            if let value, !(0...BudgetLimits.maximumMilliCredits).contains(value) {
                throw KeywardenError.invalid("\(scope.rawValue)_limit_credits", "A limit is a number of credits from 0 to \(BudgetLimits.maximumMilliCredits / 1000).")
            }
        }
    }

    /// Each scope's state this period; `defaultPlatformLimit` applies where the workspace has no platform limit of its own.
    public func status(workspaceID: String, defaultPlatformLimit: Int?, at now: Date = Date()) async throws -> [BudgetStatus] {
        // The meter shows what the limit will hold the next call to: caught up with the ledger first.
        let limits = try await store.engine.read { db in
            guard let workspace = try await self.store.workspaces.get(workspaceID, on: db) else { throw KeywardenError.notFound("workspace") }
            return try await self.app.plans.effectiveLimits(of: workspace, defaultPlatformBudget: defaultPlatformLimit, on: db)
        }
        for scope in BudgetScope.allCases where limits.budget[scope] != nil {
            try await catchUpOnce(workspaceID: workspaceID, period: BudgetPeriod(containing: now, cycle: limits.cycle), scope: scope)
        }
        return try await store.engine.read { db in
            guard let workspace = try await self.store.workspaces.get(workspaceID, on: db) else { throw KeywardenError.notFound("workspace") }
            let effective = try await self.app.plans.effectiveLimits(of: workspace, defaultPlatformBudget: defaultPlatformLimit, on: db)
            let period = BudgetPeriod(containing: now, cycle: effective.cycle)
            var result: [BudgetStatus] = []
            for scope in BudgetScope.allCases {
                let held = self.countsInMemory ? self.app.budgetBook.spend(LocalBudgetBook.Key(workspaceID: workspaceID, period: period.key, scope: scope)) : nil
                var spend = BudgetSpend()
                if let held { spend = held } else {
                    spend = try await self.store.budgets.spend(workspaceID: workspaceID, period: period.key, scope: scope, on: db)
                }
                let limit = effective.budget[scope]
                result.append(BudgetStatus(scope: scope, limit: limit, source: effective.source(of: scope), spent: spend.spent,
                                           reserved: spend.reserved, period: period, cycle: effective.cycle))
            }
            return result
        }
    }

    /// Counts, in a period's budget, what the ledger's rows of that period and scope cost beyond what the counter holds
    /// (calls made while no limit applied): one definition of a period's spending for the meter, the limit and the usage
    /// report. Idempotent; raises the counter held in memory too.
    public func catchUp(workspaceID: String, period: BudgetPeriod, scope: BudgetScope) async throws {
        let spent = try await store.engine.transaction(changesState: false) { db in
            try await self.store.budgets.catchUp(workspaceID: workspaceID, period: period, scope: scope, on: db)
        }
        let key = LocalBudgetBook.Key(workspaceID: workspaceID, period: period.key, scope: scope)
        if countsInMemory { app.budgetBook.raise(key, toAtLeast: spent) }
        app.budgetCatchUps.markDone(key)
    }

    /// ``catchUp(workspaceID:period:scope:)`` the first time this process meets the period (before its first hold or meter).
    func catchUpOnce(workspaceID: String, period: BudgetPeriod, scope: BudgetScope) async throws {
        guard !app.budgetCatchUps.isDone(LocalBudgetBook.Key(workspaceID: workspaceID, period: period.key, scope: scope)) else { return }
        try await catchUp(workspaceID: workspaceID, period: period, scope: scope)
    }

    /// Whether counters live in this process's memory (a single-process store) rather than in shared rows.
    var countsInMemory: Bool { app.isSingleProcess }

    /// Holds `amount` of the workspace's budget for a call; `nil` when that would pass `limit`.
    ///
    /// On PostgreSQL the hold is one statement (one round trip) and a row of its own, owned by this instance: it is
    /// settled by the call's usage row (``UsageService/record(_:)``) or given back (``release(_:)``), and reclaimed by
    /// another instance if this one dies (``BudgetHoldKeeper``).
    public func reserve(workspaceID: String, scope: BudgetScope, amount: Int, limit: Int, cycle: BudgetCycle = .calendarMonth,
                        at now: Date = Date()) async throws -> BudgetReservation? {
        // A hold larger than the whole budget never fits (and never reaches the database's arithmetic).
        guard amount >= 0, amount <= limit else { return nil }
        let period = BudgetPeriod(containing: now, cycle: cycle)
        try await catchUpOnce(workspaceID: workspaceID, period: period, scope: scope)
        var holdID: String?
        let held: Bool
        if countsInMemory {
            let key = LocalBudgetBook.Key(workspaceID: workspaceID, period: period.key, scope: scope)
            if !app.budgetBook.holds(key) {
                let stored = try await store.engine.read { db in
                    try await self.store.budgets.spend(workspaceID: workspaceID, period: period.key, scope: scope, on: db)
                }
                app.budgetBook.load(key, spent: stored.spent, announced: stored.announced, periodEnd: period.end)
            }
            held = app.budgetBook.reserve(key, amount: amount, limit: limit)
        } else {
            let id = Identifier.make("hold")
            holdID = id
            let instance = store.engine.instanceID
            do {
                held = try await store.engine.counterWrite { db in
                    try await self.store.budgets.hold(id, workspaceID: workspaceID, period: period.key, scope: scope, amount: amount, limit: limit,
                                                      instanceID: instance, on: db)
                }
            } catch {
                // Written or not, the caller cannot know: it gives the hold back (harmless when it was not written).
                throw UncertainHold(reservation: BudgetReservation(workspaceID: workspaceID, scope: scope, period: period.key, periodEnd: period.end,
                                                                   amount: amount, limit: limit, holdID: id), underlying: error)
            }
        }
        guard held else { return nil }
        return BudgetReservation(workspaceID: workspaceID, scope: scope, period: period.key, periodEnd: period.end, amount: amount, limit: limit,
                                 holdID: holdID)
    }

    /// Gives a reservation back without cost (an attempt that failed over). On PostgreSQL one statement, harmless to
    /// repeat: a hold already given back is not given back twice.
    public func release(_ reservation: BudgetReservation) async throws {
        if settleHeld(reservation, cost: 0) != nil { return }
        guard let holdID = reservation.holdID else { return }
        _ = try await store.engine.counterWrite { db in try await self.store.budgets.settle(hold: holdID, cost: 0, on: db) }
    }

    /// Releases a reservation and counts what the call cost (0 for a call that failed); raises the thresholds this
    /// spending reached that were not announced yet this period, once across instances. A hold already settled (a
    /// second settle of the same reservation) changes nothing.
    @discardableResult
    public func settle(_ reservation: BudgetReservation, cost: Int) async throws -> [Event] {
        let spent: Int
        let reached: [Int]
        if let held = settleHeld(reservation, cost: cost) {
            (spent, reached) = held
        } else {
            guard let holdID = reservation.holdID else { return [] }
            guard let spend = try await store.engine.counterWrite({ db in try await self.store.budgets.settle(hold: holdID, cost: cost, on: db) }) else {
                return []
            }
            (spent, reached) = try await claimThresholds(of: reservation, after: spend)
        }
        return try await announce(reached, reservation: reservation, spent: spent)
    }

    /// After holds were settled by usage rows (PostgreSQL): claims and records the thresholds each spending reached.
    /// `reservations` gives each workspace, period and scope's limit (the last reservation's).
    public func settled(_ spends: [UsageRepository.Settled], reservations: [BudgetReservation]) async throws {
        for settled in spends {
            guard let reservation = reservations.last(where: {
                $0.workspaceID == settled.workspaceID && $0.period == settled.period && $0.scope.rawValue == settled.scope
            }) else { continue }
            let (spent, reached) = try await claimThresholds(of: reservation, after: BudgetSpend(spent: settled.spent, announced: settled.announced))
            try await announce(reached, reservation: reservation, spent: spent)
        }
    }

    /// Claims the thresholds of the reservation's limit reached above the highest announced (a compare-and-set on the
    /// shared row: of several instances one wins; another may claim some in between, then the row is read again and
    /// what is left is claimed, each threshold exactly once). The spending and the thresholds this call claimed.
    func claimThresholds(of reservation: BudgetReservation, after settled: BudgetSpend) async throws -> (spent: Int, reached: [Int]) {
        guard !BudgetThreshold.reached(spent: settled.spent, limit: reservation.limit, above: settled.announced).isEmpty else {
            return (settled.spent, [])
        }
        return try await store.engine.counterWrite { db -> (Int, [Int]) in
            var spend = settled
            for _ in 0..<8 {
                let reached = BudgetThreshold.reached(spent: spend.spent, limit: reservation.limit, above: spend.announced)
                guard let highest = reached.last else { return (spend.spent, []) }
                if try await self.store.budgets.announce(workspaceID: reservation.workspaceID, period: reservation.period,
                                                         scope: reservation.scope, from: spend.announced, to: highest, on: db) {
                    return (spend.spent, reached)
                }
                spend = try await self.store.budgets.spend(workspaceID: reservation.workspaceID, period: reservation.period,
                                                           scope: reservation.scope, on: db)
            }
            return (settled.spent, [])
        }
    }

    /// Settles at once, in this process's memory, when the counters live there (a single-process store): the spending
    /// after it and the thresholds it reached, to ``announce(_:reservation:spent:)``; `nil` when the counters are shared.
    public func settleHeld(_ reservation: BudgetReservation, cost: Int) -> (spent: Int, reached: [Int])? {
        guard countsInMemory else { return nil }
        let key = LocalBudgetBook.Key(workspaceID: reservation.workspaceID, period: reservation.period, scope: reservation.scope)
        let settled = app.budgetBook.settle(key, reserved: reservation.amount, cost: cost, limit: reservation.limit, periodEnd: reservation.periodEnd)
        return (settled.spend.spent, settled.reached)
    }

    /// Records the `budget.threshold` events of thresholds a settle claimed, in their own transaction after it: a
    /// failure here cannot undo the settle.
    @discardableResult
    public func announce(_ reached: [Int], reservation: BudgetReservation, spent: Int) async throws -> [Event] {
        guard !reached.isEmpty else { return [] }
        return try await store.engine.transaction(changesState: false) { db in
            try await self.recordThresholds(reached, reservation: reservation, spent: spent, on: db)
        }
    }

    func recordThresholds(_ reached: [Int], reservation: BudgetReservation, spent: Int, on db: any SQLDatabase) async throws -> [Event] {
        let workspace = try await store.workspaces.get(reservation.workspaceID, on: db)
        let targets = try await app.notifications.emailTargets(workspaceID: reservation.workspaceID, on: db)
        var events: [Event] = []
        for percent in reached {
            events.append(try await store.events.record(
                .budgetThreshold, workspaceID: reservation.workspaceID, credentialID: nil, providerID: nil,
                data: [
                    "workspace_id": reservation.workspaceID, "workspace_name": workspace?.name ?? reservation.workspaceID,
                    "scope": reservation.scope.rawValue, "percent": "\(percent)", "limit_credits": Self.credits(reservation.limit),
                    "spent_credits": Self.credits(spent), "period": reservation.period,
                    "period_end": Timestamp.string(reservation.periodEnd),
                ],
                emailTargets: targets, on: db))
        }
        return events
    }

    /// Thousandths of a credit as a decimal number of credits (`1.5`).
    public static func credits(_ milli: Int) -> String {
        let whole = milli / 1000, rest = abs(milli % 1000)
        guard rest != 0 else { return "\(whole)" }
        var fraction = String(format: "%03d", rest)
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(whole).\(fraction)"
    }
}

extension AppServices {
    public var budgets: BudgetService { BudgetService(app: self) }
}
