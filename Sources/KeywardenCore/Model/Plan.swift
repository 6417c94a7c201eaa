import Foundation

/// A plan's default limits: a workspace on the plan that has no limit of its own gets the plan's, limit by limit.
public struct Plan: Sendable, Equatable, Codable {
    public let name: String
    public var budget: BudgetLimits
    public var rateLimits: RateLimits
    /// How the plan's budgets' periods run (`nil`: calendar months).
    public var budgetCycle: BudgetCycle?
    /// When the platform's keys stand in for a workspace's own (`nil`: the platform's default).
    public var platformFallback: PlatformFallback?

    public init(name: String, budget: BudgetLimits = BudgetLimits(), rateLimits: RateLimits = RateLimits(), budgetCycle: BudgetCycle? = nil,
                platformFallback: PlatformFallback? = nil) {
        self.platformFallback = platformFallback
        self.budgetCycle = budgetCycle
        self.name = name
        self.budget = budget
        self.rateLimits = rateLimits
    }

    /// A plan's name as written in URLs and bodies: 1 to 64 of `a-z`, `0-9`, `-`, `_`, `.` (`pro`, `team-2026`).
    public static func validName(_ text: String) throws(KeywardenError) -> String {
        let bytes = Array(text.utf8)
        guard (1...64).contains(bytes.count), bytes.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }) else {
            throw KeywardenError.invalid("plan", "A plan's name is 1 to 64 of a-z, 0-9, '-', '_' and '.'.", code: "invalid_plan")
        }
        return text
    }
}

/// Where a limit that holds for a workspace comes from.
public enum LimitSource: String, Sendable, Codable {
    /// Set on the workspace.
    case workspace
    /// The default of the workspace's plan.
    case plan
    /// The platform's default (`KEYWARDEN_DEFAULT_BUDGET_CREDITS`).
    case platformDefault = "default"
}

/// The limits that hold for a workspace: its own, else its plan's, else the platform's default budget. Built on every
/// gateway call that has a limit, so it allocates nothing.
public struct EffectiveLimits: Sendable, Equatable {
    public var budget: BudgetLimits
    public var rateLimits: RateLimits
    /// Where the platform budget and the own-keys budget came from (`nil`: no limit).
    public var platformSource: LimitSource?
    public var byokSource: LimitSource?
    /// How the budgets' periods run: the workspace's, else its plan's, else calendar months.
    public var cycle: BudgetCycle

    /// Overlays `own` on `plan` field by field, then the platform's default budget for platform-paid calls.
    public init(own: BudgetLimits, ownRates: RateLimits, ownCycle: BudgetCycle? = nil, plan: Plan?, defaultPlatformBudget: Int?) {
        cycle = ownCycle ?? plan?.budgetCycle ?? .calendarMonth
        func pick(_ scope: BudgetScope) -> (Int, LimitSource)? {
            if let value = own[scope] { return (value, .workspace) }
            if let value = plan?.budget[scope] { return (value, .plan) }
            if scope == .platform, let value = defaultPlatformBudget { return (value, .platformDefault) }
            return nil
        }
        let platform = pick(.platform)
        let byok = pick(.byok)
        budget = BudgetLimits(platform: platform?.0, byok: byok?.0)
        platformSource = platform?.1
        byokSource = byok?.1
        rateLimits = RateLimits(requestsPerMinute: ownRates.requestsPerMinute ?? plan?.rateLimits.requestsPerMinute,
                                tokensPerMinute: ownRates.tokensPerMinute ?? plan?.rateLimits.tokensPerMinute)
    }

    /// Where a scope's budget came from.
    public func source(of scope: BudgetScope) -> LimitSource? {
        scope == .platform ? platformSource : byokSource
    }
}
