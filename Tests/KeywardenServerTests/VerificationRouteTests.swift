import Foundation
import KeywardenCore
import KeywardenProviders
import KeywardenServer
import KeywardenStore
import KeywardenTestSupport
import Testing

@Suite("Test buttons, verify on save, webhooks and e-mail settings", .serialized)
struct VerificationRouteTests {
    func withMocks(_ body: @Sendable (APIHarness, API, MockVendorsProcess) async throws -> Void) async throws {
        let mocks = try await MockVendorsProcess()
        do {
            let catalog = try ProviderCatalog.load().applyingUpstreamOverrides(from: mocks.upstreamEnvironment)
            var settings = ServerSettings(host: "127.0.0.1", port: 0, verifyTimeoutSeconds: 3)
            settings.healthChecksEnabled = false
            try await APIHarness.run(settings: settings, catalog: catalog) { harness, api in try await body(harness, api, mocks) }
        } catch {
            await mocks.stop()
            throw error
        }
        await mocks.stop()
    }

    @Test("the platform card's Test answers {status, message, hint, checked_at, latency_ms, models_available} and records the status")
    func platformTest() async throws {
        try await withMocks { harness, api, mocks in
            let noKey = try await api.post("/api/v1/platform/providers/openai/test", token: harness.adminToken)
            #expect(noKey.status == 409 && noKey.errorCode == "key_required")
            #expect(try await api.put("/api/v1/platform/providers/openai", token: harness.adminToken, json: ["api_key": "sk-proj-good-abcdef123456", "extras": ["organization_id": "org-7"]]).status == 200)
            let tested = try await api.post("/api/v1/platform/providers/openai/test", token: harness.adminToken)
            #expect(tested.status == 200, "\(tested.text)")
            #expect(tested.json["status"] as? String == "valid" && tested.json["models_available"] as? Int == 6)
            #expect(tested.json["hint"] as? String == "The key works." && tested.json["checked_at"] != nil && tested.json["latency_ms"] != nil)
            let card = try await api.get("/api/v1/platform/providers", token: harness.adminToken)
            let openai = (card.json["providers"] as? [[String: Any]])?.first { $0["provider"] as? String == "openai" } ?? [:]
            #expect(Reply.keyState(openai) == "has_key=true hint=sk-…3456 status=valid" && openai["last_verified_at"] != nil)
            let sent = try #require(try await mocks.requests("openai").last?["headers"] as? [String: String])
            #expect(sent["openai-organization"] == "org-7" && sent["authorization"] == "Bearer sk-proj-good-abcdef123456")

            // The default model is checked against what the key can list.
            _ = try await api.put("/api/v1/platform/providers/openai", token: harness.adminToken, json: ["default_model": "gpt-3.5-turbo"])
            let custom = try await api.post("/api/v1/platform/providers/openai/test", token: harness.adminToken)
            #expect(custom.json["status"] as? String == "model_not_found" && (custom.json["hint"] as? String)?.contains("Pick") == true)

            let unavailable = try await api.post("/api/v1/platform/providers/midjourney/test", token: harness.adminToken)
            #expect(unavailable.status == 409 || unavailable.status == 422)
        }
    }

    @Test("verify on save keeps the key whatever the vendor says, with its status, inactive when refused; keys.test is the member's")
    func verifyOnSave() async throws {
        try await withMocks { harness, api, _ in
            let ws = try await api.createWorkspace("Acme")
            let member = try await api.addMember(ws, role: "member")
            let viewer = try await api.addMember(ws, role: "viewer")
            let created = try await api.post("/api/v1/workspaces/\(ws)/keys?verify=true", token: harness.adminToken, json: [
                "provider": "anthropic", "description": "Claude", "api_key": "sk-ant-revoked-abcdefgh",
            ])
            #expect(created.status == 201)
            let verification = created.object("verification")
            #expect(verification["status"] as? String == "invalid")
            #expect((verification["message"] as? String)?.contains("sk-ant-revoked") == false)
            let key = created.object("key")
            #expect(key["status"] as? String == "invalid" && key["has_key"] as? Bool == true)
            #expect(key["active"] as? Bool == false, "a key the vendor refuses is saved inactive, not left serving as the active primary")
            let path = "/api/v1/workspaces/\(ws)/keys/\(key["id"] as! String)"

            #expect(try await api.post(path + "/test", token: viewer).status == 403)
            let retest = try await api.post(path + "/test", token: member)
            #expect(retest.status == 200 && retest.json["status"] as? String == "invalid")

            let fixed = try await api.patch(path + "?verify=true", token: harness.adminToken, json: ["api_key": "sk-ant-good-abcdefghij"])
            #expect(fixed.object("verification")["status"] as? String == "valid" && fixed.object("key")["status"] as? String == "valid")

            let events = try await api.get("/api/v1/events?workspace=\(ws)", token: harness.adminToken)
            #expect(events.items.compactMap { $0["kind"] as? String } == ["key.recovered", "key.invalid"])
        }
    }

