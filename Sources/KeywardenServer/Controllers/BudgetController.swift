import Foundation
import Hummingbird
import KeywardenApp
import KeywardenCore
import KeywardenStore

/// A workspace's budgets and rate limits: read by the workspace (`usage.read`), set by the platform admin.
struct BudgetController {
    let app: AppServices
    /// The platform budget of a workspace without its own (`KEYWARDEN_DEFAULT_BUDGET_CREDITS`).
    let defaultPlatformBudget: Int?

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.get { _, context -> Response in
            let id = try context.parameters.require("workspace")
            return try JSONResponse.make(BudgetBody(try await app.budgets.status(workspaceID: id, defaultPlatformLimit: defaultPlatformBudget,
                                                                                 principal: try context.requirePrincipal())))
        }
        group.patch { request, context -> Response in
            let id = try context.parameters.require("workspace")
            let principal = try context.requirePrincipal()
            // Refused before the workspace is read: its limits are the platform's to see and set.
            try principal.authorizePlatform()
            let body = try await request.decodeBody(UpdateBody.self, context: context)
            try await body.apply(to: id, app: app, principal: principal)
            return try JSONResponse.make(BudgetBody(try await app.budgets.status(workspaceID: id, defaultPlatformLimit: defaultPlatformBudget)))
        }
    }

    /// `GET/PATCH /api/v1/workspaces/{ws}/rate-limits`: requests and tokens per minute on the platform's keys.
    func addRateLimitRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.get { _, context -> Response in
            let id = try context.parameters.require("workspace")
            let (workspace, effective) = try await app.rateLimits.limits(workspaceID: id, principal: try context.requirePrincipal())
            return try JSONResponse.make(RateLimitsBody(workspace.rateLimits, effective: effective))
        }
        group.patch { request, context -> Response in
            let id = try context.parameters.require("workspace")
            let principal = try context.requirePrincipal()
            try principal.authorizePlatform()
            let workspace = try await request.decodeBody(RateLimitsUpdate.self, context: context).apply(to: id, app: app, principal: principal)
            return try JSONResponse.make(RateLimitsBody(workspace.rateLimits, effective: try await app.plans.effectiveLimits(of: workspace, defaultPlatformBudget: nil).rateLimits))
        }
    }

    struct RateLimitsUpdate: RequestBody {
        static let fields: Set<String> = ["requests_per_minute", "tokens_per_minute"]
        static let nullableFields: Set<String> = fields
        let requestsPerMinute: Patch<Int>
        let tokensPerMinute: Patch<Int>

        enum CodingKeys: String, CodingKey {
            case requestsPerMinute = "requests_per_minute", tokensPerMinute = "tokens_per_minute"
        }

        /// The limits it asks for over `current`: each field given replaces its limit (`null`: none).
        func limits(over current: RateLimits) -> RateLimits {
            var limits = current
            if let change = requestsPerMinute.change { limits.requestsPerMinute = change }
            if let change = tokensPerMinute.change { limits.tokensPerMinute = change }
            return limits
        }

        /// Refuses a value out of range before anything is set.
        func check() throws {
            try RateLimitService.check(limits(over: RateLimits()))
        }

        /// Sets the workspace's rate limits: each field given replaces its limit, the others are kept.
        @discardableResult
        func apply(to workspaceID: String, app: AppServices, principal: Principal) async throws -> Workspace {
            try principal.authorizePlatform()
            let limits = limits(over: try await app.workspaceService.get(workspaceID).rateLimits)
            return try await app.rateLimits.setLimits(workspaceID: workspaceID, limits, principal: principal)
        }
    }

    struct RateLimitsBody: Encodable {
        /// The workspace's own limits, then the ones that hold (its own, else its plan's).
        let requestsPerMinute: Int?
        let tokensPerMinute: Int?
        let effective: Effective

        struct Effective: Encodable {
            let requestsPerMinute: Int?
            let tokensPerMinute: Int?

            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(requestsPerMinute, forKey: .requestsPerMinute)
                try c.encode(tokensPerMinute, forKey: .tokensPerMinute)
            }
        }

        init(_ limits: RateLimits, effective: RateLimits) {
            requestsPerMinute = limits.requestsPerMinute
            tokensPerMinute = limits.tokensPerMinute
            self.effective = Effective(requestsPerMinute: effective.requestsPerMinute, tokensPerMinute: effective.tokensPerMinute)
        }

        enum CodingKeys: String, CodingKey {
            case requestsPerMinute = "requests_per_minute", tokensPerMinute = "tokens_per_minute", effective
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(requestsPerMinute, forKey: .requestsPerMinute)
            try c.encode(tokensPerMinute, forKey: .tokensPerMinute)
            try c.encode(effective, forKey: .effective)
        }
    }

    /// Credits as thousandths of a credit, refused outside 0 … the largest limit.
    static func milli(_ credits: Double, field: String) throws(KeywardenError) -> Int {
        guard credits >= 0, let rounded = UntrustedNumber.integer(credits * 1000), rounded <= BudgetLimits.maximumMilliCredits else {
            throw .invalid(field, "\(field) must be a number of credits from 0 to \(BudgetLimits.maximumMilliCredits / 1000), or null for no limit.")
        }
        // A positive limit below a thousandth of a credit is the smallest limit there is, not 0 (which stops every call).
        return credits > 0 ? max(rounded, 1) : rounded
    }

    struct UpdateBody: RequestBody {
        static let fields: Set<String> = ["platform_limit_credits", "byok_limit_credits", "period"]
        static let nullableFields: Set<String> = fields
        let platformLimitCredits: Patch<Double>
        let byokLimitCredits: Patch<Double>
        /// `month`, `month:D`, `week` or `day`; null: the plan's, else calendar months.
        let period: Patch<String>

        enum CodingKeys: String, CodingKey {
            case platformLimitCredits = "platform_limit_credits"
            case byokLimitCredits = "byok_limit_credits"
            case period
        }

        /// The limits it asks for over `current` (each field given replaces its value, `null`: no limit), and the period
        /// (`nil`: kept; `.some(nil)`: the plan's).
        func limits(over current: BudgetLimits) throws -> (BudgetLimits, cycle: BudgetCycle??) {
            var limits = current
            if let change = platformLimitCredits.change { limits.platform = try change.map { try BudgetController.milli($0, field: "platform_limit_credits") } }
            if let change = byokLimitCredits.change { limits.byok = try change.map { try BudgetController.milli($0, field: "byok_limit_credits") } }
            let cycle: BudgetCycle?? = try period.change.map { text in try text.map { try BudgetCycle.parse($0, field: "period") } }
            return (limits, cycle)
        }

        /// Refuses a value out of range before anything is set.
        func check() throws {
            _ = try limits(over: BudgetLimits())
        }

        /// Sets the workspace's budgets: each field given replaces its value, the others are kept.
        func apply(to workspaceID: String, app: AppServices, principal: Principal) async throws {
            // Refused before the workspace is read: its limits are the platform's to see and set.
            try principal.authorizePlatform()
            let (limits, cycle) = try limits(over: try await app.workspaceService.get(workspaceID).budget)
            _ = try await app.budgets.setLimits(workspaceID: workspaceID, limits, cycle: cycle, principal: principal)
        }
    }

    struct BudgetBody: Encodable {
        struct Scope: Encodable {
            let limitCredits: Double?
            let isDefault: Bool
            /// `workspace`, `plan`, `default`, or null without a limit.
            let limitSource: String?
            let spentCredits: Double
            let reservedCredits: Double
            let percent: Double?

            enum CodingKeys: String, CodingKey {
                case limitCredits = "limit_credits", isDefault = "default", limitSource = "limit_source", spentCredits = "spent_credits"
                case reservedCredits = "reserved_credits", percent
            }

            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(limitCredits, forKey: .limitCredits)
                try c.encode(isDefault, forKey: .isDefault)
                try c.encode(limitSource, forKey: .limitSource)
                try c.encode(spentCredits, forKey: .spentCredits)
                try c.encode(reservedCredits, forKey: .reservedCredits)
                try c.encode(percent, forKey: .percent)
            }
        }

        /// How the periods run: `month`, `month:15`, `week`, `day`.
        let period: String
        let periodStart: String
        let periodEnd: String
        let platform: Scope
        let byok: Scope

        enum CodingKeys: String, CodingKey {
            case period, periodStart = "period_start", periodEnd = "period_end", platform, byok
        }

        init(_ statuses: [BudgetStatus]) {
            func scope(_ which: BudgetScope) -> Scope {
                guard let status = statuses.first(where: { $0.scope == which }) else {
                    return Scope(limitCredits: nil, isDefault: false, limitSource: nil, spentCredits: 0, reservedCredits: 0, percent: nil)
                }
                return Scope(limitCredits: status.limit.map { Double($0) / 1000 }, isDefault: status.isDefault, limitSource: status.source?.rawValue,
                             spentCredits: Double(status.spent) / 1000, reservedCredits: Double(status.reserved) / 1000,
                             percent: status.fraction.map { ($0 * 1000).rounded() / 10 })
            }
            let period = statuses.first?.period ?? BudgetPeriod(containing: Date())
            self.period = (statuses.first?.cycle ?? .calendarMonth).text
            periodStart = Timestamp.string(period.start)
            periodEnd = Timestamp.string(period.end)
            platform = scope(.platform)
            byok = scope(.byok)
        }
    }
}
