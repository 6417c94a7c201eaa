import Foundation
import KeywardenCore
import SQLKit

/// A provider card's state that a person can change.
public struct ProviderState: Sendable, Equatable {
    public let providerID: String
    public var displayOrder: Int
    /// Whether a person saved the order (seeding no longer touches it).
    public var displayOrderSaved: Bool
    public var defaultModel: String?
    /// Whether a person saved the default model (seeding no longer touches it).
    public var defaultModelSaved: Bool
    public var active: Bool
    public var updatedAt: String
    public var updatedBy: String?
}

/// What a seeding run did.
public struct SeedReport: Sendable, Equatable {
    /// Providers added because the catalog has them and the database did not.
    public var inserted: [String] = []
    /// Seeded values (never saved by a person) moved to the catalog's newer seed.
    public var reseeded: [String] = []
    /// Saved default models that are no longer in the curated list (kept, reported as custom).
    public var customDefaults: [String: String] = [:]
}

/// The `providers` table: the catalog state people change (default model, order, active).
public struct ProviderStateRepository: Sendable {
    package static let table = "providers"

    public init() {}

    /// Inserts missing providers and updates values that are still the seeded ones.
    /// Never touches a value a person saved, a key, or an extra.
    public func seed(_ catalog: ProviderCatalog, on db: any SQLDatabase) async throws -> SeedReport {
        ChangeLog.touch(.platform)
        var report = SeedReport()
        let existing = Dictionary(uniqueKeysWithValues: try await all(on: db).map { ($0.providerID, $0) })
        let now = Timestamp.now
        for provider in catalog.providers {
            guard let state = existing[provider.id] else {
                try await db.insert(into: Self.table)
                    .columns("id", "display_order", "display_order_saved", "default_model", "default_model_saved", "active", "created_at", "updated_at")
                    .values(
                        SQLBind(provider.id), SQLBind(provider.displayOrder), SQLBind(false),
                        SQLBind(provider.defaultModel), SQLBind(false), SQLBind(false), SQLBind(now), SQLBind(now)
                    )
                    .run()
                report.inserted.append(provider.id)
                continue
            }
            var update = db.update(Self.table)
            var changed = false
            if !state.displayOrderSaved, state.displayOrder != provider.displayOrder {
                update = update.set("display_order", to: provider.displayOrder)
                changed = true
            }
            if !state.defaultModelSaved, state.defaultModel != provider.defaultModel {
                update = update.set("default_model", to: provider.defaultModel)
                changed = true
            }
            if changed {
                try await update.set("updated_at", to: now).where("id", .equal, provider.id).run()
                report.reseeded.append(provider.id)
            }
            if state.defaultModelSaved, let model = state.defaultModel, provider.isCustomModel(model) {
                report.customDefaults[provider.id] = model
            }
        }
        return report
    }

    /// Every provider's state.
    public func all(on db: any SQLDatabase) async throws -> [ProviderState] {
        try await db.select().column("*").from(Self.table).orderBy("display_order").orderBy("id").all().map(Self.decode)
    }

    /// One provider's state.
    public func get(_ providerID: String, on db: any SQLDatabase) async throws -> ProviderState? {
        try await db.select().column("*").from(Self.table).where("id", .equal, providerID).first().map(Self.decode)
    }

    /// Saves a person's choice of default model (or `nil` to return to the seeded one).
    public func saveDefaultModel(_ model: String?, for providerID: String, seeded: String?, by actor: String, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.platform)
        try await db.update(Self.table)
            .set("default_model", to: model ?? seeded)
            .set("default_model_saved", to: model != nil)
            .set("updated_at", to: Timestamp.now).set("updated_by", to: actor)
            .where("id", .equal, providerID).run()
    }

    /// Saves a person's display order.
    public func saveDisplayOrder(_ order: Int, for providerID: String, by actor: String, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.platform)
        try await db.update(Self.table)
            .set("display_order", to: order).set("display_order_saved", to: true)
            .set("updated_at", to: Timestamp.now).set("updated_by", to: actor)
            .where("id", .equal, providerID).run()
    }

    /// Turns a provider card on or off.
    public func setActive(_ active: Bool, for providerID: String, by actor: String, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.platform)
        try await db.update(Self.table)
            .set("active", to: active)
            .set("updated_at", to: Timestamp.now).set("updated_by", to: actor)
            .where("id", .equal, providerID).run()
    }

    static func decode(_ row: any SQLRow) throws -> ProviderState {
        ProviderState(
            providerID: try row.decode(column: "id", as: String.self),
            displayOrder: try row.decode(column: "display_order", as: Int.self),
            displayOrderSaved: try row.decode(column: "display_order_saved", as: Bool.self),
            defaultModel: try row.decode(column: "default_model", as: String?.self),
            defaultModelSaved: try row.decode(column: "default_model_saved", as: Bool.self),
            active: try row.decode(column: "active", as: Bool.self),
            updatedAt: try row.decode(column: "updated_at", as: String.self),
            updatedBy: try row.decode(column: "updated_by", as: String?.self)
        )
    }
}