    @Test("webhooks through the API: the secret is shown once, the URL's query never, deliveries are logged")
    func webhookRoutes() async throws {
        try await withMocks { harness, api, mocks in
            let ws = try await api.createWorkspace("Acme")
            let admin = try await api.addMember(ws, role: "admin")
            let viewer = try await api.addMember(ws, role: "viewer")
            let url = try #require(mocks.urls["receiver"]) + "/hook?token=s3cr3t-query"
            #expect(try await api.post("/api/v1/workspaces/\(ws)/webhooks", token: viewer, json: ["url": url]).status == 403)
            let bad = try await api.post("/api/v1/workspaces/\(ws)/webhooks", token: admin, json: ["url": "ftp://x"])
            #expect(bad.status == 400 && bad.errorField == "url")
            let created = try await api.post("/api/v1/workspaces/\(ws)/webhooks", token: admin, json: ["url": url, "events": ["key.invalid"]])
            #expect(created.status == 201)
            #expect((created.json["signing_secret"] as? String)?.hasPrefix("whsec_") == true)
            let id = try #require(created.object("webhook")["id"] as? String)
            let list = try await api.get("/api/v1/workspaces/\(ws)/webhooks", token: admin)
            #expect(!list.text.contains("s3cr3t-query") && !list.text.contains("whsec_"))

            #expect(try await api.post("/api/v1/workspaces/\(ws)/webhooks/test", token: admin).status == 202)
            #expect(try await api.services.dispatcher.deliverDue() == 1)
            let log = try await api.get("/api/v1/workspaces/\(ws)/webhooks/\(id)/deliveries", token: admin)
            #expect(log.items.first?["status"] as? String == "delivered")
            let received = try await mocks.requests("receiver")
            #expect(received.contains { ($0["path"] as? String) == "/hook" })

            let other = try await api.createWorkspace("Other")
            let otherOwner = try await api.addMember(other, role: "owner")
            #expect(try await api.get("/api/v1/workspaces/\(ws)/webhooks/\(id)/deliveries", token: otherOwner).status == 404)
            #expect(try await api.delete("/api/v1/workspaces/\(other)/webhooks/\(id)", token: otherOwner).status == 404)
            #expect(try await api.delete("/api/v1/workspaces/\(ws)/webhooks/\(id)", token: admin).status == 200)
        }
    }

