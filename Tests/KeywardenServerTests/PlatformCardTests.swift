import Foundation
import KeywardenCore
import KeywardenStore
import Testing

@Suite("Platform provider cards")
struct PlatformCardTests {
    /// The key stored for a platform card, opened through the store (the API never shows it).
    func storedPlatformKey(_ harness: APIHarness, _ provider: String) async throws -> (String?, [String: String]) {
        try await harness.store.engine.read { db in
            guard let credential = try await harness.store.credentials.list(scope: .platform, providerID: provider, on: db).first else { return (nil, [:]) }
            let key = try await harness.store.credentials.openKey(of: credential, on: db)?.unprotectedString
            let extras = try await harness.store.credentials.openExtras(of: credential, on: db).mapValues(\.unprotectedString)
            return (key, extras)
        }
    }

    func card(_ reply: Reply, _ provider: String) -> [String: Any] {
        (reply.json["providers"] as? [[String: Any]])?.first { $0["provider"] as? String == provider } ?? [:]
    }

    @Test("cards list every provider in display order with the stats strip; the key is only {has_key, hint, status}")
    func cardsAndStats() async throws {
        try await APIHarness.run { harness, api in
            let list = try await api.get("/api/v1/platform/providers", token: harness.adminToken)
            #expect(list.status == 200)
            let providers = try #require(list.json["providers"] as? [[String: Any]])
            #expect(providers.map { $0["provider"] as? String } == harness.store.catalog.providers.map(\.id))
            let stats = list.object("stats")
            #expect(stats["providers"] as? Int == providers.count && stats["active"] as? Int == 0 && stats["ready"] as? Int == 0)
            // ollama needs no key but a base URL: nothing is configured yet.
            #expect(stats["no_key"] as? Int == providers.count)
            let openai = card(list, "openai")
            #expect(Reply.keyState(openai) == "has_key=false hint= status=unverified")
        }
    }

    @Test("leave blank to keep: an empty key or extra keeps the stored value; a new value overwrites it")
    func leaveBlankToKeep() async throws {
        try await APIHarness.run { harness, api in
            let path = "/api/v1/platform/providers/openai"
            let first = try await api.put(path, token: harness.adminToken, json: [
                "api_key": "sk-proj-first-key-abcdefghijkl0001", "extras": ["organization_id": "org-first", "project_id": "proj_first"],
            ])
            #expect(first.status == 200)
            #expect(first.json["message"] as? String == "OpenAI settings saved.")
            #expect(Reply.keyState(first.object("card")) == "has_key=true hint=sk-…0001 status=unverified")

            // Blank key, blank extra, absent extra: all kept; the default model changes.
            let blank = try await api.put(path, token: harness.adminToken, json: [
                "api_key": "", "extras": ["organization_id": ""], "default_model": "gpt-5.4",
            ])
            #expect(blank.status == 200)
            #expect(blank.object("card")["default_model"] as? String == "gpt-5.4")
            var (key, extras) = try await storedPlatformKey(harness, "openai")
            #expect(key == "sk-proj-first-key-abcdefghijkl0001")
            #expect(extras == ["organization_id": "org-first", "project_id": "proj_first"])

            // No api_key at all: kept too.
            #expect(try await api.put(path, token: harness.adminToken, json: ["display_order": 3]).status == 200)
            (key, _) = try await storedPlatformKey(harness, "openai")
            #expect(key == "sk-proj-first-key-abcdefghijkl0001")

            // New values overwrite; the other extra stays.
            let replaced = try await api.put(path, token: harness.adminToken, json: [
                "api_key": "sk-proj-second-key-abcdefghijk0002", "extras": ["organization_id": "org-second"],
            ])
            #expect(Reply.keyState(replaced.object("card")) == "has_key=true hint=sk-…0002 status=unverified")
            (key, extras) = try await storedPlatformKey(harness, "openai")
            #expect(key == "sk-proj-second-key-abcdefghijk0002")
            #expect(extras == ["organization_id": "org-second", "project_id": "proj_first"])

            // An extra can be removed explicitly.
            #expect(try await api.put(path, token: harness.adminToken, json: ["clear_extras": ["project_id"]]).status == 200)
            (_, extras) = try await storedPlatformKey(harness, "openai")
            #expect(extras == ["organization_id": "org-second"])
        }
    }

