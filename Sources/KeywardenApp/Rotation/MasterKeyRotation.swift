import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import Logging
import SQLKit

/// How far a rotation has come.
public struct RotationProgress: Sendable, Equatable {
    /// Secrets re-wrapped so far in this run.
    public var rewrapped: Int
    /// Secrets that do not open with any key of the keyring (left as they are).
    public var unreadable: Int
    /// Secrets not yet on the target key when the run started.
    public var total: Int
}

/// What a rotation did.
public struct RotationReport: Sendable, Equatable {
    public let targetKeyID: String
    /// Whether this run continued an interrupted rotation.
    public let resumed: Bool
    public let progress: RotationProgress
    /// Decrypt-only keys that still wrap secrets (the unreadable ones, or rows written during the run).
    public let keysStillInUse: [String: Int]
}

/// Re-wraps every workspace (scope) key under the active master key, and moves data keys of format 1 (wrapped by a
/// master key directly, before scope keys) to their scope's key; in batches, resumably.
///
/// With a keyring file, a run first adds a new active key and saves the file (the old key stays,
/// decrypt-only); with keys from the environment or a device, the operator made the new key active first. The run
/// records the rotation, walks `vault_scope_keys` (one row per workspace: the cost does not grow with the number of
/// secrets), then `vault_secrets` for rows still in format 1. If the process dies, the next run finds the unfinished
/// rotation and continues with the same target key. Secrets are never re-encrypted. The server keeps serving
/// meanwhile: each batch is one short transaction, and the server's vault reloads the keyring file when it meets
/// the new key id.
public struct MasterKeyRotation: Sendable {
    let engine: any DatabaseEngine
    let vault: Vault
    let source: KeyringSource
    let logger: Logger
    let audit = AuditLog()

    static let secretsTable = SealedSecretRepository.table
    static let rotationsTable = "vault_rotations"

    public init(engine: any DatabaseEngine, vault: Vault, source: KeyringSource, logger: Logger) {
        self.engine = engine
        self.vault = vault
        self.source = source
        self.logger = logger
    }

    /// Rotates (or resumes a rotation) and re-wraps every secret; `progress` is called after each batch.
    ///
    /// Runs alone: a second rotation (or retire) on the same database meanwhile fails at once with
    /// ``StoreError/lockHeld(operation:)``.
    public func run(
        actor: String, batchSize: Int = 10_000,
        progress: @Sendable (RotationProgress) -> Void = { _ in }
    ) async throws -> RotationReport {
        // Maintenance: a batch of re-wraps may take longer than the deadline of ordinary work.
        try await DatabaseDeadline.$override.withValue(Self.batchDeadline) {
            try await engine.withExclusiveLock(Self.lockName) {
                try await self.runAlone(actor: actor, batchSize: batchSize, progress: progress)
            }
        }
    }

    /// The deadline of one batch's database work.
    static let batchDeadline: Duration = .seconds(600)

    /// The lock every rotation and retirement takes.
    static let lockName = "rotate-master-key"

