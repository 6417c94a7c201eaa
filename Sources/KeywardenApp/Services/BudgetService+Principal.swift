import KeywardenCore
import KeywardenStore

/// The doors' entry points to budgets and rate limits: reading them is `usage.read` in the workspace; setting them is the
/// platform's (its money). The API and the usage page call these; the command line and Keywarden's own work call the
/// `actor:` forms.
extension BudgetService {
    /// Each scope's state this period (`usage.read`).
    public func status(workspaceID: String, defaultPlatformLimit: Int?, principal: Principal) async throws -> [BudgetStatus] {
        try principal.authorize(.usageRead, inWorkspace: workspaceID)
        return try await status(workspaceID: workspaceID, defaultPlatformLimit: defaultPlatformLimit)
    }

    /// Sets the workspace's limits and period (a platform admin).
    public func setLimits(workspaceID: String, _ limits: BudgetLimits, cycle: BudgetCycle?? = nil, principal: Principal) async throws -> Workspace {
        try principal.authorizePlatform()
        return try await setLimits(workspaceID: workspaceID, limits, cycle: cycle, actor: principal.actor)
    }
}

extension RateLimitService {
    /// The workspace's own requests and tokens per minute, and the ones that hold (its own, else its plan's), for a
    /// principal with `usage.read` there.
    public func limits(workspaceID: String, principal: Principal) async throws -> (own: Workspace, effective: RateLimits) {
        try principal.authorize(.usageRead, inWorkspace: workspaceID)
        let workspace = try await app.workspaceService.get(workspaceID)
        return (workspace, try await app.plans.effectiveLimits(of: workspace, defaultPlatformBudget: nil).rateLimits)
    }

    /// Sets the workspace's requests and tokens per minute on the platform's keys (a platform admin).
    public func setLimits(workspaceID: String, _ limits: RateLimits, principal: Principal) async throws -> Workspace {
        try principal.authorizePlatform()
        return try await setLimits(workspaceID: workspaceID, limits, actor: principal.actor)
    }
}
