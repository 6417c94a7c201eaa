import Foundation
import KeywardenCore
import KeywardenStore
import Logging
import ServiceLifecycle
import SQLKit

/// When the lifecycle sweep runs and how early it warns.
public struct KeyLifecycleSettings: Sendable {
    /// How often the sweep looks at keys with an expiry, a rotate-by age or a grace period.
    public var tick: Duration
    /// How many days before a key's expiry the `key.expiring` event is sent.
    public var expiryNoticeDays: Int

    public init(tick: Duration = .seconds(60), expiryNoticeDays: Int = 14) {
        self.tick = tick
        self.expiryNoticeDays = expiryNoticeDays
    }
}

/// Ends rotations whose grace period is over (the old secret is removed) and raises `key.expiring` (N days before a
/// key's expiry date) and `key.rotation_due` (once a secret is older than its rotate-by age), each once per date or
/// secret, whatever the number of instances: every decision is taken again on the row inside the write transaction.
public final class KeyLifecycleSweep: Service, Sendable {
    let app: AppServices
    var store: Store { app.store }
    let settings: KeyLifecycleSettings
    let logger: Logger

    public init(app: AppServices, settings: KeyLifecycleSettings, logger: Logger) {
        self.app = app
        self.settings = settings
        self.logger = logger
    }

    public func run() async throws {
        await PeriodicRounds.run(every: settings.tick, logger: logger, failure: "key lifecycle sweep failed") { try await self.sweep() }
    }

    /// One round at `now`; returns what it did (for tests and logs).
    @discardableResult
    public func sweep(now: Date = Date()) async throws -> (graceEnded: Int, expiring: Int, rotationDue: Int) {
        let noticeDays = settings.expiryNoticeDays
        let keys = try await store.engine.read { db in try await self.store.credentials.dueForLifecycle(now: now, noticeDays: noticeDays, on: db) }
        var done = (graceEnded: 0, expiring: 0, rotationDue: 0)
        for key in keys {
            // One key's failure (a row another instance just deleted, a store hiccup) does not hold back the others.
            do {
                if let previous = key.lifecycle.previous, previous.until <= now, try await endGrace(key.id, now: now) { done.graceEnded += 1 }
                if key.lifecycle.expiryNoticeDue(at: now, noticeDays: settings.expiryNoticeDays), try await notice(.keyExpiring, key.id, now: now) { done.expiring += 1 }
                if key.lifecycle.rotationNoticeDue(at: now), try await notice(.keyRotationDue, key.id, now: now) { done.rotationDue += 1 }
            } catch {
                logger.warning("key lifecycle sweep: key skipped", metadata: ["key": "\(key.id)", "error": "\(String(describing: error))"])
            }
        }
        return done
    }

    func endGrace(_ id: String, now: Date) async throws -> Bool {
        try await store.engine.transaction { db in
            guard let key = try await self.store.credentials.get(id, on: db), let previous = key.lifecycle.previous, previous.until <= now else { return false }
            _ = try await self.app.keyRotation.dropPrevious(key, actor: "system:lifecycle", reason: "grace_ended", on: db)
            return true
        }
    }

    func notice(_ kind: EventKind, _ id: String, now: Date) async throws -> Bool {
        let noticeDays = settings.expiryNoticeDays
        let notifications = app.notifications
        return try await store.engine.transaction { db in
            guard var key = try await self.store.credentials.get(id, on: db) else { return false }
            var data: [String: String] = [:]
            switch kind {
            case .keyExpiring:
                guard key.lifecycle.expiryNoticeDue(at: now, noticeDays: noticeDays), let expiresAt = key.lifecycle.expiresAt else { return false }
                key.lifecycle.expiryNoticeFor = expiresAt
                data["expires_at"] = Timestamp.string(expiresAt)
                data["days_left"] = "\(max(0, KeyLifecycle.days(from: now, to: expiresAt)))"
            default:
                guard key.lifecycle.rotationNoticeDue(at: now), let due = key.lifecycle.rotationDueAt else { return false }
                key.lifecycle.rotationNoticeFor = key.lifecycle.keySetAt
                data["due_at"] = Timestamp.string(due)
                data["rotate_by_days"] = key.lifecycle.rotateByDays.map(String.init) ?? ""
                data["key_set_at"] = key.lifecycle.keySetAt.map(Timestamp.string) ?? ""
            }
            try await self.store.credentials.write(key, on: db)
            _ = try await notifications.recordKeyEvent(kind, key, data: data, on: db)
            return true
        }
    }
}