    private func runAlone(
        actor: String, batchSize: Int, progress: @Sendable (RotationProgress) -> Void
    ) async throws -> RotationReport {
        let (rotationID, targetKeyID, resumed) = try await prepare(actor: actor)
        let total = try await engine.read { db in
            try await Self.countNotOn(targetKeyID, on: db)
        }
        var state = RotationProgress(rewrapped: 0, unreadable: 0, total: total)
        progress(state)
        try await rewrapScopeKeys(to: targetKeyID, rotationID: rotationID, batchSize: min(batchSize, Self.scopeKeyBatch), state: &state, progress: progress)
        // Passes repeat until one finds nothing left to move: rows the server sealed with the old key
        // during the run (before it noticed the new keyring) are picked up by the next pass.
        var unreadableKeys = Set<[String]>()
        while true {
            var movedThisPass = 0
            // A pipeline of two: the next batch is read and re-wrapped (on another core) while this one is written.
            var prepared = try await prepareBatch(after: WalkCursor(), batchSize: batchSize)
            while let batch = prepared {
                // Stopping between batches is safe: each batch is committed, and the next run resumes.
                try Task.checkCancellation()
                async let following = prepareBatch(after: batch.cursor, batchSize: batchSize)
                for row in batch.unreadable where unreadableKeys.insert([row.ownerID, row.field]).inserted {
                    state.unreadable += 1
                    logger.warning("secret does not open with any master key; left as it is", metadata: [
                        "owner": "\(row.ownerID)", "field": "\(row.field)", "reason": "\(row.reason)",
                    ])
                }
                let moved = try await engine.transaction { [updates = batch.updates, state] db in
                    // Held copies wrapped by the old key still open (it stays decrypt-only until retired): caches
                    // reload once, when the rotation finishes, not after every batch.
                    ChangeLog.touch(.uncached)
                    let moved = try await Self.store(updates, on: db)
                    try await db.update(Self.rotationsTable)
                        .set("rewrapped", to: SQLBinaryExpression(SQLColumn("rewrapped"), .add, SQLBind(moved)))
                        .set("unreadable", to: state.unreadable)
                        .where("id", .equal, rotationID).run()
                    return moved
                }
                movedThisPass += moved
                state.rewrapped += moved
                state.total = max(state.total, state.rewrapped + state.unreadable)
                progress(state)
                prepared = try await following
            }
            if movedThisPass == 0 { break }
            let remaining = try await engine.read { db in try await Self.countLegacy(on: db) }
            if remaining <= unreadableKeys.count { break }
        }
        let stillInUse = try await engine.transaction { [state] db in
            // Every instance reads its parts again, with the data keys under the new master key.
            ChangeLog.touch(.everything)
            try await db.update(Self.rotationsTable)
                .set("finished_at", to: Timestamp.now).set("unreadable", to: state.unreadable)
                .where("id", .equal, rotationID).run()
            try await self.audit.append(AuditEvent(
                actor: actor, action: "master_key.rotated", targetType: "master_key", targetID: targetKeyID,
                details: ["rewrapped": "\(state.rewrapped)", "unreadable": "\(state.unreadable)"]
            ), on: db)
            return try await Self.countByMasterKey(on: db).filter { $0.key != targetKeyID }
        }
        logger.info("master key rotation finished", metadata: [
            "target": "\(targetKeyID)", "rewrapped": "\(state.rewrapped)", "unreadable": "\(state.unreadable)",
        ])
        return RotationReport(targetKeyID: targetKeyID, resumed: resumed, progress: state, keysStillInUse: stillInUse)
    }

    /// Re-wraps every workspace key not yet under `targetKeyID`, a batch per transaction (each row only if it is still
    /// wrapped as it was read). Keys the custodian cannot unwrap are counted unreadable and left; a device that cannot
    /// be used stops the run (it resumes).
    func rewrapScopeKeys(to targetKeyID: String, rotationID: String, batchSize: Int, state: inout RotationProgress,
                         progress: @Sendable (RotationProgress) -> Void) async throws {
        // Passes repeat until one moves nothing: a key a server made under the old master key during the run (before it
        // read the new keyring), with an id before the walk's position, is caught by the next pass.
        var movedThisPass = 1
        var unreadable = Set<String>()
        while movedThisPass > 0 {
            movedThisPass = try await rewrapScopeKeysOnce(to: targetKeyID, rotationID: rotationID, batchSize: batchSize, state: &state, unreadableSeen: &unreadable,
                                                         progress: progress)
        }
    }

