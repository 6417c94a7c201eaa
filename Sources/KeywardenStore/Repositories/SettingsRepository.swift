import KeywardenCore
import Foundation
import SQLKit

/// Operator settings stored as JSON values by key (`smtp`, …). Secrets among them live in the vault.
public struct SettingsRepository: Sendable {
    package static let table = "settings"

    public init() {}

    public func get<T: Decodable>(_ key: String, as type: T.Type, on db: any SQLDatabase) async throws -> T? {
        guard let row = try await db.select().column("value").from(Self.table).where("key", .equal, key).first() else { return nil }
        return try JSONDecoder().decode(T.self, from: Data(try row.decode(column: "value", as: String.self).utf8))
    }

    public func set(_ key: String, to value: some Encodable, by actor: String, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.platform)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = String(decoding: try encoder.encode(value), as: UTF8.self)
        let now = Timestamp.now
        if try await db.select().column("key").from(Self.table).where("key", .equal, key).first() == nil {
            try await db.insert(into: Self.table).columns("key", "value", "updated_at", "updated_by")
                .values(SQLBind(key), SQLBind(text), SQLBind(now), SQLBind(actor)).run()
        } else {
            try await db.update(Self.table).set("value", to: text).set("updated_at", to: now).set("updated_by", to: actor)
                .where("key", .equal, key).run()
        }
    }
}
