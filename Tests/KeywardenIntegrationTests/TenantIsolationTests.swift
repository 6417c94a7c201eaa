import Foundation
import KeywardenTestSupport
import Testing

/// A tenant cannot change the platform's shared state for other tenants, use the platform's vendor account for
/// more than inference, or learn more about the platform's keys than who paid.
@Suite("Tenant isolation of shared keys against the real binary", .serialized)
struct TenantIsolationTests {
    @Test("tenant A's 401 on a request it shaped does not take the platform key from tenant B, and only the probe judges the key")
    func refusalStaysWithTheTenant() async throws {
        let rig = try await GatewayRig(vendors: ["openai"])
        defer { Task { await rig.stop() } }
        try await rig.platformCard("openai", secret: "sk-platform-shared-isolation-0001")
        let a = try await rig.workspace("Tenant A")
        let b = try await rig.workspace("Tenant B")
        let tokenA = try await rig.serviceToken(a)
        let tokenB = try await rig.serviceToken(b)

        // A's own header choosing the account's organization never travels with the platform's key.
        try await rig.mocks.clear()
        let header = try await rig.call("/openai/v1/chat/completions", token: tokenA, json: GatewayRig.chat,
                                        headers: ["OpenAI-Organization": "org-evil", "X-HTTP-Method-Override": "DELETE", "anthropic-beta": "files-api"])
        #expect(header.status == 200, "\(header.status) \(header.text)")
        let sent = try await rig.mocks.requests("openai").last?["headers"] as? [String: String] ?? [:]
        #expect(sent["openai-organization"] == nil && sent["x-http-method-override"] == nil && sent["anthropic-beta"] == nil, "\(sent)")

        // A asks for a model the account may not sample from: the vendor says 403 to a request A shaped.
        var forbidden = GatewayRig.chat
        forbidden["model"] = "forbidden-model-x"
        let refused = try await rig.call("/openai/v1/chat/completions", token: tokenA, json: forbidden)
        #expect(refused.status == 403, "\(refused.status) \(refused.text)")
        #expect(refused.headers["x-keywarden-source"] == "platform" && refused.headers["x-keywarden-key"] == nil, "a tenant learns who paid, not which key")

        // B is served by the same platform key at once; the card is not marked invalid.
        for _ in 0..<3 {
            let served = try await rig.call("/openai/v1/chat/completions", token: tokenB, json: GatewayRig.chat)
            #expect(served.status == 200, "\(served.status) \(served.text)")
        }
        // A 403 that names the model refuses the request, not the key: nothing is recorded on the card, and A itself is
        // served at once with a model the account may use (straight to the vendor, the next call works too).
        func cardStatus() async throws -> String? {
            let cards = try await rig.api("GET", "/api/v1/platform/providers")
            let card = (cards["providers"] as? [[String: Any]])?.first { $0["provider"] as? String == "openai" }
            return (card?["key"] as? [String: Any])?["status"] as? String
        }
        let status = try await cardStatus()
        #expect(status != "no_permission" && status != "invalid", "\(status ?? "nil")")
        let again = try await rig.call("/openai/v1/chat/completions", token: tokenA, json: GatewayRig.chat)
        #expect(again.status == 200, "\(again.status) \(again.text)")
        let stillB = try await rig.call("/openai/v1/chat/completions", token: tokenB, json: GatewayRig.chat)
        #expect(stillB.status == 200)
    }

    @Test("one tenant's 429 on the platform key rests it for that tenant only; a second tenant's 429 makes the rest shared")
    func rateLimitIsSharedOnceConfirmed() async throws {
        let rig = try await GatewayRig(vendors: ["openai"])
        defer { Task { await rig.stop() } }
        try await rig.platformCard("openai", secret: "sk-platform-shared-ratelimit-0001")
        let tokens = try await [rig.workspace("A"), rig.workspace("B"), rig.workspace("C")].asyncMap { try await rig.serviceToken($0) }
        var tiny = GatewayRig.chat
        tiny["model"] = "tiny-limit-model"
        let first = try await rig.call("/openai/v1/chat/completions", token: tokens[0], json: tiny)
        #expect(first.status == 429)
        // A rests; B is still served.
        let again = try await rig.call("/openai/v1/chat/completions", token: tokens[0], json: GatewayRig.chat)
        #expect(again.status == 429 && again.json.errorCode == "keys_cooling_down", "\(again.status) \(again.text)")
        #expect(try await rig.call("/openai/v1/chat/completions", token: tokens[1], json: GatewayRig.chat).status == 200)
        // B meets a 429 too: the limit is the account's, and C rests without calling the vendor.
        #expect(try await rig.call("/openai/v1/chat/completions", token: tokens[1], json: tiny).status == 429)
        try await rig.mocks.clear()
        let shared = try await rig.call("/openai/v1/chat/completions", token: tokens[2], json: GatewayRig.chat)
        #expect(shared.status == 429 && Int(shared.headers["retry-after"] ?? "") != nil, "\(shared.status) \(shared.text)")
        #expect(try await rig.mocks.requests("openai").isEmpty)
    }