    /// One pass of ``rewrapScopeKeys(to:rotationID:state:progress:)``; returns how many keys it moved.
    private func rewrapScopeKeysOnce(to targetKeyID: String, rotationID: String, batchSize: Int, state: inout RotationProgress,
                                     unreadableSeen: inout Set<String>, progress: @Sendable (RotationProgress) -> Void) async throws -> Int {
        var after = ""
        var movedThisPass = 0
        // The vault wraps under its custodian's active key: it must be the rotation's target (a keyring file replaced
        // during the run would otherwise move keys to a third key, pass after pass).
        guard vault.activeKeyID == targetKeyID else {
            throw KeyringError.notRotatable(reason: "the active master key changed to \(vault.activeKeyID) during the rotation to \(targetKeyID); run rotate-master-key again")
        }
        while true {
            try Task.checkCancellation()
            let keys = try await engine.read { [after] db in
                try await ScopeKeyRepository().notWrapped(by: targetKeyID, after: after, limit: batchSize, on: db)
            }
            guard let last = keys.last else { return movedThisPass }
            after = last.id
            // A device answers over the network: a few calls at a time.
            var rewrapped: [(WrappedScopeKey, WrappedScopeKey)] = []
            var unreadable: [(WrappedScopeKey, VaultError)] = []
            try await withThrowingTaskGroup(of: (WrappedScopeKey, Result<WrappedScopeKey, VaultError>).self) { group in
                var next = keys.makeIterator()
                func add() -> Bool {
                    guard let key = next.next() else { return false }
                    group.addTask { [vault] in
                        do throws(VaultError) { return (key, .success(try await vault.rewrapScopeKey(key))) } catch { return (key, .failure(error)) }
                    }
                    return true
                }
                for _ in 0..<Self.deviceCallsInFlight where !add() { break }
                while let (key, result) = try await group.next() {
                    switch result {
                    case .success(let wrapped): rewrapped.append((key, wrapped))
                    case .failure(.custodyUnavailable(let code, let detail)): throw VaultError.custodyUnavailable(deviceCode: code, detail: detail)
                    case .failure(let error): unreadable.append((key, error))
                    }
                    _ = add()
                }
            }
            unreadable = unreadable.filter { unreadableSeen.insert($0.0.id).inserted }
            for (key, error) in unreadable {
                logger.warning("workspace key does not open with any master key; left as it is", metadata: [
                    "workspace_key": "\(key.id)", "scope": "\(key.scope)", "master_key": "\(key.masterKeyID)", "reason": "\(error)",
                ])
            }
            let moved = try await engine.transaction { [rewrapped, unreadable = state.unreadable + unreadable.count] db in
                let moved = try await ScopeKeyRepository().replaceWrappings(rewrapped.map { (previous: $0.0, rewrapped: $0.1) }, on: db)
                try await db.update(Self.rotationsTable)
                    .set("rewrapped", to: SQLBinaryExpression(SQLColumn("rewrapped"), .add, SQLBind(moved)))
                    .set("unreadable", to: unreadable)
                    .where("id", .equal, rotationID).run()
                return moved
            }
            movedThisPass += moved
            state.rewrapped += moved
            state.unreadable += unreadable.count
            state.total = max(state.total, state.rewrapped + state.unreadable)
            progress(state)
        }
    }

    /// Workspace keys read per batch of the walk, at most.
    static let scopeKeyBatch = 1_000
    /// Wraps and unwraps a device is asked for at once during a rotation.
    static let deviceCallsInFlight = 8

    /// Removes decrypt-only keys that no stored secret refers to any more; returns their ids.
    ///
    /// Refuses (naming the count) while a key still wraps secrets. With a keyring from the
    /// environment nothing is written: the caller tells the operator which keys to drop.
    public func retire(actor: String) async throws -> [String] {
        try await engine.withExclusiveLock(Self.lockName) { try await self.retireAlone(actor: actor) }
    }

