import Foundation
import KeywardenCore
import SQLKit

/// One entry of a workspace's custody log: a use of one of its own secrets (or a minute's gateway calls on it).
public struct CustodyEntry: Sendable, Equatable, Codable {
    public let workspaceID: String
    /// 1, 2, 3… within the workspace: its chain.
    public let seq: Int
    /// When the entry was written.
    public let at: String
    public let use: CustodyUse
    public let credentialID: String
    /// How many uses it stands for (gateway calls of a minute; 1 otherwise).
    public let count: Int
    /// The first and last use it stands for.
    public let firstAt: String
    public let lastAt: String
    /// Who used it: `token:tok_…`, `cli`, `system` (health checks), `instance:…` (gateway calls).
    public let actor: String
    public let prevHash: String
    public let hash: String

    enum CodingKeys: String, CodingKey {
        case seq, at, use, count, actor, hash
        case workspaceID = "workspace_id"
        case credentialID = "credential_id"
        case firstAt = "first_at"
        case lastAt = "last_at"
        case prevHash = "prev_hash"
    }

    /// The `prev_hash` of a workspace's first entry: the hash of its id, so a chain cannot be passed off as another's.
    public static func genesisHash(workspaceID: String) -> String {
        ChainHash.of(["keywarden.custody.genesis.v1", workspaceID])
    }

    static func computeHash(workspaceID: String, seq: Int, at: String, use: CustodyUse, credentialID: String, count: Int,
                            firstAt: String, lastAt: String, actor: String, prevHash: String) -> String {
        ChainHash.of(["keywarden.custody.v1", workspaceID, String(seq), at, use.rawValue, credentialID, String(count), firstAt, lastAt, actor, prevHash])
    }

    /// Whether the stored hash matches the entry's content.
    public var hashMatchesContent: Bool {
        hash == Self.computeHash(workspaceID: workspaceID, seq: seq, at: at, use: use, credentialID: credentialID, count: count,
                                 firstAt: firstAt, lastAt: lastAt, actor: actor, prevHash: prevHash)
    }
}

/// A use about to be appended to a workspace's custody log.
public struct CustodyEvent: Sendable, Equatable {
    public var use: CustodyUse
    public var credentialID: String
    public var count: Int
    public var firstAt: String
    public var lastAt: String
    public var actor: String

    public init(use: CustodyUse, credentialID: String, count: Int = 1, firstAt: String = Timestamp.now, lastAt: String? = nil, actor: String) {
        self.use = use
        self.credentialID = credentialID
        self.count = count
        self.firstAt = firstAt
        self.lastAt = lastAt ?? firstAt
        self.actor = actor
    }
}

/// Each workspace's custody log: append-only, hash-chained per workspace (so a workspace can check its own export
/// without anyone else's entries). Nothing in Keywarden edits or deletes an entry; `keywarden audit verify` walks
/// every chain.
public struct CustodyLog: Sendable {
    package static let table = "custody_log"

    public init() {}

    /// Appends `events` to `workspaceID`'s chain. Call it inside the transaction that makes the use (transactions are
    /// serialized, so reading the head and appending cannot interleave).
    @discardableResult
    public func append(_ events: [CustodyEvent], workspaceID: String, on db: any SQLDatabase) async throws -> [CustodyEntry] {
        guard !events.isEmpty else { return [] }
        let head = try await db.select().columns("seq", "hash").from(Self.table).where("workspace_id", .equal, workspaceID)
            .orderBy("seq", .descending).limit(1).first()
        var seq = try head?.decode(column: "seq", as: Int.self) ?? 0
        var prevHash = try head?.decode(column: "hash", as: String.self) ?? CustodyEntry.genesisHash(workspaceID: workspaceID)
        let at = Timestamp.now
        var entries: [CustodyEntry] = []
        for event in events {
            seq += 1
            let hash = CustodyEntry.computeHash(workspaceID: workspaceID, seq: seq, at: at, use: event.use, credentialID: event.credentialID,
                                                count: event.count, firstAt: event.firstAt, lastAt: event.lastAt, actor: event.actor, prevHash: prevHash)
            entries.append(CustodyEntry(workspaceID: workspaceID, seq: seq, at: at, use: event.use, credentialID: event.credentialID, count: event.count,
                                        firstAt: event.firstAt, lastAt: event.lastAt, actor: event.actor, prevHash: prevHash, hash: hash))
            prevHash = hash
        }
        // Bounded statements: a backlog of many minutes stays under the engines' bind limits.
        let perStatement = StatementLimits.rowsPerStatement(bindingColumns: 11)
        for start in stride(from: 0, to: entries.count, by: perStatement) {
            try await db.insert(into: Self.table).models(Array(entries[start..<min(start + perStatement, entries.count)])).run()
        }
        return entries
    }

