import Foundation
import KeywardenCore
import Testing

@Suite("Resolve and bindings")
struct ResolutionRouteTests {
    func candidates(_ reply: Reply) -> [String] {
        (reply.json["candidates"] as? [[String: Any]])?.compactMap { $0["reason"] as? String } ?? []
    }

    @Test("resolve explains the chain without secrets; a card deactivated takes effect on the next request")
    func chain() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Acme")
            let service = try await api.serviceToken(ws, permissions: ["gateway.use"])
            _ = try await api.createKey(ws, description: "own", key: "sk-own-abcdefghijklmn")
            _ = try await api.createKey(ws, description: "spare", key: "sk-spare-abcdefghijkl")
            #expect(try await api.put("/api/v1/platform/providers/openai", token: harness.adminToken, json: ["api_key": "sk-platform-abcdefghijk"]).status == 200)
            #expect(try await api.post("/api/v1/platform/providers/openai/activate", token: harness.adminToken).status == 200)

            var reply = try await api.post("/api/v1/resolve", token: service, json: ["provider": "openai"])
            #expect(reply.status == 200 && candidates(reply) == ["primary", "fallback", "platform"])
            #expect(!reply.text.contains("sk-own-abcdefghijklmn") && !reply.text.contains("sk-platform") && reply.json["secret"] == nil)
            #expect(reply.headers["cache-control"] == "no-store")

            #expect(try await api.post("/api/v1/platform/providers/openai/deactivate", token: harness.adminToken).status == 200)
            reply = try await api.post("/api/v1/resolve", token: service, json: ["provider": "openai"])
            #expect(candidates(reply) == ["primary", "fallback"])

            // By model; unknown provider; nothing available.
            reply = try await api.post("/api/v1/resolve", token: service, json: ["model": "gpt-5.4-mini"])
            #expect(reply.json["provider"] as? String == "openai")
            let none = try await api.post("/api/v1/resolve", token: service, json: ["provider": "anthropic"])
            #expect(none.status == 422 && none.errorCode == "no_key_available" && none.errorMessage?.contains("anthropic") == true)
        }
    }

    @Test("reveal returns the first key only to a service token with keys.reveal, and is audited")
    func reveal() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Acme")
            _ = try await api.createKey(ws, description: "own", key: "sk-reveal-abcdefghijk")
            let plain = try await api.serviceToken(ws, permissions: ["gateway.use"])
            let revealer = try await api.serviceToken(ws, permissions: ["gateway.use", "keys.reveal"])
            #expect(try await api.post("/api/v1/resolve", token: plain, json: ["provider": "openai", "reveal": true]).status == 403)
            #expect(try await api.post("/api/v1/resolve", token: harness.adminToken, json: ["workspace": ws, "provider": "openai", "reveal": true]).status == 403)
            let revealed = try await api.post("/api/v1/resolve", token: revealer, json: ["provider": "openai", "reveal": true])
            #expect(revealed.status == 200 && revealed.json["secret"] as? String == "sk-reveal-abcdefghijk")
            let audit = try await api.get("/api/v1/audit?action=key.revealed", token: harness.adminToken)
            #expect(audit.items.count == 1 && !audit.text.contains("sk-reveal"))
            // Another workspace's token cannot resolve this one.
            let other = try await api.createWorkspace("Other")
            let stranger = try await api.serviceToken(other, permissions: ["gateway.use", "keys.reveal"])
            #expect(try await api.post("/api/v1/resolve", token: stranger, json: ["workspace": ws, "provider": "openai"]).status == 404)
        }
    }

    @Test("a binding puts its key first for that consumer and modality; provider_main and removal restore the chain")
    func bindings() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Acme")
            let service = try await api.serviceToken(ws, permissions: ["gateway.use"])
            _ = try await api.createKey(ws, description: "main", key: "sk-main-abcdefghijkl")
            let tts = try await api.createKey(ws, description: "voice", key: "sk-voice-abcdefghijk")
            let path = "/api/v1/workspaces/\(ws)/bindings"
            let saved = try await api.call(.put, path, token: harness.adminToken, json: ["consumer": "assistant-1", "modality": "tts", "key_id": tts["id"] as! String])
            #expect(saved.status == 200)
            let first = { (modality: String) async throws -> String? in
                let reply = try await api.post("/api/v1/resolve", token: service, json: ["provider": "openai", "consumer": "assistant-1", "modality": modality])
                return (reply.json["candidates"] as? [[String: Any]])?.first?["description"] as? String
            }
            #expect(try await first("tts") == "voice")
            #expect(try await first("chat") == "main")
            #expect(try await api.get(path, token: harness.adminToken).items.count == 1)
            #expect(try await api.call(.put, path, token: harness.adminToken, json: ["consumer": "assistant-1", "modality": "tts", "target": "provider_main"]).status == 200)
            #expect(try await first("tts") == "main")
            #expect(try await api.call(.delete, path + "?consumer=assistant-1&modality=tts", token: harness.adminToken).status == 200)
            #expect(try await api.call(.delete, path + "?consumer=assistant-1&modality=tts", token: harness.adminToken).status == 404)
            let foreign = try await api.call(.put, path, token: harness.adminToken, json: ["consumer": "x", "key_id": "key_nope"])
            #expect(foreign.status == 404 && foreign.errorField == "key_id")
        }
    }
}
