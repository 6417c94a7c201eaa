import Foundation
import KeywardenCore
import KeywardenStore
import Testing

@Suite("Workspace keys")
struct WorkspaceKeyTests {
    func storedKey(_ harness: APIHarness, _ id: String) async throws -> (String?, [String: String]) {
        try await harness.store.engine.read { db in
            guard let credential = try await harness.store.credentials.get(id, on: db) else { return (nil, [:]) }
            return (
                try await harness.store.credentials.openKey(of: credential, on: db)?.unprotectedString,
                try await harness.store.credentials.openExtras(of: credential, on: db).mapValues(\.unprotectedString)
            )
        }
    }

    @Test("create, read, update with leave-blank-to-keep, delete, with the seeds' messages")
    func lifecycle() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Acme")
            let owner = try await api.addMember(ws, role: "owner")
            let created = try await api.post("/api/v1/workspaces/\(ws)/keys", token: owner, json: [
                "provider": "openai", "description": "Production", "api_key": "sk-proj-prod-abcdefghijklmn9a8b",
                "extras": ["organization_id": "org-prod"], "default_model": "gpt-5.4",
            ])
            #expect(created.status == 201)
            #expect(created.json["message"] as? String == "API key created successfully")
            let key = created.object("key")
            let id = try #require(key["id"] as? String)
            #expect(key["hint"] as? String == "sk-…9a8b" && key["has_key"] as? Bool == true)
            #expect(key["role"] as? String == "primary" && key["active"] as? Bool == true && key["category"] as? String == "llm")
            #expect(key["extras_set"] as? [String] == ["organization_id"])

            let path = "/api/v1/workspaces/\(ws)/keys/\(id)"
            let blank = try await api.patch(path, token: owner, json: ["api_key": "", "extras": ["organization_id": ""], "description": "Prod (EU)"])
            #expect(blank.status == 200 && blank.json["message"] as? String == "API key updated successfully")
            var (stored, extras) = try await storedKey(harness, id)
            #expect(stored == "sk-proj-prod-abcdefghijklmn9a8b" && extras == ["organization_id": "org-prod"])
            #expect(blank.object("key")["description"] as? String == "Prod (EU)")

            let replaced = try await api.patch(path, token: owner, json: ["api_key": "sk-proj-new-abcdefghijklmnop7777", "extras": ["project_id": "proj_x"]])
            #expect(replaced.object("key")["hint"] as? String == "sk-…7777")
            (stored, extras) = try await storedKey(harness, id)
            #expect(stored == "sk-proj-new-abcdefghijklmnop7777" && extras == ["organization_id": "org-prod", "project_id": "proj_x"])

            let read = try await api.get(path, token: owner)
            #expect(read.status == 200 && read.json["id"] as? String == id && read.json["default_model"] as? String == "gpt-5.4")
            let cleared = try await api.patch(path, token: owner, json: ["default_model": NSNull()])
            #expect(cleared.status == 200 && cleared.object("key")["default_model"] == nil)