    @Test("webhooks on the settings page: added with post / redirect / get (the secret shown once), a test event's delivery told in place")
    func webhookPageAndTestEvent() async throws {
        try await withMocks { harness, api, mocks in
            let ws = try await api.createWorkspace("Hooked")
            let browser = try await AdminPageTests.signIn(api, token: harness.adminToken)
            let empty = try await browser.submit("/workspaces/\(ws)/settings/test", [:])
            #expect(empty.posted == 303 && empty.page.body.contains("there is no webhook or notification address"))
            let url = try #require(mocks.urls["receiver"]) + "/hook?token=s3cr3t-query"
            let added = try await browser.submit("/workspaces/\(ws)/settings/webhooks", ["url": url, "description": "Ops"])
            #expect(added.posted == 303 && added.page.body.contains("Webhook added.") && added.page.body.contains("whsec_"))
            let reload = try await browser.get("/workspaces/\(ws)/settings")
            #expect(!reload.body.contains("whsec_"))
            let hooks = try await api.get("/api/v1/workspaces/\(ws)/webhooks", token: harness.adminToken)
            #expect((hooks.json["items"] as? [[String: Any]])?.count == 1, "one webhook, however often the page is reloaded")
            // The dispatcher's rounds, as the running server would make them.
            let rounds = Task { while !Task.isCancelled { _ = try? await api.services.dispatcher.deliverDue(); try? await Task.sleep(for: .milliseconds(100)) } }
            defer { rounds.cancel() }
            let tested = try await browser.submit("/workspaces/\(ws)/settings/test", [:])
            #expect(tested.posted == 303 && tested.page.body.contains("Test event sent. Webhook ") && tested.page.body.contains(": delivered (200)."),
                    "\(tested.page.body.components(separatedBy: "toast").dropFirst().first?.prefix(300) ?? "")")
            #expect(!tested.page.body.contains("s3cr3t-query"), "the receiver's query is never shown")
            let received = try await mocks.requests("receiver")
            #expect(received.contains { ($0["path"] as? String) == "/hook" })
        }
    }

    @Test("SMTP settings: the password is leave-blank-to-keep and never shown")
    func smtpSettings() async throws {
        try await APIHarness.run { harness, api in
            #expect(try await api.get("/api/v1/platform/smtp", token: harness.adminToken).json["configured"] as? Bool == false)
            let saved = try await api.put("/api/v1/platform/smtp", token: harness.adminToken, json: [
                "host": "smtp.example.com", "port": 587, "username": "kw", "password": "smtp-canary-pw-123", "from": "keywarden@example.com",
            ])
            #expect(saved.status == 200 && saved.object("smtp")["has_password"] as? Bool == true)
            let kept = try await api.put("/api/v1/platform/smtp", token: harness.adminToken, json: ["host": "smtp2.example.com", "from": "keywarden@example.com", "password": ""])
            #expect(kept.object("smtp")["has_password"] as? Bool == true && kept.object("smtp")["host"] as? String == "smtp2.example.com")
            let bad = try await api.put("/api/v1/platform/smtp", token: harness.adminToken, json: ["host": "x", "from": "not-an-address"])
            #expect(bad.status == 400 && bad.errorField == "from")
            #expect(!harness.transcript.contains("smtp-canary-pw-123") && !harness.fixture.logs.text.contains("smtp-canary-pw-123"))
        }
    }
}

@Suite("Health checks", .serialized)
struct HealthCheckTests {
    @Test("the background round checks due active keys once each, and on-demand checks respect the recheck guard")
    func backgroundRound() async throws {
        let mocks = try await MockVendorsProcess()
        let catalog = try ProviderCatalog.load().applyingUpstreamOverrides(from: mocks.upstreamEnvironment)
        do {
            var settings = ServerSettings(host: "127.0.0.1", port: 0)
            settings.healthChecksEnabled = false
            // Long enough that a loaded machine (the whole suite on PostgreSQL) still asks within it; the test waits it out below.
            settings.health.recheckGuard = .seconds(10)
            try await APIHarness.run(settings: settings, catalog: catalog) { harness, api in
                let ws = try await api.createWorkspace("Acme")
                let good = try await api.createKey(ws, description: "good", key: "sk-good-health-0001")
                _ = try await api.createKey(ws, provider: "anthropic", description: "bad", key: "sk-ant-revoked-health")
                _ = try await api.createKey(ws, provider: "mistral", description: "off", key: "mistral-good-0003", active: false)
                try await mocks.clear()
                try await api.services.health.checkDueKeys()
                let keys = try await api.get("/api/v1/workspaces/\(ws)/keys", token: harness.adminToken)
                let statuses = Dictionary(uniqueKeysWithValues: keys.items.map { ($0["description"] as! String, $0["status"] as! String) })
                #expect(statuses == ["good": "valid", "bad": "invalid", "off": "unverified"])
                let openaiCalls = try await mocks.requests("openai").count
                let mistralCalls = try await mocks.requests("mistral").count
                #expect(openaiCalls == 1 && mistralCalls == 0)
                // Fresh keys are not due again.
                try await api.services.health.checkDueKeys()
                #expect(try await mocks.requests("openai").count == 1)
                // Asked for a check right after the round, the guard holds; once the guard has passed, it runs.
                let id = good["id"] as! String
                api.services.health.requestCheck(credentialID: id)
                try await Task.sleep(for: .milliseconds(500))
                #expect(try await mocks.requests("openai").count == 1)
                try await Task.sleep(for: .milliseconds(10_100))
                api.services.health.requestCheck(credentialID: id)
                var calls = 1
                for _ in 0..<100 where calls < 2 {
                    try await Task.sleep(for: .milliseconds(100))
                    calls = try await mocks.requests("openai").count
                }
                #expect(calls == 2)
                let events = try await api.get("/api/v1/events?workspace=\(ws)", token: harness.adminToken)
                #expect(events.items.compactMap { $0["kind"] as? String } == ["key.invalid"])
            }
        } catch {
            await mocks.stop()
            throw error
        }
        await mocks.stop()
    }
}
