import Foundation
import KeywardenCore
import SQLKit

/// A recorded event.
public struct Event: Sendable, Equatable {
    public let id: String
    public let kind: EventKind
    public let workspaceID: String?
    public let credentialID: String?
    public let providerID: String?
    /// The JSON object sent to webhooks as `data`; never a secret.
    public let payload: String
    public let createdAt: String
}

/// A pending or finished delivery of an event to one destination.
public struct Delivery: Sendable, Equatable {
    public enum Channel: String, Sendable { case webhook, email }
    public enum Status: String, Sendable { case pending, delivered, failed }

    public let id: String
    public let eventID: String
    public let channel: Channel
    /// The webhook id, or the e-mail address.
    public let target: String
    public var status: Status
    public var attempts: Int
    public var nextAttemptAt: String
    public var lastStatusCode: Int?
    public var lastError: String?
    public var deliveredAt: String?
    public let createdAt: String
}

/// Events and their deliveries: recorded together, in the transaction that caused the event.
public struct EventRepository: Sendable {
    static let events = "events"
    static let deliveries = "deliveries"
    static let fallbacks = "fallback_engagements"

    public init() {}

    /// Records an event and queues a delivery for each destination that wants it: the workspace's
    /// webhooks, the platform's webhooks, and the notification address when e-mail is configured.
    @discardableResult
    public func record(
        _ kind: EventKind, workspaceID: String?, credentialID: String?, providerID: String?,
        data: [String: String], emailTargets: [String], on db: any SQLDatabase
    ) async throws -> Event {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let payload = String(decoding: (try? encoder.encode(data)) ?? Data("{}".utf8), as: UTF8.self)
        let event = Event(
            id: Identifier.make("evt"), kind: kind, workspaceID: workspaceID, credentialID: credentialID,
            providerID: providerID, payload: payload, createdAt: Timestamp.now
        )
        ChangeLog.touch(.uncached)
        try await db.insert(into: Self.events)
            .columns("id", "kind", "workspace_id", "credential_id", "provider_id", "payload", "created_at")
            .values(SQLBind(event.id), SQLBind(kind.rawValue), SQLBind(workspaceID), SQLBind(credentialID),
                    SQLBind(providerID), SQLBind(payload), SQLBind(event.createdAt))
            .run()
        let hooks = try await WebhookRepository().subscribers(of: kind, workspaceID: workspaceID, on: db)
        for hook in hooks { try await queue(event, channel: .webhook, target: hook.id, on: db) }
        for address in Set(emailTargets) { try await queue(event, channel: .email, target: address, on: db) }
        return event
    }