            let deleted = try await api.delete(path, token: owner)
            #expect(deleted.status == 200 && deleted.json["message"] as? String == "API key deleted successfully")
            #expect(try await api.get(path, token: owner).status == 404)
            (stored, _) = try await storedKey(harness, id)
            #expect(stored == nil)
            let remaining = try await harness.store.engine.read { db in
                try await db.select().column("owner_id").from("vault_secrets").where("owner_id", .equal, id).all()
            }
            #expect(remaining.isEmpty)
        }
    }

    @Test("several keys per provider; a new primary demotes the old one to fallback")
    func primaryDemotion() async throws {
        try await APIHarness.run { _, api in
            let ws = try await api.createWorkspace("Acme")
            let first = try await api.createKey(ws, description: "one", key: "sk-one-abcdefghijklmnop")
            let second = try await api.createKey(ws, description: "two", key: "sk-two-abcdefghijklmnop")
            #expect(first["role"] as? String == "primary" && second["role"] as? String == "fallback")
            let third = try await api.createKey(ws, description: "three", key: "sk-three-abcdefghijklmno", role: "primary")
            #expect(third["role"] as? String == "primary")
            let list = try await api.get("/api/v1/workspaces/\(ws)/keys?provider=openai&per_page=10", token: api.harness.adminToken)
            let roles = Dictionary(uniqueKeysWithValues: list.items.map { ($0["description"] as! String, $0["role"] as! String) })
            #expect(roles == ["one": "fallback", "two": "fallback", "three": "primary"])
            // Promoting through PATCH demotes the current primary too.
            let promote = try await api.patch("/api/v1/workspaces/\(ws)/keys/\(second["id"] as! String)", token: api.harness.adminToken, json: ["role": "primary"])
            #expect(promote.status == 200)
            let after = try await api.get("/api/v1/workspaces/\(ws)/keys?per_page=10", token: api.harness.adminToken)
            #expect(after.items.filter { $0["role"] as? String == "primary" }.map { $0["description"] as? String } == ["two"])
        }
    }

    @Test("exclusive mode: activating another provider is refused naming the active one, or switches with ?switch=true")
    func exclusiveMode() async throws {
        try await APIHarness.run { _, api in
            let ws = try await api.createWorkspace("Solo", exclusive: true)
            let openai = try await api.createKey(ws, description: "OpenAI", key: "sk-openai-abcdefghijklm")
            let anthropic = try await api.createKey(ws, provider: "anthropic", description: "Claude", key: "sk-ant-abcdefghijklmno", active: false)
            let path = "/api/v1/workspaces/\(ws)/keys/\(anthropic["id"] as! String)"
            let refused = try await api.post(path + "/activate", token: api.harness.adminToken)
            #expect(refused.status == 409 && refused.errorCode == "exclusive_provider_active")
            #expect(refused.errorMessage?.contains("OpenAI") == true)
            let creating = try await api.post("/api/v1/workspaces/\(ws)/keys", token: api.harness.adminToken,
                                              json: ["provider": "mistral", "description": "m", "api_key": "mistral-abcdefghijklmnop"])
            #expect(creating.status == 409 && creating.errorCode == "exclusive_provider_active")

            let switched = try await api.post(path + "/activate?switch=true", token: api.harness.adminToken)
            #expect(switched.status == 200 && switched.object("key")["active"] as? Bool == true)
            let old = try await api.get("/api/v1/workspaces/\(ws)/keys/\(openai["id"] as! String)", token: api.harness.adminToken)
            #expect(old.json["active"] as? Bool == false)

            // Turning exclusive mode on with two active providers is refused.
            let open = try await api.createWorkspace("Open")
            _ = try await api.createKey(open, description: "a", key: "sk-a-abcdefghijklmnopq")
            _ = try await api.createKey(open, provider: "anthropic", description: "b", key: "sk-ant-b-abcdefghijklmn")
            let conflict = try await api.patch("/api/v1/workspaces/\(open)", token: api.harness.adminToken, json: ["exclusive": true])
            #expect(conflict.status == 409 && conflict.errorCode == "exclusive_conflict")
        }
    }

    @Test("exclusive mode: a switch away and back turns the provider's whole chain on as it was; a key a person turned off stays off")
    func exclusiveSwitchBackRestoresTheChain() async throws {
        try await APIHarness.run { _, api in
            let admin = api.harness.adminToken
            let ws = try await api.createWorkspace("Chain", exclusive: true)
            let primary = try #require(try await api.createKey(ws, description: "OpenAI main", key: "sk-openai-main-000000001")["id"] as? String)
            let fallback = try #require(try await api.createKey(ws, description: "OpenAI backup", key: "sk-openai-back-000000001", role: "fallback")["id"] as? String)
            let spare = try #require(try await api.createKey(ws, description: "OpenAI spare", key: "sk-openai-spare-00000001", role: "fallback")["id"] as? String)
            _ = try await api.post("/api/v1/workspaces/\(ws)/keys/\(spare)/deactivate", token: admin)
            func active(_ id: String) async throws -> Bool? {
                try await api.get("/api/v1/workspaces/\(ws)/keys/\(id)", token: admin).json["active"] as? Bool
            }
            // Switch to Anthropic: every active OpenAI key goes off.
            let claude = try await api.post("/api/v1/workspaces/\(ws)/keys?switch=true", token: admin,
                                            json: ["provider": "anthropic", "description": "Claude", "api_key": "sk-ant-chain-0000000001"])
            #expect(claude.status == 201)
            let claudeID = try #require(claude.object("key")["id"] as? String)
            let afterSwitch = [try await active(primary), try await active(fallback), try await active(spare)]
            #expect(afterSwitch == [false, false, false])
            // Switch back by turning on OpenAI's primary: its fallback comes back too; the spare a person turned off does not.
            let back = try await api.post("/api/v1/workspaces/\(ws)/keys/\(primary)/activate?switch=true", token: admin)
            #expect(back.status == 200)
            let afterBack = [try await active(primary), try await active(fallback)]
            #expect(afterBack == [true, true], "the chain as it was")
            #expect(try await active(spare) == false, "a key a person turned off stays off")
            #expect(try await active(claudeID) == false)
            // A key parked by a switch and then turned off by a person is not restored by the next switch back.
            _ = try await api.post("/api/v1/workspaces/\(ws)/keys/\(claudeID)/activate?switch=true", token: admin)
            _ = try await api.post("/api/v1/workspaces/\(ws)/keys/\(fallback)/deactivate", token: admin)
            _ = try await api.post("/api/v1/workspaces/\(ws)/keys/\(primary)/activate?switch=true", token: admin)
            let afterChoice = [try await active(primary), try await active(fallback)]
            #expect(afterChoice == [true, false])
            // Switched away, the other provider then turned off by hand: turning this one on brings its parked chain back
            // (nothing to switch from), and a parked key its vendor refused since stays off.
            _ = try await api.post("/api/v1/workspaces/\(ws)/keys/\(fallback)/activate", token: admin)
            _ = try await api.post("/api/v1/workspaces/\(ws)/keys/\(claudeID)/activate?switch=true", token: admin)
            _ = try await api.post("/api/v1/workspaces/\(ws)/keys/\(claudeID)/deactivate", token: admin)
            let reback = try await api.post("/api/v1/workspaces/\(ws)/keys/\(primary)/activate", token: admin)
            #expect(reback.status == 200)
            let afterHand = [try await active(primary), try await active(fallback)]
            #expect(afterHand == [true, true])
        }
    }

    @Test("exclusive mode on the keys page: a new key of another provider asks to switch or save inactive, and does what was chosen")
    func exclusiveChoiceOnTheKeysPage() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Page solo", exclusive: true)
            let openai = try #require(try await api.createKey(ws, description: "OpenAI main", key: "sk-openai-page-000000001")["id"] as? String)
            let admin = try await AdminPageTests.signIn(api, token: harness.adminToken)
            let form = try await admin.get("/workspaces/\(ws)/keys?new=anthropic")
            #expect(form.body.contains("One provider at a time") && form.body.contains(#"value="switch" required"#) && form.body.contains("OpenAI is serving now"))
            #expect(try await admin.get("/workspaces/\(ws)/keys?new=openai").body.contains("One provider at a time") == false, "no choice for the active provider")
            let inactive = try await admin.post("/workspaces/\(ws)/keys", ["provider": "anthropic", "description": "Claude later", "api_key": "sk-ant-page-00000000001",
                                                                           "exclusive": "inactive"])
            #expect(inactive.status == 303)
            let keys = try await api.get("/api/v1/workspaces/\(ws)/keys", token: harness.adminToken).json["items"] as? [[String: Any]] ?? []
            #expect(keys.first { $0["description"] as? String == "Claude later" }?["active"] as? Bool == false)
            let switched = try await admin.post("/workspaces/\(ws)/keys", ["provider": "mistral", "description": "Mistral now", "api_key": "mistral-page-000000000001",
                                                                           "exclusive": "switch"])
            #expect(switched.status == 303)
            #expect(try await api.get("/api/v1/workspaces/\(ws)/keys/\(openai)", token: harness.adminToken).json["active"] as? Bool == false)
        }
    }

    @Test("search, category and provider filters, sorting, and pagination edges")
    func listing() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Acme")
            let specs: [(String, String)] = [
                ("openai", "Zeta chat"), ("anthropic", "alpha writer"), ("elevenlabs", "Voice of Acme"),
                ("stability", "Images"), ("mistral", "beta 100%_off"), ("openai", "gamma CHAT"),
            ]
            for (index, (provider, description)) in specs.enumerated() {
                var body: [String: Any] = ["provider": provider, "description": description, "api_key": "key-\(index)-abcdefghijklmnop"]
                if provider == "elevenlabs" { body["extras"] = ["default_voice_id": "v1"] }
                let reply = try await api.post("/api/v1/workspaces/\(ws)/keys", token: harness.adminToken, json: body)
                #expect(reply.status == 201, "\(reply.text)")
            }
            let base = "/api/v1/workspaces/\(ws)/keys"
            func descriptions(_ query: String) async throws -> [String] {
                let reply = try await api.get(base + query, token: harness.adminToken)
                #expect(reply.status == 200, "\(query): \(reply.text)")
                return reply.items.compactMap { $0["description"] as? String }
            }
            #expect(try await descriptions("?search=chat&sort=description") == ["gamma CHAT", "Zeta chat"])
            #expect(try await descriptions("?search=100%25_") == ["beta 100%_off"])
            #expect(try await descriptions("?search=_") == ["beta 100%_off"])
            #expect(try await descriptions("?category=voice") == ["Voice of Acme"])
            #expect(try await descriptions("?category=image") == ["Images"])
            #expect(try await descriptions("?category=all&per_page=100").count == 6)
            #expect(try await descriptions("?provider=openai&sort=description&order=desc") == ["Zeta chat", "gamma CHAT"])
            #expect(try await descriptions("?sort=description") == ["alpha writer", "beta 100%_off", "gamma CHAT", "Images", "Voice of Acme", "Zeta chat"])
            #expect(try await descriptions("?sort=provider&per_page=2") == ["alpha writer", "Voice of Acme"])

            let page2 = try await api.get(base + "?sort=description&per_page=4&page=2", token: harness.adminToken)
            #expect(page2.items.count == 2 && page2.json["total"] as? Int == 6 && page2.json["page"] as? Int == 2 && page2.json["per_page"] as? Int == 4)
            let past = try await api.get(base + "?page=99", token: harness.adminToken)
            #expect(past.status == 200 && past.items.isEmpty && past.json["total"] as? Int == 6)
            for query in ["?per_page=0", "?per_page=10000", "?page=0", "?page=abc", "?per_page=-5"] {
                let reply = try await api.get(base + query, token: harness.adminToken)
                #expect(reply.status == 400 && reply.errorCode == "invalid_pagination", "\(query): \(reply.text)")
            }
            for query in ["?sort=secret", "?order=sideways", "?category=robots", "?provider=nope"] {
                #expect(try await api.get(base + query, token: harness.adminToken).status == 400, "\(query)")
            }
        }
    }

    @Test("bad key input gets a clear error naming the field, and nothing is stored")
    func validation() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Acme")
            let path = "/api/v1/workspaces/\(ws)/keys"
            let cases: [([String: Any], Int, String, String?)] = [
                (["provider": "openai", "api_key": "sk-abcdefghijklmnop"], 400, "missing_field", "description"),
                (["provider": "openai", "description": "  ", "api_key": "sk-abcdefghijklmnop"], 400, "missing_field", "description"),
                (["provider": "openai", "description": "x"], 400, "missing_field", "api_key"),
                (["provider": "nope", "description": "x", "api_key": "sk-abcdefghijklmnop"], 400, "unknown_provider", "provider"),
                (["description": "x", "api_key": "sk-abcdefghijklmnop"], 400, "missing_field", "provider"),
                (["provider": "openai", "description": 5, "api_key": "sk-abcdefghijklmnop"], 400, "invalid_field", "description"),
                (["provider": "openai", "description": "x", "api_key": "sk-abcdefghijklmnop", "role": "boss"], 400, "invalid_field", "role"),
                (["provider": "openai", "description": "x", "api_key": "sk-abcdefghijklmnop", "weight": 0], 400, "invalid_field", "weight"),
                (["provider": "openai", "description": "x", "api_key": "sk-abcdefghijklmnop", "extras": ["region": "eu"]], 400, "unknown_field", "extras.region"),
                (["provider": "openai", "description": "x", "api_key": "sk-abcdefghijklmnop", "secret": "y"], 400, "unknown_field", "secret"),
                (["provider": "azure-openai", "description": "x", "api_key": "abcdefghijklmnopqrstuvwxyz"], 409, "field_required", "extras.endpoint"),
            ]
            for (body, status, code, field) in cases {
                let reply = try await api.post(path, token: harness.adminToken, json: body)
                #expect(reply.status == status && reply.errorCode == code, "\(body): \(reply.text)")
                #expect(reply.errorField == field, "\(body): \(reply.text)")
            }
            #expect(try await api.get(path, token: harness.adminToken).json["total"] as? Int == 0)

            // The same key twice is refused; a plan without BYOK refuses keys.
            _ = try await api.createKey(ws, description: "first", key: "sk-dup-abcdefghijklmnop")
            let duplicate = try await api.post(path, token: harness.adminToken, json: ["provider": "openai", "description": "again", "api_key": "sk-dup-abcdefghijklmnop"])
            #expect(duplicate.status == 409 && duplicate.errorCode == "duplicate_key" && duplicate.errorMessage?.contains("first") == true)
            let noByok = try await api.createWorkspace("Free plan", byok: false)
            let refused = try await api.post("/api/v1/workspaces/\(noByok)/keys", token: harness.adminToken, json: ["provider": "openai", "description": "x", "api_key": "sk-free-abcdefghijklmn"])
            #expect(refused.status == 409 && refused.errorCode == "byok_not_allowed")
        }
    }
}
