import Foundation
import KeywardenCore
import KeywardenStore
import SQLKit
import Synchronization

/// Each workspace's custody log: every use of its own secrets, hash-chained per workspace, readable and exportable by
/// the workspace's owners (`audit.read`), edited by no one.
///
/// A Test, a health check, a reveal and a rotation's steps are appended in the transaction of the use. Gateway calls are
/// counted in memory per key per minute (``CustodyTally``) when their usage rows are written, and a minute is appended
/// once it has ended (or when the process stops): nothing is added to a call's own path.
public struct CustodyService: Sendable {
    let app: AppServices
    var store: Store { app.store }
    let log = CustodyLog()

    /// Records a use of `credential`'s secret in its workspace's log, in the caller's transaction; nothing for a platform
    /// key (the platform's own secrets have the audit log).
    public func record(_ use: CustodyUse, of credential: Credential, actor: String, on db: any SQLDatabase) async throws {
        guard let workspaceID = credential.scope.workspaceID else { return }
        try await log.append([CustodyEvent(use: use, credentialID: credential.id, actor: actor)], workspaceID: workspaceID, on: db)
    }

    /// Records a use in a transaction of its own (after a use that wrote nothing else).
    public func record(_ use: CustodyUse, of credential: Credential, actor: String) async throws {
        guard credential.scope.workspaceID != nil else { return }
        try await store.engine.transaction(changesState: false) { db in try await self.record(use, of: credential, actor: actor, on: db) }
    }

    /// Appends the gateway calls of the minutes that have ended (all of them with `everything`, when the process stops):
    /// one short transaction per workspace, so a large backlog after an outage holds the write lock briefly at a time
    /// and one workspace's failure holds back no other's. What cannot be written is kept (merged per key) for the next
    /// round; the first error of an outage is thrown, the next ones are not repeated.
    public func appendTallied(everything: Bool = false, now: Date = Date()) async throws {
        let due = app.custodyTally.take(endedBefore: everything ? nil : CustodyTally.minute(of: now))
        guard !due.isEmpty else { return }
        var failed: [(String, [CustodyEvent])] = []
        var firstError: (any Error)?
        for (workspaceID, events) in due {
            if firstError != nil {
                failed.append((workspaceID, events))
                continue
            }
            do {
                _ = try await store.engine.transaction(changesState: false) { db in try await self.log.append(events, workspaceID: workspaceID, on: db) }
            } catch {
                firstError = error
                failed.append((workspaceID, events))
            }
        }
        app.custodyTally.putBack(failed)
        if let firstError {
            if app.custodyTally.markFailing(true) { throw firstError }
        } else if !app.custodyTally.markFailing(false) {
            store.logger.info("custody: gateway calls appended again after a failure")
        }
    }

    /// A page of a workspace's log, newest first, for a principal with `audit.read` in it (another workspace is 404), with
    /// the names of the keys it names that still exist.
    public func page(workspaceID: String, pagination: Pagination, principal: Principal) async throws
        -> (entries: [CustodyEntry], total: Int, keyNames: [String: String]) {
        try principal.authorize(.auditRead, inWorkspace: workspaceID)
        return try await store.engine.read { db in
            guard try await self.store.workspaces.get(workspaceID, on: db) != nil else { throw KeywardenError.notFound("workspace") }
            let entries = try await self.log.list(workspaceID: workspaceID, limit: pagination.perPage, offset: pagination.offset, on: db)
            let keys = try await self.store.credentials.list(scope: .workspace(workspaceID), on: db)
            let named = Set(entries.map(\.credentialID))
            return (entries, try await self.log.count(workspaceID: workspaceID, on: db),
                    Dictionary(keys.filter { named.contains($0.id) }.map { ($0.id, $0.description) }) { first, _ in first })
        }
    }

    /// The whole log of a workspace, oldest first, a page at a time (an export the workspace can check itself).
    public func export(workspaceID: String, principal: Principal, page: ([CustodyEntry]) async throws -> Void) async throws {
        try principal.authorize(.auditRead, inWorkspace: workspaceID)
        guard try await store.engine.read({ db in try await self.store.workspaces.get(workspaceID, on: db) }) != nil else {
            throw KeywardenError.notFound("workspace")
        }
        var after = 0
        while true {
            let entries = try await store.engine.read { [after] db in try await self.log.entries(workspaceID: workspaceID, after: after, limit: 1000, on: db) }
            if entries.isEmpty { return }
            try await page(entries)
            after = entries[entries.count - 1].seq
        }
    }

    /// Walks every workspace's chain.
    public func verify() async throws -> CustodyLog.Verification {
        try await log.verify(store.engine)
    }
}

