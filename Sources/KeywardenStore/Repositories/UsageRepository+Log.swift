import Foundation
import KeywardenCore
import SQLKit

/// Which calls a request log shows: every filter optional, all of them applied together.
public struct RequestLogFilter: Sendable, Equatable {
    /// The outcome a call had for its client.
    public enum Outcome: Sendable, Equatable {
        /// Status below 400.
        case succeeded
        /// Status 400 or more.
        case failed
        /// Exactly this status.
        case status(Int)

        /// Parses `ok`, `error`, or a status code (100–599).
        public static func parse(_ text: String) throws(KeywardenError) -> Outcome {
            switch text {
            case "ok": return .succeeded
            case "error": return .failed
            default:
                guard let code = UntrustedNumber.integer(text), (100...599).contains(code) else {
                    throw .invalid("status", "status is ok, error, or a status code (100–599).")
                }
                return .status(code)
            }
        }

        /// The text ``parse(_:)`` reads.
        public var text: String {
            switch self {
            case .succeeded: return "ok"
            case .failed: return "error"
            case .status(let code): return String(code)
            }
        }
    }

    public var workspaceID: String?
    public var from: Date?
    /// Exclusive.
    public var to: Date?
    public var providerID: String?
    public var credentialID: String?
    public var source: KeySource?
    public var outcome: Outcome?
    public var consumer: String?

    public init(workspaceID: String? = nil, from: Date? = nil, to: Date? = nil, providerID: String? = nil, credentialID: String? = nil,
                source: KeySource? = nil, outcome: Outcome? = nil, consumer: String? = nil) {
        self.workspaceID = workspaceID
        self.from = from
        self.to = to
        self.providerID = providerID
        self.credentialID = credentialID
        self.source = source
        self.outcome = outcome
        self.consumer = consumer
    }
}

/// A place in the ledger's order (time, then id): the last row of a page, from which the next one continues.
public struct UsageCursor: Sendable, Equatable {
    public let at: String
    public let id: String

    public init(at: String, id: String) {
        self.at = at
        self.id = id
    }

    /// The cursor as an opaque token (base64url of `at` and `id`).
    public var token: String { Base64URL.encode(Array("\(at) \(id)".utf8)) }

    /// Reads a token made by ``token``; anything else is `400 invalid_cursor`.
    public init(token: String) throws(KeywardenError) {
        let invalid = KeywardenError.invalid("cursor", "cursor is the next_cursor of a previous page.", code: "invalid_cursor")
        guard token.utf8.count <= 256, let bytes = Base64URL.decode(token), let text = String(validating: bytes, as: UTF8.self) else { throw invalid }
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2, Timestamp.date(String(parts[0])) != nil, !parts[1].isEmpty,
              parts[1].utf8.allSatisfy(Base64URL.isAlphabet) else { throw invalid }
        at = String(parts[0])
        id = String(parts[1])
    }
}

extension UsageRepository {
    /// Up to `limit` rows matching `filter`, newest first, older than `cursor` (the last row of the previous page):
    /// pages that stay correct while calls are added.
    public func log(_ filter: RequestLogFilter, before cursor: UsageCursor?, limit: Int, on db: any SQLDatabase) async throws -> [Row] {
        var select = Self.scoped(db.select().columns(Self.columns).from(Self.table), workspaceID: filter.workspaceID, from: filter.from, to: filter.to)
        if let provider = filter.providerID { select = select.where("provider_id", .equal, provider) }
        if let key = filter.credentialID { select = select.where("credential_id", .equal, key) }
        if let source = filter.source { select = select.where("source", .equal, source.rawValue) }
        if let consumer = filter.consumer { select = select.where("consumer", .equal, consumer) }
        switch filter.outcome {
        case .succeeded?: select = select.where("status", .lessThan, 400)
        case .failed?: select = select.where("status", .greaterThanOrEqual, 400)
        case .status(let code)?: select = select.where("status", .equal, code)
        case nil: break
        }
        if let cursor {
            select = select.where(SQLGroupExpression([SQLColumn("at"), SQLColumn("id")]), .lessThan,
                                  SQLGroupExpression([SQLBind(cursor.at), SQLBind(cursor.id)]))
        }
        return try await select.orderBy("at", .descending).orderBy("id", .descending).limit(limit).all().map(Self.decodeRow)
    }

    /// Each key's calls at or after `since` and its last call ever (a key with none is absent).
    public func activity(ofKeys ids: [String], since: Date, on db: any SQLDatabase) async throws -> [String: KeyActivity] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await db.select()
            .column("credential_id")
            .column(SQLRaw("MAX(at)"), as: "last_at")
            .column(SQLQueryString("CAST(COALESCE(SUM(CASE WHEN at >= \(bind: Timestamp.string(since)) THEN 1 ELSE 0 END), 0) AS BIGINT)"), as: "calls")
            .from(Self.table)
            .where("credential_id", .in, ids)
            .groupBy("credential_id")
            .all()
        var activity: [String: KeyActivity] = [:]
        for row in rows {
            let id = try row.decode(column: "credential_id", as: String.self)
            activity[id] = KeyActivity(lastUsedAt: try row.decode(column: "last_at", as: String?.self).flatMap(Timestamp.date),
                                       callsSince: try row.decode(column: "calls", as: Int.self))
        }
        return activity
    }

    /// One stored row.
    static func decodeRow(_ row: any SQLRow) throws -> Row {
        let at = try row.decode(column: "at", as: String.self)
        let id = try row.decode(column: "id", as: String.self)
        return Row(id: id, at: at, record: UsageRecord(
            id: id, at: Timestamp.date(at) ?? Date(timeIntervalSince1970: 0), workspaceID: try row.decode(column: "workspace_id", as: String?.self),
            providerID: try row.decode(column: "provider_id", as: String.self), model: try row.decode(column: "model", as: String?.self),
            credentialID: try row.decode(column: "credential_id", as: String?.self),
            source: try row.decode(column: "source", as: String?.self).flatMap(KeySource.init(rawValue:)),
            modality: Modality(rawValue: try row.decode(column: "modality", as: String.self)) ?? .chat,
            consumer: try row.decode(column: "consumer", as: String?.self), status: try row.decode(column: "status", as: Int.self),
            latencyMilliseconds: try row.decode(column: "latency_ms", as: Int.self),
            counts: UsageCounts(inputTokens: try row.decode(column: "tokens_in", as: Int?.self), outputTokens: try row.decode(column: "tokens_out", as: Int?.self),
                                characters: try row.decode(column: "characters", as: Int?.self)),
            milliCredits: try row.decode(column: "milli_credits", as: Int.self), attempts: try row.decode(column: "attempts", as: Int.self),
            holdID: try row.decode(column: "hold_id", as: String?.self)))
    }
}

/// A key's use: its last call and its calls in a period.
public struct KeyActivity: Sendable, Equatable {
    public let lastUsedAt: Date?
    public let callsSince: Int

    public init(lastUsedAt: Date?, callsSince: Int) {
        self.lastUsedAt = lastUsedAt
        self.callsSince = callsSince
    }
}
