import AsyncHTTPClient
import Foundation
import KeywardenCore
import KeywardenApp
import KeywardenStore
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import SQLKit

/// How the dispatcher retries.
public struct DispatchSettings: Sendable {
    /// How often it looks for due deliveries.
    public var pollInterval: Duration
    /// The first retry waits this long; each next one twice as long, up to `maximumDelay`.
    public var retryBase: Duration
    public var maximumDelay: Duration
    /// After this many failed attempts a delivery is given up (`failed`, kept in the log).
    public var maximumAttempts: Int
    public var webhookTimeout: TimeAmount
    /// A PEM file of CA certificates the SMTP server is checked against (a private relay); `nil` uses the system's.
    public var smtpCAFile: String?

    public init(pollInterval: Duration = .seconds(1), retryBase: Duration = .seconds(10), maximumDelay: Duration = .seconds(3600),
                maximumAttempts: Int = 10, webhookTimeout: TimeAmount = .seconds(10), smtpCAFile: String? = nil) {
        self.pollInterval = pollInterval
        self.retryBase = retryBase
        self.maximumDelay = maximumDelay
        self.maximumAttempts = maximumAttempts
        self.webhookTimeout = webhookTimeout
        self.smtpCAFile = smtpCAFile
    }

    /// The wait before attempt `attempt + 1` after `attempt` failures.
    public func delay(afterAttempt attempt: Int) -> Duration {
        let factor = 1 << min(max(attempt - 1, 0), 20)
        return min(retryBase * factor, maximumDelay)
    }
}

/// Delivers recorded events: signed webhook POSTs and e-mails, with retries and exponential backoff.
/// Deliveries live in the database (recorded with their event), so a restart resumes them.
public final class NotificationDispatcher: Service, Sendable {
    let app: AppServices
    let client: HTTPClient
    /// The client for a workspace's webhooks: through the egress guard (its URL is the workspace's choice).
    let workspaceClient: HTTPClient
    /// Why a workspace's webhook URL will be refused by the egress guard (its explanation), so the delivery fails at once.
    let workspaceTargetRefusal: @Sendable (String) async -> String?
    let settings: DispatchSettings
    let logger: Logger
    /// How long a claimed delivery is reserved for the attempt in progress.
    static let lease: TimeInterval = 120

    public init(app: AppServices, client: HTTPClient, workspaceClient: HTTPClient? = nil,
                workspaceTargetRefusal: @escaping @Sendable (String) async -> String? = { _ in nil }, settings: DispatchSettings, logger: Logger) {
        self.workspaceTargetRefusal = workspaceTargetRefusal
        self.app = app
        self.client = client
        self.workspaceClient = workspaceClient ?? client
        self.settings = settings
        self.logger = logger
    }