    func queue(_ event: Event, channel: Delivery.Channel, target: String, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.uncached)
        try await db.insert(into: Self.deliveries)
            .columns("id", "event_id", "channel", "target", "status", "attempts", "next_attempt_at", "created_at")
            .values(SQLBind(Identifier.make("dlv")), SQLBind(event.id), SQLBind(channel.rawValue), SQLBind(target),
                    SQLBind(Delivery.Status.pending.rawValue), SQLBind(0), SQLBind(event.createdAt), SQLBind(event.createdAt))
            .run()
    }

    public func get(_ id: String, on db: any SQLDatabase) async throws -> Event? {
        try await db.select().column("*").from(Self.events).where("id", .equal, id).first().map(Self.decodeEvent)
    }

    /// Events newest first, of a workspace or of all.
    public func list(workspaceID: String?, kind: EventKind? = nil, limit: Int = 100, on db: any SQLDatabase) async throws -> [Event] {
        var query = db.select().column("*").from(Self.events)
        if let workspaceID { query = query.where("workspace_id", .equal, workspaceID) }
        if let kind { query = query.where("kind", .equal, kind.rawValue) }
        return try await query.orderBy("created_at", .descending).orderBy("id", .descending).limit(limit).all().map(Self.decodeEvent)
    }

    /// Marks a workspace's calls to a provider as served by someone else's key; `false` when they already were (another
    /// instance raised the event).
    public func engageFallback(workspaceID: String, providerID: String, on db: any SQLDatabase) async throws -> Bool {
        ChangeLog.touch(.uncached)
        let rows = try await db.insert(into: Self.fallbacks).columns("workspace_id", "provider_id", "engaged_at")
            .values(SQLBind(workspaceID), SQLBind(providerID), SQLBind(Timestamp.now))
            .ignoringConflicts().returning("workspace_id").all()
        return !rows.isEmpty
    }

    /// The workspace's own key serves the provider again: the next move raises the event again.
    public func releaseFallback(workspaceID: String, providerID: String, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.uncached)
        try await db.delete(from: Self.fallbacks).where("workspace_id", .equal, workspaceID).where("provider_id", .equal, providerID).run()
    }

    /// The kind of the newest key-status event of a credential.
    package func lastKeyEvent(credentialID: String, on db: any SQLDatabase) async throws -> EventKind? {
        let row = try await db.select().column("kind").from(Self.events).where("credential_id", .equal, credentialID)
            .where("kind", .in, [EventKind.keyInvalid, .keyQuotaExceeded, .keyRecovered].map(\.rawValue))
            .orderBy("created_at", .descending).orderBy("id", .descending).limit(1).first()
        return try row.flatMap { EventKind(rawValue: try $0.decode(column: "kind", as: String.self)) }
    }

    /// Reserves a pending delivery until `until` for one attempt, unless another worker (another instance) took it
    /// first: the row changes only if it is still pending at the time that was read.
    public func claim(_ delivery: Delivery, until: String, on db: any SQLDatabase) async throws -> Bool {
        ChangeLog.touch(.uncached)
        let rows = try await db.update(Self.deliveries).set("next_attempt_at", to: until)
            .where("id", .equal, delivery.id).where("status", .equal, Delivery.Status.pending.rawValue)
            .where("next_attempt_at", .equal, delivery.nextAttemptAt)
            .returning("id").all()
        return !rows.isEmpty
    }

    /// Deliveries due now, oldest first.
    public func due(now: String, limit: Int, on db: any SQLDatabase) async throws -> [Delivery] {
        try await db.select().column("*").from(Self.deliveries)
            .where("status", .equal, Delivery.Status.pending.rawValue).where("next_attempt_at", .lessThanOrEqual, now)
            .orderBy("next_attempt_at").orderBy("id").limit(limit).all().map(Self.decodeDelivery)
    }

    /// The deliveries to one target (a webhook id or an address), newest first.
    public func deliveries(target: String, limit: Int = 50, on db: any SQLDatabase) async throws -> [Delivery] {
        try await db.select().column("*").from(Self.deliveries).where("target", .equal, target)
            .orderBy("created_at", .descending).orderBy("id", .descending).limit(limit).all().map(Self.decodeDelivery)
    }

    /// The deliveries of one event.
    public func deliveries(event: String, on db: any SQLDatabase) async throws -> [Delivery] {
        try await db.select().column("*").from(Self.deliveries).where("event_id", .equal, event)
            .orderBy("created_at").all().map(Self.decodeDelivery)
    }

    /// Saves the outcome of an attempt.
    public func update(_ delivery: Delivery, on db: any SQLDatabase) async throws {
        ChangeLog.touch(.uncached)
        try await db.update(Self.deliveries)
            .set("status", to: delivery.status.rawValue).set("attempts", to: delivery.attempts)
            .set("next_attempt_at", to: delivery.nextAttemptAt).set("last_status_code", to: delivery.lastStatusCode)
            .set("last_error", to: delivery.lastError).set("delivered_at", to: delivery.deliveredAt)
            .where("id", .equal, delivery.id).run()
    }

    static func decodeEvent(_ row: any SQLRow) throws -> Event {
        let kindText = try row.decode(column: "kind", as: String.self)
        guard let kind = EventKind(rawValue: kindText) else { throw StoreError.conflict("event has an unknown kind '\(kindText)'") }
        return Event(
            id: try row.decode(column: "id", as: String.self), kind: kind,
            workspaceID: try row.decode(column: "workspace_id", as: String?.self),
            credentialID: try row.decode(column: "credential_id", as: String?.self),
            providerID: try row.decode(column: "provider_id", as: String?.self),
            payload: try row.decode(column: "payload", as: String.self),
            createdAt: try row.decode(column: "created_at", as: String.self)
        )
    }

    static func decodeDelivery(_ row: any SQLRow) throws -> Delivery {
        Delivery(
            id: try row.decode(column: "id", as: String.self),
            eventID: try row.decode(column: "event_id", as: String.self),
            channel: Delivery.Channel(rawValue: try row.decode(column: "channel", as: String.self)) ?? .webhook,
            target: try row.decode(column: "target", as: String.self),
            status: Delivery.Status(rawValue: try row.decode(column: "status", as: String.self)) ?? .pending,
            attempts: try row.decode(column: "attempts", as: Int.self),
            nextAttemptAt: try row.decode(column: "next_attempt_at", as: String.self),
            lastStatusCode: try row.decode(column: "last_status_code", as: Int?.self),
            lastError: try row.decode(column: "last_error", as: String?.self),
            deliveredAt: try row.decode(column: "delivered_at", as: String?.self),
            createdAt: try row.decode(column: "created_at", as: String.self)
        )
    }
}
