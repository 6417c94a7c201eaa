import Foundation
import Hummingbird
import KeywardenApp
import KeywardenCore
import KeywardenStore

/// `/api/v1/platform/plans`: plans and their default limits (platform admins). A workspace is put on a plan with
/// `PATCH /api/v1/workspaces/{ws} {"plan": …}`; its own limits, where set, win over the plan's.
struct PlansController {
    let app: AppServices

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.get { _, context -> Response in
            try JSONResponse.make(["items": try await app.plans.list(principal: try context.requirePrincipal()).map(PlanBody.init)])
        }
        group.get(":plan") { _, context -> Response in
            try JSONResponse.make(PlanBody(try await app.plans.get(try context.parameters.require("plan"), principal: try context.requirePrincipal())))
        }
        group.put(":plan") { request, context -> Response in
            let principal = try context.requirePrincipal()
            try principal.authorizePlatform()
            let plan = try await request.decodeBody(SaveBody.self, context: context).plan(named: try context.parameters.require("plan"))
            return try JSONResponse.make(PlanBody(try await app.plans.save(plan, principal: principal)))
        }
        group.delete(":plan") { _, context -> Response in
            try await app.plans.delete(try context.parameters.require("plan"), principal: try context.requirePrincipal())
            return try JSONResponse.make(MessageOnlyBody(message: "Plan deleted."))
        }
    }

    /// A plan's whole set of limits: each absent or null one is no limit (a PUT replaces the plan).
    struct SaveBody: RequestBody {
        static let fields: Set<String> = ["platform_limit_credits", "byok_limit_credits", "requests_per_minute", "tokens_per_minute", "budget_period",
                                          "platform_fallback"]
        static let nullableFields: Set<String> = fields
        let budgetPeriod: String?
        let platformFallback: String?
        let platformLimitCredits: Double?
        let byokLimitCredits: Double?
        let requestsPerMinute: Int?
        let tokensPerMinute: Int?

        enum CodingKeys: String, CodingKey {
            case platformLimitCredits = "platform_limit_credits", byokLimitCredits = "byok_limit_credits"
            case requestsPerMinute = "requests_per_minute", tokensPerMinute = "tokens_per_minute"
            case budgetPeriod = "budget_period"
            case platformFallback = "platform_fallback"
        }

        /// The plan it describes: each absent limit is no limit, an absent period a calendar month, an absent fallback
        /// the platform's default.
        func plan(named name: String) throws -> Plan {
            Plan(
                name: try Plan.validName(name),
                budget: BudgetLimits(platform: try platformLimitCredits.map { try BudgetController.milli($0, field: "platform_limit_credits") },
                                     byok: try byokLimitCredits.map { try BudgetController.milli($0, field: "byok_limit_credits") }),
                rateLimits: RateLimits(requestsPerMinute: requestsPerMinute, tokensPerMinute: tokensPerMinute),
                budgetCycle: try budgetPeriod.map { try BudgetCycle.parse($0, field: "budget_period") },
                platformFallback: try platformFallback.map { try PlatformFallback.parse($0) }
            )
        }
    }

    struct PlanBody: Encodable {
        let name: String
        let budgetPeriod: String
        /// When the platform's keys stand in for a workspace's own (`nil`: the platform's default).
        let platformFallback: String?
        let platformLimitCredits: Double?
        let byokLimitCredits: Double?
        let requestsPerMinute: Int?
        let tokensPerMinute: Int?

        init(_ plan: Plan) {
            name = plan.name
            budgetPeriod = (plan.budgetCycle ?? .calendarMonth).text
            platformFallback = plan.platformFallback?.rawValue
            platformLimitCredits = plan.budget.platform.map { Double($0) / 1000 }
            byokLimitCredits = plan.budget.byok.map { Double($0) / 1000 }
            requestsPerMinute = plan.rateLimits.requestsPerMinute
            tokensPerMinute = plan.rateLimits.tokensPerMinute
        }

        enum CodingKeys: String, CodingKey {
            case name
            case budgetPeriod = "budget_period"
            case platformFallback = "platform_fallback"
            case platformLimitCredits = "platform_limit_credits", byokLimitCredits = "byok_limit_credits"
            case requestsPerMinute = "requests_per_minute", tokensPerMinute = "tokens_per_minute"
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(budgetPeriod, forKey: .budgetPeriod)
            try c.encode(platformFallback, forKey: .platformFallback)
            try c.encode(platformLimitCredits, forKey: .platformLimitCredits)
            try c.encode(byokLimitCredits, forKey: .byokLimitCredits)
            try c.encode(requestsPerMinute, forKey: .requestsPerMinute)
            try c.encode(tokensPerMinute, forKey: .tokensPerMinute)
        }
    }
}