    private func retireAlone(actor: String) async throws -> [String] {
        vault.localKeyring?.reloadIfChanged()
        let counts = try await engine.read { db in try await Self.countByMasterKey(on: db) }
        // With a device, the keyring (kept to open format-1 data keys) retires whole once nothing needs it.
        let keyringIDs = vault.localKeyring?.keyring.keys.map(\.id) ?? []
        let retirable = vault.custodian.decryptOnlyKeyIDs + (vault.custodian is LocalKeyring ? [] : keyringIDs)
        for id in retirable {
            if let rows = counts[id], rows > 0 { throw KeyringError.keyStillInUse(id: id, rows: rows) }
        }
        guard !retirable.isEmpty else { return [] }
        if let local = vault.custodian as? LocalKeyring, let file = source.file {
            var keyring = local.keyring
            for id in retirable { try keyring.retire(id: id) }
            try file.write(keyring)
            local.replaceKeyring(keyring)
        }
        try await engine.transaction { db in
            for id in retirable {
                try await self.audit.append(AuditEvent(
                    actor: actor, action: "master_key.retired", targetType: "master_key", targetID: id
                ), on: db)
            }
        }
        return retirable
    }

    // MARK: Steps

    /// Finds the rotation to continue, or starts a new one (with a new key when the keyring is a file).
    func prepare(actor: String) async throws -> (id: String, target: String, resumed: Bool) {
        vault.localKeyring?.reloadIfChanged()
        let activeID = vault.activeKeyID
        let unfinished = try await engine.read { db in
            try await db.select().columns("id", "target_key_id").from(Self.rotationsTable)
                .where("finished_at", .is, SQLLiteral.null).orderBy("started_at", .descending).first()
        }
        if let unfinished, try unfinished.decode(column: "target_key_id", as: String.self) == activeID {
            let id = try unfinished.decode(column: "id", as: String.self)
            logger.info("resuming master key rotation", metadata: ["target": "\(activeID)"])
            return (id, activeID, true)
        }

        let target: String
        if let local = vault.custodian as? LocalKeyring, case .file(let url, _) = source {
            var keyring = local.keyring
            let newKey = MasterKey.generate()
            keyring.promote(newKey)
            // The new key is on disk before any secret refers to it.
            try KeyringFile(url: url).write(keyring)
            local.replaceKeyring(keyring)
            target = newKey.id
        } else {
            // The operator made the new key active (KEYWARDEN_MASTER_KEY, or the device's key label or id) and listed
            // the old ones as previous.
            let counts = try await engine.read { db in try await Self.countByMasterKey(on: db) }
            guard counts.keys.contains(where: { $0 != activeID }) else {
                throw KeyringError.notRotatable(reason: "every workspace key is already wrapped by the active master key \(activeID) and no secret is in the old format; to rotate, make a new master key active (KEYWARDEN_MASTER_KEY, KEYWARDEN_MASTER_KEY_PKCS11_KEY_LABEL or KEYWARDEN_MASTER_KEY_KMS_KEY_ID) and list the old one as previous (KEYWARDEN_MASTER_KEY_PREVIOUS, …_PKCS11_PREVIOUS_KEY_LABELS or …_KMS_PREVIOUS_KEY_IDS), then run rotate-master-key again")
            }
            target = activeID
        }

        let id = Identifier.make("rot")
        try await engine.transaction { db in
            ChangeLog.touch(.uncached)
            try await db.insert(into: Self.rotationsTable)
                .columns("id", "target_key_id", "started_at")
                .values(SQLBind(id), SQLBind(target), SQLBind(Timestamp.now)).run()
            try await self.audit.append(AuditEvent(
                actor: actor, action: "master_key.rotation_started", targetType: "master_key", targetID: target,
                details: ["previous": activeID]
            ), on: db)
        }
        return (id, target, false)
    }

    /// One batch, read and re-wrapped, ready to be written.
    struct PreparedBatch: Sendable {
        var updates: [(row: StoredRow, sealed: SealedSecret)] = []
        var unreadable: [(ownerID: String, field: String, reason: String)] = []
        /// Where the next batch starts.
        let cursor: WalkCursor
    }

