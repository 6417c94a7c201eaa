import KeywardenCore

/// The doors' entry points to plans: reading and changing them is the platform's (platform admins).
extension PlanService {
    /// Every plan.
    public func list(principal: Principal) async throws -> [Plan] {
        try principal.authorizePlatform()
        return try await list()
    }

    /// One plan; an unknown name is `not_found`.
    public func get(_ name: String, principal: Principal) async throws -> Plan {
        try principal.authorizePlatform()
        return try await get(name)
    }

    /// Creates or replaces a plan.
    public func save(_ plan: Plan, principal: Principal) async throws -> Plan {
        try principal.authorizePlatform()
        return try await save(plan, actor: principal.actor)
    }

    /// Deletes a plan no workspace is on.
    public func delete(_ name: String, principal: Principal) async throws {
        try principal.authorizePlatform()
        try await delete(name, actor: principal.actor)
    }
}
