import Foundation
import KeywardenCore
import KeywardenStore
import SQLKit

/// Which audit entries to read: every filter optional, all of them applied together.
public struct AuditFilter: Sendable, Equatable {
    public var workspaceID: String?
    public var action: String?
    /// `token:tok_…`, `cli`, `system`.
    public var actor: String?
    public var targetType: String?
    public var targetID: String?

    public init(workspaceID: String? = nil, action: String? = nil, actor: String? = nil, targetType: String? = nil, targetID: String? = nil) {
        self.workspaceID = workspaceID
        self.action = action
        self.actor = actor
        self.targetType = targetType
        self.targetID = targetID
    }
}

/// An entry with the names of who acted and on what (as they are now; the entry keeps the ids it was written with),
/// and its details read as changes (`field: before → after`) and facts.
public struct NamedAuditEntry: Sendable, Equatable {
    public struct Change: Sendable, Equatable {
        public let field: String
        public let before: String
        public let after: String
    }

    public let entry: AuditEntry
    public let actorName: String
    public let targetName: String?
    public let workspaceName: String?
    public let changes: [Change]
    /// The other details, by name.
    public let facts: [(name: String, value: String)]

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.entry == rhs.entry && lhs.actorName == rhs.actorName && lhs.targetName == rhs.targetName && lhs.changes == rhs.changes
    }
}

/// Reading the audit log, a page at a time.
public struct AuditQueryService: Sendable {
    let app: AppServices
    var store: Store { app.store }

    /// Entries newest first, of one workspace or of all (`nil`), optionally of one action.
    public func page(workspaceID: String?, action: String?, pagination: Pagination) async throws -> (entries: [AuditEntry], total: Int) {
        try await page(AuditFilter(workspaceID: workspaceID, action: action), pagination: pagination)
    }

    /// Entries newest first matching `filter`.
    public func page(_ filter: AuditFilter, pagination: Pagination) async throws -> (entries: [AuditEntry], total: Int) {
        try await store.engine.read { db in
            func filtered(_ select: SQLSelectBuilder) -> SQLSelectBuilder {
                var select = select.from(AuditLog.table)
                if let workspaceID = filter.workspaceID { select = select.where("workspace_id", .equal, workspaceID) }
                for (column, value) in [("action", filter.action), ("actor", filter.actor), ("target_type", filter.targetType), ("target_id", filter.targetID)] {
                    if let value, !value.isEmpty { select = select.where(SQLIdentifier(column), .equal, SQLBind(value)) }
                }
                return select
            }
            let total = try await filtered(db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n")).first()?
                .decode(column: "n", as: Int.self) ?? 0
            let entries = try await filtered(db.select().column("*")).orderBy("seq", .descending)
                .limit(pagination.perPage).offset(pagination.offset).all(decoding: AuditEntry.self)
            return (entries, total)
        }
    }

    /// Entries newest first matching `filter`, within what the principal may read (`audit.read`: its own workspace; a
    /// platform admin, every workspace or the one the filter names); the filter as narrowed.
    public func page(_ filter: AuditFilter, pagination: Pagination, principal: Principal) async throws
        -> (filter: AuditFilter, entries: [AuditEntry], total: Int) {
        var filter = filter
        filter.workspaceID = try principal.readableScope(.auditRead, requested: filter.workspaceID, platformWide: false)
        let (entries, total) = try await page(filter, pagination: pagination)
        return (filter, entries, total)
    }

    /// The entries with names: people and tokens by name and kind, keys by nickname and provider, workspaces by name.
    public func named(_ entries: [AuditEntry]) async throws -> [NamedAuditEntry] {
        try await store.engine.read { db in
            var actors: [String: String] = [:]
            for actor in Set(entries.map(\.actor)) { actors[actor] = try await self.actorName(actor, on: db) }
            let keyIDs = entries.filter { $0.targetType == "credential" }.compactMap(\.targetID)
            let keys = try await self.store.credentials.labels(ids: Array(Set(keyIDs)), on: db)
            let workspaces = try await self.store.workspaces.names(
                ids: Array(Set(entries.compactMap(\.workspaceID) + entries.filter { $0.targetType == "workspace" }.compactMap(\.targetID))), on: db)
            var tokens: [String: String] = [:]
            for id in Set(entries.filter { $0.targetType == "token" }.compactMap(\.targetID)) {
                if let token = try await self.store.tokens.get(id, on: db) { tokens[id] = token.name }
            }
            return entries.map { entry in
                let target: String? = entry.targetID.flatMap { id in
                    switch entry.targetType {
                    case "credential": keys[id].map { "\($0.name.isEmpty ? $0.providerID : $0.name) (\($0.providerID) key)" }
                    case "workspace": workspaces[id]
                    case "token": tokens[id].map { "token “\($0)”" }
                    default: nil
                    }
                }
                let (changes, facts) = Self.read(entry.details)
                return NamedAuditEntry(entry: entry, actorName: actors[entry.actor] ?? entry.actor, targetName: target,
                                       workspaceName: entry.workspaceID.flatMap { workspaces[$0] }, changes: changes, facts: facts)
            }
        }
    }

    /// Who an actor is: a token's name and kind, the command line, Keywarden itself.
    func actorName(_ actor: String, on db: any SQLDatabase) async throws -> String {
        switch actor {
        case "cli": return "Command line"
        case "system": return "Keywarden"
        default:
            guard actor.hasPrefix("token:"), let token = try await store.tokens.get(String(actor.dropFirst(6)), on: db) else { return actor }
            switch token.kind {
            case .platformAdmin: return "\(token.name) (platform admin)"
            case .member: return "\(token.name) (\(token.role?.rawValue ?? "member"))"
            case .service: return "\(token.name) (service token)"
            }
        }
    }

    /// An entry's details as changes (`before.x` / `after.x` pairs) and the other facts, by name.
    static func read(_ details: String) -> ([NamedAuditEntry.Change], [(name: String, value: String)]) {
        guard let object = try? JSONDecoder().decode([String: String].self, from: Data(details.utf8)) else { return ([], []) }
        var changes: [NamedAuditEntry.Change] = []
        var facts: [(name: String, value: String)] = []
        for (name, value) in object.sorted(by: { $0.key < $1.key }) {
            if name.hasPrefix("before.") {
                let field = String(name.dropFirst(7))
                changes.append(.init(field: field, before: value, after: object["after.\(field)"] ?? "-"))
            } else if !name.hasPrefix("after.") {
                facts.append((name, value))
            }
        }
        return (changes, facts)
    }

    /// Walks the whole chain, as `keywarden audit verify` does.
    public func verifyChain() async throws -> AuditLog.Verification {
        try await store.audit.verify(store.engine)
    }
}
