import Foundation
import KeywardenCore
import KeywardenVault
import SQLKit

/// The `vault_secrets` table: every sealed secret, addressed by its owner row and field.
public struct SealedSecretRepository: Sendable {
    package static let table = "vault_secrets"

    public init() {}

    /// Inserts or replaces the sealed secret of `context`.
    public func put(_ sealed: SealedSecret, for context: SecretContext, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.credential(context.ownerID))
        let now = Timestamp.now
        // `master_key_id` names the key that wraps the data key: a scope key (`wk-…`), or in format 1 a master key (`mk-…`).
        let masterKeyID = sealed.wrappingKeyID ?? ""
        let existing = try await db.select().column("owner_id").from(Self.table)
            .where("owner_id", .equal, context.ownerID).where("field", .equal, context.field).first()
        if existing == nil {
            try await db.insert(into: Self.table)
                .columns("scope", "owner_id", "field", "master_key_id", "wrapped_key", "ciphertext", "created_at", "updated_at")
                .values(
                    SQLBind(context.scope.description), SQLBind(context.ownerID), SQLBind(context.field),
                    SQLBind(masterKeyID), SQLBind(Data(sealed.wrappedKey)), SQLBind(Data(sealed.ciphertext)),
                    SQLBind(now), SQLBind(now)
                )
                .run()
        } else {
            try await db.update(Self.table)
                .set("scope", to: context.scope.description)
                .set("master_key_id", to: masterKeyID)
                .set("wrapped_key", to: Data(sealed.wrappedKey))
                .set("ciphertext", to: Data(sealed.ciphertext))
                .set("updated_at", to: now)
                .where("owner_id", .equal, context.ownerID).where("field", .equal, context.field)
                .run()
        }
    }

    /// The sealed secret of `context`, if one is stored.
    ///
    /// The stored scope is not trusted to select the row: the context's scope is what the
    /// ciphertext is checked against when opened.
    public func get(_ context: SecretContext, on db: any SQLDatabase) async throws -> SealedSecret? {
        guard let row = try await db.select().columns("wrapped_key", "ciphertext").from(Self.table)
            .where("owner_id", .equal, context.ownerID).where("field", .equal, context.field).first()
        else { return nil }
        return SealedSecret(
            wrappedKey: Array(try row.decode(column: "wrapped_key", as: Data.self)),
            ciphertext: Array(try row.decode(column: "ciphertext", as: Data.self))
        )
    }

    /// Every sealed secret of the given fields, by `owner id/field`.
    public func all(fields: [String], on db: any SQLDatabase) async throws -> [String: SealedSecret] {
        var result: [String: SealedSecret] = [:]
        for row in try await db.select().columns("owner_id", "field", "wrapped_key", "ciphertext").from(Self.table)
            .where("field", .in, fields).all() {
            let key = try row.decode(column: "owner_id", as: String.self) + "/" + (try row.decode(column: "field", as: String.self))
            result[key] = SealedSecret(
                wrappedKey: Array(try row.decode(column: "wrapped_key", as: Data.self)),
                ciphertext: Array(try row.decode(column: "ciphertext", as: Data.self))
            )
        }
        return result
    }

    /// The sealed secrets of the given owners and fields, by `owner id/field`.
    public func all(ownerIDs: [String], fields: [String], on db: any SQLDatabase) async throws -> [String: SealedSecret] {
        var result: [String: SealedSecret] = [:]
        // Bounded statements: a workspace (or the platform) with thousands of keys is read in slices.
        for start in stride(from: 0, to: ownerIDs.count, by: 500) {
            let slice = Array(ownerIDs[start..<min(start + 500, ownerIDs.count)])
            for row in try await db.select().columns("owner_id", "field", "wrapped_key", "ciphertext").from(Self.table)
                .where("owner_id", .in, slice).where("field", .in, fields).all() {
                let key = try row.decode(column: "owner_id", as: String.self) + "/" + (try row.decode(column: "field", as: String.self))
                result[key] = SealedSecret(
                    wrappedKey: Array(try row.decode(column: "wrapped_key", as: Data.self)),
                    ciphertext: Array(try row.decode(column: "ciphertext", as: Data.self))
                )
            }
        }
        return result
    }

    /// Deletes every sealed secret of an owner row.
    public func deleteAll(ownerID: String, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.credential(ownerID))
        try await db.delete(from: Self.table).where("owner_id", .equal, ownerID).run()
    }

    /// How many sealed secrets each wrapping key wraps (scope keys `wk-…`; master keys `mk-…` for format 1).
    public func countByWrappingKey(on db: any SQLDatabase) async throws -> [String: Int] {
        let rows = try await db.select()
            .column("master_key_id")
            .column(SQLFunction("count", args: SQLLiteral.all), as: "n")
            .from(Self.table).groupBy("master_key_id").all()
        var counts: [String: Int] = [:]
        for row in rows {
            counts[try row.decode(column: "master_key_id", as: String.self)] = try row.decode(column: "n", as: Int.self)
        }
        return counts
    }
}