    /// A workspace's entries, newest first.
    public func list(workspaceID: String, limit: Int, offset: Int, on db: any SQLDatabase) async throws -> [CustodyEntry] {
        try await db.select().column("*").from(Self.table).where("workspace_id", .equal, workspaceID)
            .orderBy("seq", .descending).limit(limit).offset(offset).all(decoding: CustodyEntry.self)
    }

    /// A workspace's entries from `seq` `after` on, oldest first (an export, a page at a time).
    public func entries(workspaceID: String, after: Int, limit: Int, on db: any SQLDatabase) async throws -> [CustodyEntry] {
        try await db.select().column("*").from(Self.table).where("workspace_id", .equal, workspaceID).where("seq", .greaterThan, after)
            .orderBy("seq", .ascending).limit(limit).all(decoding: CustodyEntry.self)
    }

    /// How many entries a workspace's log holds.
    public func count(workspaceID: String, on db: any SQLDatabase) async throws -> Int {
        let row = try await db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n").from(Self.table)
            .where("workspace_id", .equal, workspaceID).first()
        return try row?.decode(column: "n", as: Int.self) ?? 0
    }

    /// The outcome of walking every workspace's chain.
    public struct Verification: Sendable, Equatable {
        /// How many entries were checked, in how many chains.
        public let entries: Int
        public let chains: Int
        /// The first entry that breaks a chain, and why; `nil` when every chain is intact.
        public let firstBroken: (workspaceID: String, seq: Int, reason: String)?

        public var isIntact: Bool { firstBroken == nil }

        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.entries == rhs.entries && lhs.chains == rhs.chains && lhs.firstBroken?.workspaceID == rhs.firstBroken?.workspaceID
                && lhs.firstBroken?.seq == rhs.firstBroken?.seq && lhs.firstBroken?.reason == rhs.firstBroken?.reason
        }
    }

    /// Walks each workspace's chain from its first entry and names the first entry that does not follow.
    public func verify(_ engine: any DatabaseEngine, pageSize: Int = 1000) async throws -> Verification {
        let workspaces = try await engine.read { db in
            try await db.select().distinct().column("workspace_id").from(Self.table).orderBy("workspace_id").all()
                .map { try $0.decode(column: "workspace_id", as: String.self) }
        }
        var checked = 0
        for workspaceID in workspaces {
            let outcome = try await verify(workspaceID: workspaceID, engine, pageSize: pageSize)
            checked += outcome.entries
            if let broken = outcome.broken {
                return Verification(entries: checked, chains: workspaces.count, firstBroken: (workspaceID, broken.seq, broken.reason))
            }
        }
        return Verification(entries: checked, chains: workspaces.count, firstBroken: nil)
    }

    /// Walks one workspace's chain.
    public func verify(workspaceID: String, _ engine: any DatabaseEngine, pageSize: Int = 1000) async throws -> (entries: Int, broken: (seq: Int, reason: String)?) {
        try await ChainWalk.verify(genesis: CustodyEntry.genesisHash(workspaceID: workspaceID), pageSize: pageSize) { after, limit in
            try await engine.read { db in try await self.entries(workspaceID: workspaceID, after: after, limit: limit, on: db) }
        }
    }
}