    /// Reads the batch of format-1 rows after `cursor` and moves their data keys to their scopes' keys; `nil` when the
    /// walk is done.
    func prepareBatch(after cursor: WalkCursor, batchSize: Int) async throws -> PreparedBatch? {
        let rows = try await engine.read { db in
            try await Self.batch(after: cursor, limit: batchSize, on: db)
        }
        guard let last = rows.last else { return nil }
        var prepared = PreparedBatch(cursor: WalkCursor(rowid: last.rowid ?? 0, owner: last.ownerID, field: last.field))
        prepared.updates.reserveCapacity(rows.count)
        // Each scope's key is read (or made) once per batch, not per row.
        var scopeKeys: [Scope: ScopeKey] = [:]
        let directory = ScopeKeyRepository().directory(engine: engine)
        for row in rows {
            do {
                prepared.updates.append((row, try await vault.rewrap(row.sealed, in: row.context) {
                    if let known = scopeKeys[row.context.scope] { return known }
                    let key = try await vault.activeScopeKey(for: row.context.scope, keys: directory)
                    scopeKeys[row.context.scope] = key
                    return key
                }))
            } catch let error as VaultError where !error.isCustodyUnavailable {
                prepared.unreadable.append((row.ownerID, row.field, "\(error)"))
            }
        }
        return prepared
    }

    /// Where a walk of `vault_secrets` is: after this row.
    ///
    /// SQLite walks in storage order (its rowid): neighbouring rows share pages, so a batch's updates write few pages
    /// (in key order, every row of a large table is on a page of its own: a page written to the WAL per secret, and
    /// again at the checkpoint). PostgreSQL walks by primary key.
    struct WalkCursor: Sendable {
        var rowid: Int64 = .min
        var owner = ""
        var field = ""
    }

    /// Whether `db` walks `vault_secrets` by rowid (SQLite).
    static func walksStorageOrder(_ db: any SQLDatabase) -> Bool {
        db.dialect.name == "sqlite"
    }

    struct StoredRow: Sendable {
        /// SQLite's rowid (`nil` on PostgreSQL).
        let rowid: Int64?
        let ownerID: String
        let field: String
        let context: SecretContext
        let sealed: SealedSecret
    }

    /// Writes a batch of re-wrapped data keys in one statement, each only if its row still holds the
    /// wrapped key that was read (a row the server re-sealed meanwhile is left for the next pass).
    /// Returns how many rows changed.
    static func store(_ updates: [(row: StoredRow, sealed: SealedSecret)], on db: any SQLDatabase) async throws -> Int {
        let byRowid = walksStorageOrder(db)
        // Six or five values per row, one more per statement (the time).
        let rowsPerStatement = StatementLimits.rowsPerStatement(bindingColumns: byRowid ? 6 : 5, others: 1)
        var moved = 0
        for start in stride(from: 0, to: updates.count, by: rowsPerStatement) {
            let chunk = updates[start..<min(start + rowsPerStatement, updates.count)]
            // VALUES columns are column1, column2, … on SQLite and PostgreSQL alike.
            let rows: [SQLQueryString]
            let match: SQLQueryString
            let newKey: SQLQueryString
            let newKeyID: SQLQueryString
            if byRowid {
                // The rowid finds the row; its owner and field make sure it is still the row the key was wrapped for
                // (a VACUUM may renumber rows), and the old wrapped key that nobody re-sealed it meanwhile.
                rows = chunk.map {
                    "(\(bind: $0.row.rowid ?? -1), \(bind: $0.row.ownerID), \(bind: $0.row.field), \(bind: Data($0.row.sealed.wrappedKey)), \(bind: Data($0.sealed.wrappedKey)), \(bind: $0.sealed.wrappingKeyID ?? ""))"
                }
                match = """
                    \(ident: secretsTable).rowid = v.column1 AND \(ident: secretsTable).owner_id = v.column2
                      AND \(ident: secretsTable).field = v.column3 AND \(ident: secretsTable).wrapped_key = v.column4
                    """
                newKey = "v.column5"
                newKeyID = "v.column6"
            } else {
                rows = chunk.map {
                    "(\(bind: $0.row.ownerID), \(bind: $0.row.field), \(bind: Data($0.row.sealed.wrappedKey)), \(bind: Data($0.sealed.wrappedKey)), \(bind: $0.sealed.wrappingKeyID ?? ""))"
                }
                match = """
                    \(ident: secretsTable).owner_id = v.column1 AND \(ident: secretsTable).field = v.column2
                      AND \(ident: secretsTable).wrapped_key = v.column3
                    """
                newKey = "v.column4"
                newKeyID = "v.column5"
            }
            let query: SQLQueryString = """
                UPDATE \(ident: secretsTable) SET master_key_id = \(newKeyID), wrapped_key = \(newKey), updated_at = \(bind: Timestamp.now)
                FROM (VALUES \(rows.joined(separator: ", "))) AS v
                WHERE \(match)
                RETURNING \(ident: secretsTable).owner_id
                """
            moved += try await db.raw(query).all().count
        }
        return moved
    }

