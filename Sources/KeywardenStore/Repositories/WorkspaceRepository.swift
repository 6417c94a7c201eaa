import Foundation
import KeywardenCore
import SQLKit

/// A customer workspace (team) of the platform.
public struct Workspace: Sendable, Equatable, Codable {
    public let id: String
    public var name: String
    /// Whether the workspace's plan lets it bring its own keys.
    public var byokAllowed: Bool
    /// Whether at most one provider may be active at a time.
    public var exclusive: Bool
    public var notificationEmail: String?
    public let createdAt: String
    public var updatedAt: String
    /// Its spending limits per month.
    public var budget = BudgetLimits()
    /// Its rate limits on the platform's keys.
    public var rateLimits = RateLimits()
    /// The plan whose default limits fill the ones it leaves unset.
    public var plan: String?
    /// How its budgets' periods run, if it chose (else its plan's, else calendar months).
    public var budgetCycle: BudgetCycle?
    /// When the platform's keys stand in for its own, if it chose (else its plan's, else the platform's default).
    public var platformFallback: PlatformFallback?
}

/// The `workspaces` table.
public struct WorkspaceRepository: Sendable {
    package static let table = "workspaces"

    public init() {}

    /// Creates a workspace, in the caller's transaction (the application audits it).
    public func create(name: String, byokAllowed: Bool, exclusive: Bool, actor: String, on db: any SQLDatabase) async throws -> Workspace {
        let now = Timestamp.now
        let workspace = Workspace(
            id: Identifier.make("ws"), name: name, byokAllowed: byokAllowed, exclusive: exclusive,
            notificationEmail: nil, createdAt: now, updatedAt: now
        )
        ChangeLog.touch(.workspace(workspace.id))
        try await db.insert(into: Self.table)
            .columns("id", "name", "byok_allowed", "exclusive", "notification_email", "created_at", "updated_at")
            .values(
                SQLBind(workspace.id), SQLBind(name), SQLBind(byokAllowed), SQLBind(exclusive),
                SQLBind(workspace.notificationEmail), SQLBind(now), SQLBind(now)
            )
            .run()
        return workspace
    }

    /// Writes a workspace's settings as they are.
    public func save(_ workspace: Workspace, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.workspace(workspace.id))
        try await db.update(Self.table)
            .set("name", to: workspace.name).set("byok_allowed", to: workspace.byokAllowed)
            .set("exclusive", to: workspace.exclusive).set("notification_email", to: workspace.notificationEmail)
            .set("updated_at", to: workspace.updatedAt)
            .set("budget_platform_milli", to: workspace.budget.platform).set("budget_byok_milli", to: workspace.budget.byok)
            .set("rate_rpm", to: workspace.rateLimits.requestsPerMinute).set("rate_tpm", to: workspace.rateLimits.tokensPerMinute)
            .set("plan", to: workspace.plan).set("budget_cycle", to: workspace.budgetCycle?.text)
            .set("platform_fallback", to: workspace.platformFallback?.rawValue)
            .where("id", .equal, workspace.id).run()
    }

    /// One workspace.
    public func get(_ id: String, on db: any SQLDatabase) async throws -> Workspace? {
        try await db.select().column("*").from(Self.table).where("id", .equal, id).first().map(Self.decode)
    }

    /// The names of the workspaces among `ids` that exist, by id (one query).
    public func names(ids: [String], on db: any SQLDatabase) async throws -> [String: String] {
        guard !ids.isEmpty else { return [:] }
        var names: [String: String] = [:]
        for row in try await db.select().columns("id", "name").from(Self.table).where("id", .in, ids).all() {
            names[try row.decode(column: "id", as: String.self)] = try row.decode(column: "name", as: String.self)
        }
        return names
    }

    /// How many workspaces there are.
    public func count(on db: any SQLDatabase) async throws -> Int {
        let row = try await db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n").from(Self.table).first()
        return try row?.decode(column: "n", as: Int.self) ?? 0
    }

    /// How many workspaces are on a plan.
    public func count(onPlan plan: String, on db: any SQLDatabase) async throws -> Int {
        let row = try await db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n").from(Self.table).where("plan", .equal, plan).first()
        return try row?.decode(column: "n", as: Int.self) ?? 0
    }

    /// Every workspace, oldest first.
    public func list(on db: any SQLDatabase) async throws -> [Workspace] {
        try await db.select().column("*").from(Self.table).orderBy("created_at").all().map(Self.decode)
    }

    /// A page of workspaces whose name contains `search` (case-insensitive, taken literally: `%`, `_` and `\` match
    /// themselves), ordered by name (case-insensitive) then id, and how many match in all.
    public func page(search: String?, limit: Int, offset: Int, on db: any SQLDatabase) async throws -> (items: [Workspace], total: Int) {
        func filtered(_ select: SQLSelectBuilder) -> SQLSelectBuilder {
            let select = select.from(Self.table)
            guard let search, !search.isEmpty else { return select }
            return select.where(ContainsPattern.predicate(column: "name", contains: search))
        }
        let countRow = try await filtered(db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n")).first()
        let total = try countRow?.decode(column: "n", as: Int.self) ?? 0
        let items = try await filtered(db.select().column("*"))
            .orderBy(SQLFunction("lower", args: SQLColumn("name"))).orderBy("name").orderBy("id")
            .limit(limit).offset(offset)
            .all().map(Self.decode)
        return (items, total)
    }

    /// Deletes a workspace's row and the rows that exist only for it (its fallback engagements), in the caller's
    /// transaction; whether there was one. What else it owns (keys, members, tokens, bindings, webhooks) is removed
    /// first by the application, which audits it.
    @discardableResult
    public func delete(_ id: String, on db: any SQLDatabase) async throws -> Bool {
        ChangeLog.touch(.workspace(id))
        try await db.delete(from: EventRepository.fallbacks).where("workspace_id", .equal, id).run()
        let rows = try await db.delete(from: Self.table).where("id", .equal, id).returning("id").all()
        return !rows.isEmpty
    }

    static func decode(_ row: any SQLRow) throws -> Workspace {
        Workspace(
            id: try row.decode(column: "id", as: String.self),
            name: try row.decode(column: "name", as: String.self),
            byokAllowed: try row.decode(column: "byok_allowed", as: Bool.self),
            exclusive: try row.decode(column: "exclusive", as: Bool.self),
            notificationEmail: try row.decode(column: "notification_email", as: String?.self),
            createdAt: try row.decode(column: "created_at", as: String.self),
            updatedAt: try row.decode(column: "updated_at", as: String.self),
            budget: BudgetLimits(platform: try row.decode(column: "budget_platform_milli", as: Int?.self),
                                 byok: try row.decode(column: "budget_byok_milli", as: Int?.self)),
            rateLimits: RateLimits(requestsPerMinute: try row.decode(column: "rate_rpm", as: Int?.self),
                                   tokensPerMinute: try row.decode(column: "rate_tpm", as: Int?.self)),
            plan: try row.decode(column: "plan", as: String?.self),
            budgetCycle: try row.decode(column: "budget_cycle", as: String?.self).flatMap(BudgetCycle.init(text:)),
            platformFallback: try row.decode(column: "platform_fallback", as: String?.self).flatMap(PlatformFallback.init(rawValue:))
        )
    }
}