    @Test("the activation guard refuses a card with no key; the stats strip moves with each change")
    func activationGuardAndStats() async throws {
        try await APIHarness.run { harness, api in
            func stats() async throws -> [String: Int] {
                let reply = try await api.get("/api/v1/platform/providers", token: harness.adminToken)
                return (reply.object("stats") as? [String: Int]) ?? [:]
            }
            let total = try await stats()["providers"] ?? 0
            let refused = try await api.post("/api/v1/platform/providers/anthropic/activate", token: harness.adminToken)
            #expect(refused.status == 409)
            #expect(refused.errorCode == "key_required")
            #expect(refused.errorMessage == "Add an API key before activating.")
            #expect(try await stats() == ["providers": total, "active": 0, "ready": 0, "no_key": total])

            #expect(try await api.put("/api/v1/platform/providers/anthropic", token: harness.adminToken, json: ["api_key": "sk-ant-api03-abcdefghijklmnop"]).status == 200)
            #expect(try await stats() == ["providers": total, "active": 0, "ready": 0, "no_key": total - 1])

            let activated = try await api.post("/api/v1/platform/providers/anthropic/activate", token: harness.adminToken)
            #expect(activated.status == 200 && activated.object("card")["ready"] as? Bool == true)
            #expect(try await stats() == ["providers": total, "active": 1, "ready": 1, "no_key": total - 1])

            // Azure needs its endpoint and API version besides the key.
            #expect(try await api.put("/api/v1/platform/providers/azure-openai", token: harness.adminToken, json: ["api_key": "0123456789abcdef0123456789abcdef"]).status == 200)
            let azure = try await api.post("/api/v1/platform/providers/azure-openai/activate", token: harness.adminToken)
            #expect(azure.status == 409 && azure.errorCode == "field_required" && azure.errorField == "extras.endpoint")

            #expect(try await api.post("/api/v1/platform/providers/anthropic/deactivate", token: harness.adminToken).status == 200)
            #expect(try await stats() == ["providers": total, "active": 0, "ready": 0, "no_key": total - 1])
        }
    }

    @Test("a saved default model that left the curated list is returned as custom")
    func customDefaultModel() async throws {
        try await APIHarness.run { harness, api in
            let saved = try await api.put("/api/v1/platform/providers/openai", token: harness.adminToken, json: ["default_model": "gpt-3.5-turbo"])
            #expect(saved.object("card")["default_model"] as? String == "gpt-3.5-turbo")
            #expect(saved.object("card")["default_model_custom"] as? Bool == true)
            let curated = try await api.put("/api/v1/platform/providers/openai", token: harness.adminToken, json: ["default_model": "gpt-5.5"])
            #expect(curated.object("card")["default_model_custom"] as? Bool == false)
        }
    }

    @Test("bad card input gets a clear error naming the field")
    func badInput() async throws {
        try await APIHarness.run { harness, api in
            let cases: [(String, Any?, String?, Int, String)] = [
                ("/api/v1/platform/providers/nope", ["default_model": "x"], nil, 404, "not_found"),
                ("/api/v1/platform/providers/openai", ["extras": ["orgid": "x"]], "extras.orgid", 400, "unknown_field"),
                ("/api/v1/platform/providers/openai", ["apikey": "sk-typo"], "apikey", 400, "unknown_field"),
                ("/api/v1/platform/providers/openai", ["api_key": 12345], "api_key", 400, "invalid_field"),
                ("/api/v1/platform/providers/openai", ["display_order": "first"], "display_order", 400, "invalid_field"),
                ("/api/v1/platform/providers/azure-openai", ["extras": ["endpoint": "not a url"]], "extras.endpoint", 400, "invalid_field"),
                ("/api/v1/platform/providers/anthropic", ["extras": ["default_max_tokens": "lots"]], "extras.default_max_tokens", 400, "invalid_field"),
                ("/api/v1/platform/providers/openai", ["api_key": "sk-two\nlines"], "api_key", 400, "invalid_field"),
            ]
            for (path, body, field, status, code) in cases {
                let reply = try await api.put(path, token: harness.adminToken, json: body ?? [:])
                #expect(reply.status == status, "\(path) \(String(describing: body)): \(reply.text)")
                #expect(reply.errorCode == code, "\(reply.text)")
                if let field { #expect(reply.errorField == field, "\(reply.text)") }
            }
            let malformed = try await api.call(.put, "/api/v1/platform/providers/openai", token: harness.adminToken, raw: "{\"api_key\": ")
            #expect(malformed.status == 400 && malformed.errorCode == "malformed_json")
            let array = try await api.call(.put, "/api/v1/platform/providers/openai", token: harness.adminToken, raw: "[1, 2]")
            #expect(array.status == 400 && array.errorCode == "malformed_json")
            let huge = try await api.call(.put, "/api/v1/platform/providers/openai", token: harness.adminToken,
                                          raw: "{\"default_model\": \"" + String(repeating: "x", count: 70_000) + "\"}")
            #expect(huge.status == 413 && huge.errorCode == "body_too_large")
            // Nothing above changed the card.
            let (key, extras) = try await storedPlatformKey(harness, "openai")
            #expect(key == nil && extras.isEmpty)
        }
    }
}
