import KeywardenCore
import Foundation
import SQLKit

/// The append-only, hash-chained audit log.
public struct AuditLog: Sendable {
    package static let table = "audit_log"

    public init() {}

    /// Appends an entry. Call it inside the transaction that makes the change, so both land or neither does;
    /// transactions are serialized, so reading the head and appending cannot interleave.
    @discardableResult
    public func append(_ event: AuditEvent, on db: any SQLDatabase) async throws -> AuditEntry {
        let head = try await db.select().columns("seq", "hash").from(Self.table)
            .orderBy("seq", .descending).limit(1).first()
        let seq = (try head?.decode(column: "seq", as: Int.self) ?? 0) + 1
        let prevHash = try head?.decode(column: "hash", as: String.self) ?? AuditEntry.genesisHash
        let details = Self.canonicalJSON(event.details)
        let at = Timestamp.now
        let hash = AuditEntry.computeHash(
            seq: seq, at: at, actor: event.actor, action: event.action, targetType: event.targetType,
            targetID: event.targetID, workspaceID: event.workspaceID, details: details,
            secretFingerprint: event.secretFingerprint, prevHash: prevHash
        )
        let entry = AuditEntry(
            seq: seq, at: at, actor: event.actor, action: event.action, targetType: event.targetType,
            targetID: event.targetID, workspaceID: event.workspaceID, details: details,
            secretFingerprint: event.secretFingerprint, prevHash: prevHash, hash: hash
        )
        try await db.insert(into: Self.table).model(entry).run()
        return entry
    }

    /// Entries, newest first, optionally of one workspace.
    public func list(workspaceID: String? = nil, limit: Int, offset: Int, on db: any SQLDatabase) async throws -> [AuditEntry] {
        var query = db.select().column("*").from(Self.table)
        if let workspaceID { query = query.where("workspace_id", .equal, workspaceID) }
        return try await query.orderBy("seq", .descending).limit(limit).offset(offset).all(decoding: AuditEntry.self)
    }

    /// The outcome of walking the chain.
    public struct Verification: Sendable, Equatable {
        /// How many entries were checked.
        public let entries: Int
        /// The first entry that breaks the chain, and why; `nil` when the chain is intact.
        public let firstBroken: (seq: Int, reason: String)?

        public var isIntact: Bool { firstBroken == nil }

        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.entries == rhs.entries && lhs.firstBroken?.seq == rhs.firstBroken?.seq && lhs.firstBroken?.reason == rhs.firstBroken?.reason
        }
    }

    /// Walks the chain from the first entry and names the first one that does not follow from its predecessor.
    public func verify(_ engine: any DatabaseEngine, pageSize: Int = 1000) async throws -> Verification {
        let outcome = try await ChainWalk.verify(genesis: AuditEntry.genesisHash, pageSize: pageSize) { after, limit in
            try await engine.read { db in
                try await db.select().column("*").from(Self.table)
                    .where("seq", .greaterThan, after).orderBy("seq", .ascending).limit(limit)
                    .all(decoding: AuditEntry.self)
            }
        }
        return Verification(entries: outcome.entries, firstBroken: outcome.broken)
    }

    static func canonicalJSON(_ details: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(details) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