    public func run() async throws {
        // Graceful shutdown cancels the loop; a round in progress stops at its next await.
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    _ = try await self.deliverDue()
                } catch {
                    self.logger.warning("notification round failed", metadata: ["error": "\(String(describing: error))"])
                }
                try? await Task.sleep(for: self.settings.pollInterval)
            }
        }
    }

    /// Attempts every delivery that is due; returns how many were attempted.
    @discardableResult
    ///
    /// Up to ``concurrentAttempts`` at once: one slow receiver (a workspace's hook that accepts and never answers) holds
    /// one slot for its timeout, not the whole queue, so the platform's alerts are not delayed behind it.
    public func deliverDue(now: Date = Date()) async throws -> Int {
        let due = try await app.engine.read { db in try await self.app.events.due(now: Timestamp.string(now), limit: 50, on: db) }
        var claimed: [Delivery] = []
        for delivery in due {
            if let delivery = try await claim(delivery, now: now) { claimed.append(delivery) }
        }
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for delivery in claimed {
                if running >= Self.concurrentAttempts {
                    await group.next()
                    running -= 1
                }
                running += 1
                group.addTask { await self.attempt(delivery, now: now) }
            }
        }
        return claimed.count
    }

    /// Deliveries attempted at once.
    static let concurrentAttempts = 16

    /// Reserves a delivery for this attempt, unless another worker took it first.
    func claim(_ delivery: Delivery, now: Date) async throws -> Delivery? {
        let until = Timestamp.string(now.addingTimeInterval(Self.lease))
        let events = app.events
        return try await app.engine.transaction(changesState: false) { db in
            try await events.claim(delivery, until: until, on: db) ? delivery : nil
        }
    }

    func attempt(_ delivery: Delivery, now: Date) async {
        var delivery = delivery
        delivery.attempts += 1
        do {
            let eventID = delivery.eventID
            guard let event = try await app.engine.read({ db in try await self.app.events.get(eventID, on: db) }) else {
                delivery.status = .failed
                delivery.lastError = "the event no longer exists"
                try await save(delivery)
                return
            }
            switch delivery.channel {
            case .webhook: delivery.lastStatusCode = try await sendWebhook(delivery, event: event)
            case .email: try await sendEmail(delivery, event: event)
            }
            delivery.status = .delivered
            delivery.deliveredAt = Timestamp.now
            delivery.lastError = nil
        } catch let failure as DeliveryFailure {
            record(failure, into: &delivery, now: now)
        } catch let error as SMTPError {
            record(DeliveryFailure(message: error.description, statusCode: nil, permanent: !error.isTransient), into: &delivery, now: now)
        } catch {
            record(DeliveryFailure(message: Self.describe(error), statusCode: nil, permanent: false), into: &delivery, now: now)
        }
        do {
            try await save(delivery)
        } catch {
            logger.error("could not record a delivery attempt", metadata: ["delivery": "\(delivery.id)", "error": "\(String(describing: error))"])
        }
    }

    func record(_ failure: DeliveryFailure, into delivery: inout Delivery, now: Date) {
        delivery.lastError = String(failure.message.prefix(300))
        delivery.lastStatusCode = failure.statusCode
        if failure.permanent || delivery.attempts >= settings.maximumAttempts {
            delivery.status = .failed
        } else {
            let wait = settings.delay(afterAttempt: delivery.attempts)
            delivery.nextAttemptAt = Timestamp.string(now.addingTimeInterval(Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18))
        }
        logger.info("delivery attempt failed", metadata: [
            "delivery": "\(delivery.id)", "channel": "\(delivery.channel.rawValue)", "attempt": "\(delivery.attempts)",
            "status": "\(delivery.status.rawValue)", "error": "\(delivery.lastError ?? "")",
        ])
    }

    func save(_ delivery: Delivery) async throws {
        try await app.engine.transaction(changesState: false) { db in try await self.app.events.update(delivery, on: db) }
    }

    // MARK: Webhooks

    /// The JSON a webhook receives.
    public static func webhookBody(_ event: Event) -> Data {
        var object: [String: Any] = ["id": event.id, "type": event.kind.rawValue, "created_at": event.createdAt]
        object["workspace_id"] = event.workspaceID ?? NSNull()
        object["data"] = (try? JSONSerialization.jsonObject(with: Data(event.payload.utf8))) ?? [:]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }

    func sendWebhook(_ delivery: Delivery, event: Event) async throws -> Int {
        let hookID = delivery.target
        guard let hook = try await app.engine.read({ db in try await WebhookRepository().get(hookID, on: db) }) else {
            throw DeliveryFailure(message: "the webhook was deleted", statusCode: nil, permanent: true)
        }
        guard let secret = try await app.notifications.signingSecret(of: hook) else {
            throw DeliveryFailure(message: "the webhook's signing secret is missing", statusCode: nil, permanent: true)
        }
        let body = Self.webhookBody(event)
        // A URL no client can take (forced into the database past the save-time check) never reaches one.
        if let problem = OutboundURL.problem(hook.url) {
            throw DeliveryFailure(message: "the URL \(problem)", statusCode: nil, permanent: true)
        }
        var request = HTTPClientRequest(url: hook.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Keywarden-Webhooks/1")
        request.headers.add(name: "X-Keywarden-Event", value: event.kind.rawValue)
        request.headers.add(name: "X-Keywarden-Delivery", value: delivery.id)
        request.headers.add(name: WebhookSignature.header, value: WebhookSignature.sign(body: body, secret: secret, timestamp: Int(Date().timeIntervalSince1970)))
        request.body = .bytes(ByteBuffer(bytes: body))
        if hook.workspaceID != nil, let refusal = await workspaceTargetRefusal(hook.url) {
            throw DeliveryFailure(message: "the URL points at \(refusal); Keywarden may not call it for a workspace", statusCode: nil, permanent: true)
        }
        let response: HTTPClientResponse
        do {
            response = try await (hook.workspaceID == nil ? client : workspaceClient).execute(request, timeout: settings.webhookTimeout, logger: logger)
        } catch {
            throw DeliveryFailure(message: Self.describe(error), statusCode: nil, permanent: false)
        }
        let code = Int(response.status.code)
        let text = (try? await response.body.collect(upTo: 4096)).map { String(buffer: $0) } ?? ""
        guard (200..<300).contains(code) else {
            // 410 Gone: the receiver asks not to be called again.
            throw DeliveryFailure(message: "the receiver answered \(code) \(text.prefix(200))", statusCode: code, permanent: code == 410)
        }
        return code
    }

    // MARK: E-mail

    func sendEmail(_ delivery: Delivery, event: Event) async throws {
        guard let (smtp, password) = try await app.notifications.smtpForSending() else {
            throw DeliveryFailure(message: "SMTP is not configured", statusCode: nil, permanent: true)
        }
        let message = EmailMessage(from: smtp.from, to: [delivery.target], subject: Self.subject(event), body: Self.text(event))
        try await SMTPClient(settings: smtp, password: password, caFile: settings.smtpCAFile).send(message)
    }

    static func payload(_ event: Event) -> [String: String] {
        (try? JSONDecoder().decode([String: String].self, from: Data(event.payload.utf8))) ?? [:]
    }

    /// The subject line of an event's e-mail.
    public static func subject(_ event: Event) -> String {
        let data = payload(event)
        let key = "\(data["provider_name"] ?? "A") key \"\(data["description"] ?? "")\""
        switch event.kind {
        case .keyInvalid: return "[Keywarden] \(key) stopped working"
        case .keyQuotaExceeded: return "[Keywarden] \(key) is out of quota"
        case .keyRecovered: return "[Keywarden] \(key) works again"
        case .fallbackEngaged: return "[Keywarden] Requests fell back to \(data["source"] ?? "another") key"
        case .budgetThreshold:
            return "[Keywarden] \(data["workspace_name"] ?? "A workspace") used \(data["percent"] ?? "?") % of its \(data["scope"] == "byok" ? "own keys'" : "platform") budget"
        case .keyExpiring: return "[Keywarden] \(key) expires in \(data["days_left"] ?? "?") days"
        case .keyRotationDue: return "[Keywarden] \(key) is due for rotation"
        case .test: return "[Keywarden] Test notification"
        }
    }

    /// The body of an event's e-mail.
    public static func text(_ event: Event) -> String {
        let data = payload(event)
        var lines = [subject(event).replacingOccurrences(of: "[Keywarden] ", with: "") + ".", ""]
        for (label, key) in [("Provider", "provider_name"), ("Key", "description"), ("Masked key", "key_hint"), ("Status", "status"),
                             ("Was", "previous_status"), ("Vendor's message", "message"), ("Limit (credits)", "limit_credits"),
                             ("Spent (credits)", "spent_credits"), ("Period ends", "period_end"), ("Expires at", "expires_at"),
                             ("Rotate by", "due_at"), ("Secret stored at", "key_set_at")] {
            if let value = data[key], !value.isEmpty { lines.append("\(label): \(value)") }
        }
        if let workspace = event.workspaceID { lines.append("Workspace: \(workspace)") }
        if let status = data["status"].flatMap(VerificationStatus.init(rawValue:)) { lines += ["", status.hint()] }
        lines += ["", "Event \(event.id) at \(event.createdAt)."]
        return lines.joined(separator: "\n")
    }

    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        if text.contains("Connection refused") || text.contains("connectionRefused") { return "connection refused" }
        if text.contains("Timeout") || text.contains("timeout") || text.contains("deadline") { return "timed out" }
        return String(text.prefix(200))
    }
}

/// A failed attempt: the reason, and whether retrying can help.
struct DeliveryFailure: Error {
    let message: String
    let statusCode: Int?
    let permanent: Bool
}

