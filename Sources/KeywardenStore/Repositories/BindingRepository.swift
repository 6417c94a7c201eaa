import Foundation
import KeywardenCore
import SQLKit

/// The `bindings` table: a consumer's calls (of one modality, or all) pinned to a key.
public struct BindingRepository: Sendable {
    package static let table = "bindings"

    public init() {}

    /// Creates or replaces the binding of (workspace, consumer, modality).
    public func put(_ binding: Binding, actor: String, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.workspace(binding.workspaceID))
        try await delete(workspaceID: binding.workspaceID, consumer: binding.consumer, modality: binding.modality, on: db)
        try await db.insert(into: Self.table)
            .columns("workspace_id", "consumer", "modality", "credential_id", "created_at", "created_by")
            .values(SQLBind(binding.workspaceID), SQLBind(binding.consumer), SQLBind(binding.modality?.rawValue ?? ""),
                    SQLBind(binding.credentialID), SQLBind(Timestamp.now), SQLBind(actor))
            .run()
    }

    /// Removes a binding; returns whether there was one.
    @discardableResult
    public func delete(workspaceID: String, consumer: String, modality: Modality?, on db: any SQLDatabase) async throws -> Bool {
        ChangeLog.touch(.workspace(workspaceID))
        let rows = try await db.delete(from: Self.table)
            .where("workspace_id", .equal, workspaceID).where("consumer", .equal, consumer).where("modality", .equal, modality?.rawValue ?? "")
            .returning("consumer").all()
        return !rows.isEmpty
    }

    /// Removes every binding of a workspace; returns how many there were.
    @discardableResult
    public func deleteAll(workspaceID: String, on db: any SQLDatabase) async throws -> Int {
        ChangeLog.touch(.workspace(workspaceID))
        return try await db.delete(from: Self.table).where("workspace_id", .equal, workspaceID).returning("consumer").all().count
    }

    /// The bindings of one workspace, or of all (`nil`).
    public func list(workspaceID: String?, on db: any SQLDatabase) async throws -> [Binding] {
        var query = db.select().column("*").from(Self.table)
        if let workspaceID { query = query.where("workspace_id", .equal, workspaceID) }
        return try await query.orderBy("consumer").orderBy("modality").all().map { row in
            let modality = try row.decode(column: "modality", as: String.self)
            return Binding(
                workspaceID: try row.decode(column: "workspace_id", as: String.self),
                consumer: try row.decode(column: "consumer", as: String.self),
                modality: modality.isEmpty ? nil : Modality(rawValue: modality),
                credentialID: try row.decode(column: "credential_id", as: String?.self)
            )
        }
    }
}