    @Test("the platform's key serves inference endpoints only; a workspace's own key serves any path")
    func sharedKeyEndpoints() async throws {
        let rig = try await GatewayRig(vendors: ["openai"])
        defer { Task { await rig.stop() } }
        try await rig.platformCard("openai", secret: "sk-platform-endpoints-0001")
        let tenant = try await rig.workspace("Tenant")
        let token = try await rig.serviceToken(tenant)
        try await rig.mocks.clear()
        for (method, path) in [("GET", "/openai/v1/files"), ("POST", "/openai/v1/batches"), ("POST", "/openai/v1/fine_tuning/jobs"),
                               ("GET", "/openai/v1/organization/users"), ("DELETE", "/openai/v1/models/ft:gpt-4o:acme"),
                               ("POST", "/openai/v1/chat/completions/../../files"), ("POST", "/openai/v1/chat/completions%2F..%2F..%2Ffiles"),
                               ("POST", "/openai//v1/files"), ("GET", "/openai/v1/models/../files"),
                               // Listings of the account's models and voices name other tenants' fine-tunes and clones.
                               ("GET", "/openai/v1/models"), ("GET", "/openai/v1/models/ft:gpt-4o:acme")] {
            let reply = try await rig.call(path, token: token, json: method == "GET" || method == "DELETE" ? nil : ["x": 1], method: method)
            #expect(reply.status == 403 && reply.json.errorCode == "endpoint_not_allowed", "\(method) \(path): \(reply.status) \(reply.text)")
        }
        #expect(try await rig.mocks.requests("openai").isEmpty, "a refused endpoint never reaches the vendor")
        let chat = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(chat.status == 200)
        // With its own key, the workspace's calls are its own business.
        _ = try await rig.key(tenant, secret: "sk-own-endpoints-0002")
        let files = try await rig.call("/openai/v1/files", token: token, method: "GET")
        #expect(files.status != 403 && files.headers["x-keywarden-source"] == "byok", "\(files.status) \(files.text)")
    }

    @Test("reveal of a workspace without its own key reveals nothing; /resolve hides the platform key's id; a workspace's test event reaches no platform hook")
    func revealAndHooks() async throws {
        let rig = try await GatewayRig(vendors: ["openai", "receiver"])
        defer { Task { await rig.stop() } }
        try await rig.platformCard("openai", secret: "sk-platform-reveal-0001")
        let tenant = try await rig.workspace("Tenant")
        let revealer = try await rig.serviceToken(tenant, permissions: ["gateway.use", "keys.reveal"])
        let reply = try await rig.call("/api/v1/resolve", token: revealer, json: ["provider": "openai", "reveal": true])
        #expect(reply.status == 404 && reply.json.errorCode == "no_own_key", "\(reply.status) \(reply.text)")
        #expect(!reply.text.contains("sk-platform-reveal"))
        let plain = try await rig.call("/api/v1/resolve", token: revealer, json: ["provider": "openai"])
        let candidate = (plain.json["candidates"] as? [[String: Any]])?.first
        #expect(candidate?["source"] as? String == "platform" && candidate?["key_id"] == nil && candidate?["hint"] == nil, "\(plain.text)")

        // Hooks: the platform's and the tenant's, on one receiver; the tenant's test event reaches only its own.
        let receiver = try #require(rig.mocks.urls["receiver"])
        try await rig.api("POST", "/api/v1/platform/webhooks", ["url": receiver + "/platform-hook"], expect: 201)
        try await rig.api("POST", "/api/v1/workspaces/\(tenant)/webhooks", ["url": receiver + "/tenant-hook"], expect: 201)
        try await rig.mocks.clear()
        try await rig.api("POST", "/api/v1/workspaces/\(tenant)/webhooks/test", expect: 202)
        try await rig.eventually("the tenant's hook got the test event") {
            try await rig.mocks.requests("receiver").contains { $0["path"] as? String == "/tenant-hook" }
        }
        try await Task.sleep(for: .milliseconds(1500))
        #expect(try await !rig.mocks.requests("receiver").contains { $0["path"] as? String == "/platform-hook" })
        // Noisy: the sixth test event within a minute is refused with Retry-After.
        var last = 0
        for _ in 0..<5 {
            let sent = try await TestHTTP.send("POST", rig.base + "/api/v1/workspaces/\(tenant)/webhooks/test", headers: ["Authorization": "Bearer \(rig.adminToken)"])
            last = sent.status
            if sent.status == 429 { #expect(Int(sent.headers["retry-after"] ?? "") != nil) }
        }
        #expect(last == 429)
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
