import AsyncHTTPClient
import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenStore
import KeywardenTestSupport
import Logging
import Testing
@testable import KeywardenNotifications

@Suite("Event delivery", .serialized)
struct DispatcherTests {
    func makeKey(_ store: AppServices, workspace: String?) async throws -> Credential {
        try await store.engine.transaction { db in
            try await store.credentials.insert(NewCredential(
                scope: workspace.map(Scope.workspace) ?? .platform, providerID: "openai", description: "Production",
                apiKey: Secret("sk-proj-dispatch-abcdefgh1234")
            ), actor: "test", on: db)
        }
    }

    @Test("ten failures raise one key.invalid; a recovery raises key.recovered")
    func oneEventPerTransition() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let key = try await makeKey(store, workspace: nil)
        for _ in 0..<10 {
            try await store.notifications.recordStatus(credentialID: key.id, status: .invalid, message: "Incorrect API key", checkedAt: Date(), actor: "test")
        }
        var events = try await store.engine.read { db in try await store.events.list(workspaceID: nil, on: db) }
        #expect(events.map(\.kind) == [.keyInvalid])
        try await store.notifications.recordStatus(credentialID: key.id, status: .valid, message: "ok", checkedAt: Date(), actor: "test")
        try await store.notifications.recordStatus(credentialID: key.id, status: .valid, message: "ok", checkedAt: Date(), actor: "test")
        events = try await store.engine.read { db in try await store.events.list(workspaceID: nil, on: db) }
        #expect(events.map(\.kind) == [.keyRecovered, .keyInvalid])
        #expect(!events[0].payload.contains("sk-proj-dispatch"))
        await store.close()
    }

    @Test("a webhook receives the event signed; a receiver that is down gets retries, and the delivery survives a restart")
    func webhookRetriesAcrossRestart() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let receiver = try await MockVendorsProcess(vendors: ["hooks=receiver"])
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let settings = DispatchSettings(retryBase: .seconds(5), maximumAttempts: 5)
        let logger = fixture.logs.logger
        let (firstStore, _) = try await fixture.open()
        var store = firstStore
        let ws = try await firstStore.engine.transaction { db in try await firstStore.workspaces.create(name: "Acme", byokAllowed: true, exclusive: false, actor: "t", on: db) }
        let hookURL = try #require(receiver.urls["hooks"]) + "/hooks/keywarden?token=abc"
        let (hook, secret) = try await store.notifications.createWebhook(workspaceID: ws.id, url: hookURL, description: "ops", events: [], actor: "t")
        #expect(secret.unprotectedString.hasPrefix("whsec_"))
        let key = try await makeKey(store, workspace: ws.id)

        try await receiver.respond("hooks", status: 503)
        let (_, event) = try await store.notifications.recordStatus(credentialID: key.id, status: .invalid, message: "Incorrect API key", checkedAt: Date(), actor: "t")
        let eventID = try #require(event?.id)
        let start = Date()
        let first = NotificationDispatcher(app: store, client: client, settings: settings, logger: logger)
        #expect(try await first.deliverDue(now: start) == 1)
        var log = try await store.notifications.deliveries(workspaceID: ws.id, webhookID: hook.id)
        #expect(log.count == 1 && log[0].status == .pending && log[0].attempts == 1 && log[0].lastStatusCode == 503)
        // Not due again before its backoff.
        #expect(try await first.deliverDue(now: start.addingTimeInterval(1)) == 0)
        #expect(try await first.deliverDue(now: start.addingTimeInterval(6)) == 1)
        log = try await store.notifications.deliveries(workspaceID: ws.id, webhookID: hook.id)
        #expect(log[0].attempts == 2 && log[0].status == .pending)

        // A restart: the store closes, a new process opens it; the pending delivery is still there.
        await store.close()
        store = try await fixture.open().0
        try await receiver.respond("hooks", status: 200)
        let second = NotificationDispatcher(app: store, client: client, settings: settings, logger: logger)
        #expect(try await second.deliverDue(now: start.addingTimeInterval(60)) == 1)
        log = try await store.notifications.deliveries(workspaceID: ws.id, webhookID: hook.id)
        #expect(log[0].status == .delivered && log[0].attempts == 3 && log[0].lastStatusCode == 200)

        // The receiver can check the signature with the secret it was given.
        let received = try await receiver.requests("hooks").filter { ($0["path"] as? String) == "/hooks/keywarden" }
        #expect(received.count == 3)
        let last = try #require(received.last)
        let headers = try #require(last["headers"] as? [String: String])
        let body = Data(try #require(last["body"] as? String).utf8)
        let signature = try #require(headers["x-keywarden-signature"])
        #expect(WebhookSignature.verify(header: signature, body: body, secret: secret, now: Int(Date().timeIntervalSince1970)))
        #expect(!WebhookSignature.verify(header: signature, body: body + Data(" ".utf8), secret: secret, now: Int(Date().timeIntervalSince1970)))
        #expect(!WebhookSignature.verify(header: signature, body: body, secret: Secret("whsec_other"), now: Int(Date().timeIntervalSince1970)))
        #expect(!WebhookSignature.verify(header: signature, body: body, secret: secret, now: Int(Date().timeIntervalSince1970) + 3600))
        let payload = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        #expect(payload["id"] as? String == eventID && payload["type"] as? String == "key.invalid")
        #expect((payload["data"] as? [String: Any])?["key_hint"] as? String == "sk-…1234")
        #expect(headers["x-keywarden-event"] == "key.invalid")
        #expect(!String(decoding: body, as: UTF8.self).contains("sk-proj-dispatch"))

        await store.close()
        try await client.shutdown()
        await receiver.stop()
    }

    @Test("a receiver that never recovers is given up after the last attempt; 410 stops at once")
    func givesUp() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let receiver = try await MockVendorsProcess(vendors: ["hooks=receiver"])
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let (store, _) = try await fixture.open()
        let base = try #require(receiver.urls["hooks"])
        let (hook, _) = try await store.notifications.createWebhook(workspaceID: nil, url: base + "/h", description: "", events: [.keyInvalid], actor: "t")
        let key = try await makeKey(store, workspace: nil)
        try await receiver.respond("hooks", status: 500)
        try await store.notifications.recordStatus(credentialID: key.id, status: .invalid, message: "x", checkedAt: Date(), actor: "t")
        let dispatcher = NotificationDispatcher(app: store, client: client, settings: DispatchSettings(retryBase: .seconds(1), maximumAttempts: 3), logger: fixture.logs.logger)
        var now = Date()
        for _ in 0..<5 {
            _ = try await dispatcher.deliverDue(now: now)
            now = now.addingTimeInterval(10)
        }
        var log = try await store.notifications.deliveries(workspaceID: nil, webhookID: hook.id)
        #expect(log.first?.status == .failed && log.first?.attempts == 3)

        try await receiver.respond("hooks", status: 410)
        try await store.notifications.recordStatus(credentialID: key.id, status: .valid, message: "x", checkedAt: Date(), actor: "t")
        try await store.notifications.recordStatus(credentialID: key.id, status: .invalid, message: "x", checkedAt: Date(), actor: "t")
        _ = try await dispatcher.deliverDue(now: now)
        log = try await store.notifications.deliveries(workspaceID: nil, webhookID: hook.id)
        // key.recovered was filtered out by the hook's event list; the second key.invalid met a 410.
        #expect(log.count == 2 && log.first?.status == .failed && log.first?.attempts == 1 && log.first?.lastStatusCode == 410)
        await store.close()
        try await client.shutdown()
        await receiver.stop()
    }

    @Test("an event is mailed to the workspace's address through STARTTLS")
    func emailDelivery() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let smtp = try await SMTPServer()
        defer { smtp.stop() }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let (store, _) = try await fixture.open()
        try await store.notifications.saveSMTP(smtp.settings(), password: Secret(SMTPServer.password), actor: "t")
        let ws = try await store.engine.transaction { db in try await store.workspaces.create(name: "Acme", byokAllowed: true, exclusive: false, actor: "t", on: db) }
        _ = try await store.workspaceService.update(ws.id, WorkspaceChanges(notificationEmail: .some("team@acme.example")), actor: "t")
        let key = try await makeKey(store, workspace: ws.id)
        try await store.notifications.recordStatus(credentialID: key.id, status: .quotaExceeded, message: "You exceeded your current quota", checkedAt: Date(), actor: "t")
        let dispatcher = NotificationDispatcher(app: store, client: client, settings: DispatchSettings(smtpCAFile: smtp.caFile), logger: fixture.logs.logger)
        #expect(try await dispatcher.deliverDue() == 1)
        let mail = try #require(try await smtp.waitForMessages(1).first)
        #expect(mail["to"] as? [String] == ["team@acme.example"] && mail["tls"] as? Bool == true && mail["authenticated"] as? Bool == true)
        let data = try #require(mail["data"] as? String)
        #expect(data.contains("Subject: [Keywarden] OpenAI key \"Production\" is out of quota"))
        // The SMTP password is sealed: it is in no log and not in the database files.
        #expect(!fixture.logs.text.contains(SMTPServer.password))
        #expect(!contains(try fixture.databaseBytes(), SMTPServer.password))
        await store.close()
        try await client.shutdown()
    }
}
