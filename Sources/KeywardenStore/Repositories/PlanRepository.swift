import Foundation
import KeywardenCore
import SQLKit

/// The `plans` table: each plan's default limits.
public struct PlanRepository: Sendable {
    package static let table = "plans"

    public init() {}

    /// Every plan, by name.
    public func all(on db: any SQLDatabase) async throws -> [Plan] {
        try await db.select().column("*").from(Self.table).orderBy("name").all().map(Self.decode)
    }

    public func get(_ name: String, on db: any SQLDatabase) async throws -> Plan? {
        try await db.select().column("*").from(Self.table).where("name", .equal, name).first().map(Self.decode)
    }

    /// Inserts or replaces a plan, in the caller's transaction (the application audits it).
    public func save(_ plan: Plan, actor: String, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.platform)
        let now = Timestamp.now
        if try await get(plan.name, on: db) == nil {
            try await db.insert(into: Self.table)
                .columns("name", "budget_platform_milli", "budget_byok_milli", "rate_rpm", "rate_tpm", "budget_cycle", "platform_fallback", "updated_at", "updated_by")
                .values(SQLBind(plan.name), SQLBind(plan.budget.platform), SQLBind(plan.budget.byok), SQLBind(plan.rateLimits.requestsPerMinute),
                        SQLBind(plan.rateLimits.tokensPerMinute), SQLBind(plan.budgetCycle?.text), SQLBind(plan.platformFallback?.rawValue),
                        SQLBind(now), SQLBind(actor))
                .run()
        } else {
            try await db.update(Self.table)
                .set("budget_platform_milli", to: plan.budget.platform).set("budget_byok_milli", to: plan.budget.byok)
                .set("rate_rpm", to: plan.rateLimits.requestsPerMinute).set("rate_tpm", to: plan.rateLimits.tokensPerMinute)
                .set("budget_cycle", to: plan.budgetCycle?.text)
                .set("platform_fallback", to: plan.platformFallback?.rawValue)
                .set("updated_at", to: now).set("updated_by", to: actor)
                .where("name", .equal, plan.name).run()
        }
    }

    @discardableResult
    public func delete(_ name: String, on db: any SQLDatabase) async throws -> Bool {
        ChangeLog.touch(.platform)
        return !(try await db.delete(from: Self.table).where("name", .equal, name).returning("name").all().isEmpty)
    }

    static func decode(_ row: any SQLRow) throws -> Plan {
        Plan(
            name: try row.decode(column: "name", as: String.self),
            budget: BudgetLimits(platform: try row.decode(column: "budget_platform_milli", as: Int?.self),
                                 byok: try row.decode(column: "budget_byok_milli", as: Int?.self)),
            rateLimits: RateLimits(requestsPerMinute: try row.decode(column: "rate_rpm", as: Int?.self),
                                   tokensPerMinute: try row.decode(column: "rate_tpm", as: Int?.self)),
            budgetCycle: try row.decode(column: "budget_cycle", as: String?.self).flatMap(BudgetCycle.init(text:)),
            platformFallback: try row.decode(column: "platform_fallback", as: String?.self).flatMap(PlatformFallback.init(rawValue:))
        )
    }
}