    /// Workspace keys not wrapped by `keyID`, and secrets still in format 1: what a rotation to `keyID` moves.
    static func countNotOn(_ keyID: String, on db: any SQLDatabase) async throws -> Int {
        let row = try await db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n").from(ScopeKeyRepository.table)
            .where("master_key_id", .notEqual, keyID).where("master_key_id", .notLike, ScopeKeyRepository.customerWrapped).first()
        return try (row?.decode(column: "n", as: Int.self) ?? 0) + (try await countLegacy(on: db))
    }

    /// Secrets whose data key is in format 1 (wrapped by a master key `mk-…` directly).
    static func countLegacy(on db: any SQLDatabase) async throws -> Int {
        let row = try await db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n").from(secretsTable)
            .where("master_key_id", .like, "mk-%").first()
        return try row?.decode(column: "n", as: Int.self) ?? 0
    }

    /// What each master key still wraps: workspace keys, and secrets in format 1.
    static func countByMasterKey(on db: any SQLDatabase) async throws -> [String: Int] {
        var counts = try await ScopeKeyRepository().countByMasterKey(on: db)
        for (id, count) in try await SealedSecretRepository().countByWrappingKey(on: db) where id.hasPrefix("mk-") {
            counts[id, default: 0] += count
        }
        return counts
    }

    static func batch(after cursor: WalkCursor, limit: Int, on db: any SQLDatabase) async throws -> [StoredRow] {
        // The ciphertext is not read: only the data key is re-wrapped.
        let byRowid = walksStorageOrder(db)
        var query = db.select()
            .columns("scope", "owner_id", "field", "wrapped_key")
            .from(secretsTable)
            .where("master_key_id", .like, "mk-%")
        if byRowid {
            query = query.column(SQLAlias(SQLRaw("rowid"), as: SQLIdentifier("walk_rowid")))
                .where(SQLRaw("rowid"), .greaterThan, SQLBind(cursor.rowid))
                .orderBy(SQLRaw("rowid"))
        } else {
            // A row value, so the primary key's index is walked from the cursor (an OR of the two columns may be read
            // from the index's start on every batch).
            query = query
                .where(SQLBinaryExpression(SQLGroupExpression([SQLColumn("owner_id"), SQLColumn("field")]), .greaterThan,
                                           SQLGroupExpression([SQLBind(cursor.owner), SQLBind(cursor.field)])))
                .orderBy("owner_id").orderBy("field")
        }
        let rows = try await query.limit(limit).all()
        return try rows.compactMap { row in
            let scopeText = try row.decode(column: "scope", as: String.self)
            let ownerID = try row.decode(column: "owner_id", as: String.self)
            let field = try row.decode(column: "field", as: String.self)
            // A row whose scope text is damaged still belongs in the walk: it will not open, and is counted unreadable.
            let scope = Scope(scopeText) ?? .workspace("\u{0}invalid")
            return StoredRow(
                rowid: byRowid ? try row.decode(column: "walk_rowid", as: Int64.self) : nil,
                ownerID: ownerID, field: field,
                context: SecretContext(scope: scope, ownerID: ownerID, field: field),
                sealed: SealedSecret(wrappedKey: Array(try row.decode(column: "wrapped_key", as: Data.self)), ciphertext: [])
            )
        }
    }
}