/// Gateway calls on workspaces' own keys, counted per workspace, key and minute until the minute is appended.
public final class CustodyTally: Sendable {
    struct Bucket: Sendable {
        var count: Int
        var first: Date
        var last: Date
    }

    struct Slot: Hashable, Sendable {
        let workspaceID: String
        let credentialID: String
        /// Minutes since 1970.
        let minute: Int64
    }

    private let buckets = Mutex<[Slot: Bucket]>([:])
    private let failing = Mutex(false)
    /// Who the entries name as the user: this instance.
    let actor: String

    /// A tally whose entries name `instanceID` as the user.
    public init(instanceID: String) {
        actor = "instance:" + instanceID
    }

    /// Minutes since 1970 of `date`.
    public static func minute(of date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 / 60).rounded(.down))
    }

    /// Counts the uses of workspaces' own keys in `records`: every own key a call opened (``UsageRecord/ownKeysUsed``,
    /// failed-over ones too), else the answering key when it is the workspace's own.
    public func add(_ records: [UsageRecord]) {
        var own: [(Slot, Date)] = []
        for record in records {
            guard let workspaceID = record.workspaceID else { continue }
            let keys = record.ownKeysUsed ?? (record.source == .byok ? record.credentialID.map { [$0] } ?? [] : [])
            for credentialID in keys {
                own.append((Slot(workspaceID: workspaceID, credentialID: credentialID, minute: Self.minute(of: record.at)), record.at))
            }
        }
        guard !own.isEmpty else { return }
        buckets.withLock { buckets in
            for (slot, at) in own {
                if var bucket = buckets[slot] {
                    bucket.count += 1
                    bucket.first = min(bucket.first, at)
                    bucket.last = max(bucket.last, at)
                    buckets[slot] = bucket
                } else {
                    buckets[slot] = Bucket(count: 1, first: at, last: at)
                }
            }
        }
    }

    /// Takes the minutes before `minute` (all with `nil`), as events by workspace, oldest first.
    public func take(endedBefore minute: Int64?) -> [(String, [CustodyEvent])] {
        let taken: [(Slot, Bucket)] = buckets.withLock { buckets in
            let due = buckets.filter { minute == nil || $0.key.minute < minute ?? 0 }
            for slot in due.keys { buckets[slot] = nil }
            return Array(due)
        }
        var byWorkspace: [String: [(Slot, Bucket)]] = [:]
        for (slot, bucket) in taken { byWorkspace[slot.workspaceID, default: []].append((slot, bucket)) }
        return byWorkspace.sorted { $0.key < $1.key }.map { workspaceID, slots in
            (workspaceID, slots.sorted { ($0.0.minute, $0.0.credentialID) < ($1.0.minute, $1.0.credentialID) }.map { slot, bucket in
                CustodyEvent(use: .gatewayCall, credentialID: slot.credentialID, count: bucket.count, firstAt: Timestamp.string(bucket.first),
                             lastAt: Timestamp.string(bucket.last), actor: actor)
            })
        }
    }

    /// Puts back what could not be appended, merged per workspace and key into one slot (its earliest minute): a long
    /// outage keeps one slot per key in use, not one per key and minute.
    func putBack(_ due: [(String, [CustodyEvent])]) {
        guard !due.isEmpty else { return }
        buckets.withLock { buckets in
            for (workspaceID, events) in due {
                var merged: [String: Bucket] = [:]
                for event in events {
                    guard let first = Timestamp.date(event.firstAt), let last = Timestamp.date(event.lastAt) else { continue }
                    let bucket = merged[event.credentialID] ?? Bucket(count: 0, first: first, last: last)
                    merged[event.credentialID] = Bucket(count: bucket.count + event.count, first: min(bucket.first, first), last: max(bucket.last, last))
                }
                for (credentialID, bucket) in merged {
                    let slot = Slot(workspaceID: workspaceID, credentialID: credentialID, minute: Self.minute(of: bucket.first))
                    let held = buckets[slot] ?? Bucket(count: 0, first: bucket.first, last: bucket.last)
                    buckets[slot] = Bucket(count: held.count + bucket.count, first: min(held.first, bucket.first), last: max(held.last, bucket.last))
                }
            }
        }
    }

    /// Records whether appending fails now; returns whether that changed (so an outage is said once, and its end).
    func markFailing(_ failing: Bool) -> Bool {
        self.failing.withLock { state in
            defer { state = failing }
            return state != failing
        }
    }

    /// How many slots wait to be appended.
    var pending: Int { buckets.withLock { $0.count } }
}
