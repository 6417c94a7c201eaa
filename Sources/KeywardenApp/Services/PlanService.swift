import Foundation
import KeywardenCore
import KeywardenStore
import SQLKit

/// Plans: named default limits a platform admin sets once; a workspace on a plan gets its limits for those it leaves
/// unset (its own limit wins, limit by limit). Held with the platform's part of resolution, so a change reaches every
/// instance's gateway like a card change.
public struct PlanService: Sendable {
    let app: AppServices
    var store: Store { app.store }

    public func list() async throws -> [Plan] {
        try await store.engine.read { db in try await self.store.plans.all(on: db) }
    }

    public func get(_ name: String) async throws -> Plan {
        guard let plan = try await find(name) else { throw KeywardenError.notFound("plan") }
        return plan
    }

    /// The plan named, if there is one.
    public func find(_ name: String) async throws -> Plan? {
        try await store.engine.read { db in try await self.store.plans.get(name, on: db) }
    }

    /// The limits that hold for a workspace: its own, else its plan's, else (platform budget) `defaultPlatformBudget`.
    public func effectiveLimits(of workspace: Workspace, defaultPlatformBudget: Int?) async throws -> EffectiveLimits {
        try await store.engine.read { db in try await self.effectiveLimits(of: workspace, defaultPlatformBudget: defaultPlatformBudget, on: db) }
    }

    func effectiveLimits(of workspace: Workspace, defaultPlatformBudget: Int?, on db: any SQLDatabase) async throws -> EffectiveLimits {
        var plan: Plan?
        if let name = workspace.plan { plan = try await store.plans.get(name, on: db) }
        return EffectiveLimits(own: workspace.budget, ownRates: workspace.rateLimits, ownCycle: workspace.budgetCycle, plan: plan,
                               defaultPlatformBudget: defaultPlatformBudget)
    }

    /// Creates or replaces a plan's limits.
    public func save(_ plan: Plan, actor: String) async throws -> Plan {
        _ = try Plan.validName(plan.name)
        try BudgetService.check(plan.budget)
        try RateLimitService.check(plan.rateLimits)
        return try await store.engine.transaction { db in
            try await self.store.plans.save(plan, actor: actor, on: db)
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: "plan.saved", targetType: "plan", targetID: plan.name,
                details: [
                    "platform_limit_milli": plan.budget.platform.map(String.init) ?? "none", "byok_limit_milli": plan.budget.byok.map(String.init) ?? "none",
                    "requests_per_minute": plan.rateLimits.requestsPerMinute.map(String.init) ?? "none",
                    "tokens_per_minute": plan.rateLimits.tokensPerMinute.map(String.init) ?? "none",
                    "budget_period": (plan.budgetCycle ?? .calendarMonth).text,
                    "platform_fallback": plan.platformFallback?.rawValue ?? "default",
                ]
            ), on: db)
            return plan
        }
    }

    /// Deletes a plan no workspace is on (`409 plan_in_use` otherwise).
    public func delete(_ name: String, actor: String) async throws {
        try await store.engine.transaction { db in
            guard try await self.store.plans.get(name, on: db) != nil else { throw KeywardenError.notFound("plan") }
            let users = try await self.store.workspaces.count(onPlan: name, on: db)
            guard users == 0 else {
                throw KeywardenError(.conflict, code: "plan_in_use", message: "\(users) workspace(s) are on the plan '\(name)'; move them to another plan first.")
            }
            try await self.store.plans.delete(name, on: db)
            try await self.store.audit.append(AuditEvent(actor: actor, action: "plan.deleted", targetType: "plan", targetID: name), on: db)
        }
    }
}
