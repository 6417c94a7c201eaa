import Foundation
import KeywardenCore
import KeywardenStore

/// The request log: each metered gateway call, newest first, with the names of its key and workspace, read from the
/// usage ledger a page at a time.
///
/// Authorizes the caller itself: a workspace's log needs `usage.read` there; the platform's (every workspace, or one
/// named in the filter) a platform admin or a platform-bound token granted `usage.read`. A workspace's reader sees
/// that a platform key served a call, never which one.
public struct RequestLogService: Sendable {
    let app: AppServices
    var store: Store { app.store }

    /// Whose calls a log shows.
    public enum Scope: Sendable, Equatable {
        case platform
        case workspace(String)
    }

    /// The key a call used, as its reader may see it.
    public struct KeyLabel: Sendable, Equatable {
        /// `nil` when the reader may not see it (a platform key, read from a workspace).
        public let id: String?
        public let name: String
        /// Whether the key was deleted since (the ledger outlives keys).
        public let deleted: Bool
    }

    /// One call.
    public struct Entry: Sendable, Equatable {
        public let record: UsageRecord
        public let workspaceName: String?
        public let key: KeyLabel?
        /// Keys tried before the one that answered.
        public var failovers: Int { max(0, record.attempts - 1) }
    }

    /// A page of calls and where the next one starts (`nil`: this is the last).
    public struct Page: Sendable {
        public let entries: [Entry]
        public let nextCursor: String?
    }

    /// Calls per page unless the caller asks otherwise, and the most a page holds.
    public static let defaultLimit = 50
    public static let maximumLimit = 200

    /// The page of `scope`'s calls matching `filter` after `cursor` (a previous page's `nextCursor`).
    public func page(_ scope: Scope, filter: RequestLogFilter, cursor: String?, limit: Int = defaultLimit, principal: Principal) async throws -> Page {
        var scoped = filter
        switch scope {
        case .workspace(let id):
            try principal.authorize(.usageRead, inWorkspace: id)
            scoped.workspaceID = id
        case .platform:
            try principal.authorize(.usageRead, inWorkspace: nil)
        }
        let filter = scoped
        try NumberField.check(limit, field: "limit", in: 1...Self.maximumLimit)
        let after = try cursor.map { token throws(KeywardenError) in try UsageCursor(token: token) }
        let showsPlatformKeys = Self.showsPlatformKeys(scope, principal)
        return try await store.engine.read { db in
            if let id = filter.workspaceID, try await self.store.workspaces.get(id, on: db) == nil { throw KeywardenError.notFound("workspace") }
            // A workspace's reader filters by its own keys (or a deleted one's id); another scope's key matches nothing
            // (answered as any id without calls, so the answer says nothing of it).
            if !showsPlatformKeys, let key = filter.credentialID, let credential = try await self.store.credentials.get(key, on: db),
               credential.scope != .workspace(filter.workspaceID ?? "") {
                return Page(entries: [], nextCursor: nil)
            }
            // One more row than the page says whether another page follows.
            let rows = try await self.store.usageRows.log(filter, before: after, limit: limit + 1, on: db)
            let shown = rows.prefix(limit)
            let keys = try await self.store.credentials.labels(ids: Array(Set(shown.compactMap(\.record.credentialID))), on: db)
            let workspaces = showsPlatformKeys
                ? try await self.store.workspaces.names(ids: Array(Set(shown.compactMap(\.record.workspaceID))), on: db) : [:]
            let entries = shown.map { row in
                Entry(record: row.record, workspaceName: row.record.workspaceID.flatMap { workspaces[$0] },
                      key: row.record.credentialID.map { Self.label($0, source: row.record.source, keys: keys, showsPlatformKeys: showsPlatformKeys) })
            }
            let next = rows.count > limit ? shown.last.map { UsageCursor(at: $0.at, id: $0.id).token } : nil
            return Page(entries: entries, nextCursor: next)
        }
    }

    /// Whether a reader sees which platform key served a call: on the platform's log, and for platform admins and
    /// platform-bound tokens anywhere.
    static func showsPlatformKeys(_ scope: Scope, _ principal: Principal) -> Bool {
        scope == .platform || principal.isPlatformAdmin || principal.workspaceID == nil
    }

    /// How a key is named to its reader: a platform key (by the call's source, or by the key's scope) unnamed unless the
    /// reader sees the platform's keys; a key gone since, "Deleted key".
    static func label(_ id: String, source: KeySource?, keys: [String: CredentialRepository.Label], showsPlatformKeys: Bool) -> KeyLabel {
        let paidByPlatform = source == .platform || source == .managed || (keys[id].map { $0.workspaceID == nil } ?? false)
        if !showsPlatformKeys, paidByPlatform { return KeyLabel(id: nil, name: "Platform key", deleted: false) }
        guard let label = keys[id] else { return KeyLabel(id: id, name: "Deleted key", deleted: true) }
        return KeyLabel(id: id, name: label.name.isEmpty ? label.providerID : label.name, deleted: false)
    }

    /// Keys named as `scope`'s reader may see them (for the usage page's spend per key).
    public func labels(ofKeys ids: [String], _ scope: Scope, principal: Principal) async throws -> [String: KeyLabel] {
        let workspaceID: String? = if case .workspace(let id) = scope { id } else { nil }
        try principal.authorize(.usageRead, inWorkspace: workspaceID)
        let keys = try await store.engine.read { db in try await self.store.credentials.labels(ids: ids, on: db) }
        let shows = Self.showsPlatformKeys(scope, principal)
        return Dictionary(uniqueKeysWithValues: Set(ids).map { ($0, Self.label($0, source: nil, keys: keys, showsPlatformKeys: shows)) })
    }

    /// The keys a reader of `scope`'s log may filter by: the workspace's own, or the platform's.
    public func keys(_ scope: Scope, principal: Principal) async throws -> [Credential] {
        let workspaceID: String? = if case .workspace(let id) = scope { id } else { nil }
        try principal.authorize(.usageRead, inWorkspace: workspaceID)
        return try await store.engine.read { db in
            try await self.store.credentials.list(scope: workspaceID.map(KeywardenCore.Scope.workspace) ?? .platform, on: db)
        }
    }

    /// Each of a workspace's keys' calls since `since` (its budget period's start) and its last call, for its keys table
    /// (`keys.read` there); ids of other workspaces' keys are not answered.
    public func activity(ofKeys ids: [String], inWorkspace workspaceID: String, since: Date, principal: Principal) async throws -> [String: KeyActivity] {
        try principal.authorize(.keysRead, inWorkspace: workspaceID)
        return try await store.engine.read { db in
            let own = try await self.store.credentials.labels(ids: ids, on: db).filter { $0.value.workspaceID == workspaceID }.map(\.key)
            return try await self.store.usageRows.activity(ofKeys: own, since: since, on: db)
        }
    }
}
