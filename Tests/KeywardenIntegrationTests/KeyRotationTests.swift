import Foundation
import KeywardenTestSupport
import Testing

/// The guided rotation of a vendor key under its stable id, through the real binary and the mock vendors.
@Suite("Key rotation", .serialized)
struct KeyRotationTests {
    /// The `Authorization` header of the mock's requests to `path`, oldest first.
    func keysSent(_ rig: GatewayRig, path: String = "/v1/chat/completions") async throws -> [String] {
        try await rig.mocks.requests("openai").filter { $0["path"] as? String == path }
            .compactMap { ($0["headers"] as? [String: String])?["authorization"] }
    }

    @Test("stage → test → promote → the old secret is the fallback → finish: a bound consumer keeps its key id throughout")
    func guidedRotationKeepsTheBinding() async throws {
        let rig = try await GatewayRig()
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Rotating Co")
        let token = try await rig.serviceToken(ws)
        let key = try #require(try await rig.send("POST", "/api/v1/workspaces/\(ws)/keys", [
            "provider": "openai", "description": "Main key", "api_key": "sk-rot-old-works-0001",
        ], expect: 201).json["key"].flatMap { ($0 as? [String: Any])?["id"] as? String })
        try await rig.send("PUT", "/api/v1/workspaces/\(ws)/bindings", ["consumer": "assistant-1", "modality": "chat", "key_id": key], expect: 200)
        let bound = ["X-Keywarden-Consumer": "assistant-1"]
        let base = "/api/v1/workspaces/\(ws)/keys/\(key)"

        // 1. Stage the new secret: the old one keeps serving, and the answer never shows either secret.
        let staged = try await rig.send("POST", "\(base)/rotation", ["api_key": "sk-rot-new-works-0002"], expect: 201)
        #expect(!staged.text.contains("sk-rot-new-works-0002") && !staged.text.contains("sk-rot-old-works-0001"))
        let lifecycle = try #require((staged.json["key"] as? [String: Any])?["lifecycle"] as? [String: Any])
        #expect((lifecycle["staged"] as? [String: Any])?["status"] as? String == "unverified")
        try await rig.mocks.clear()
        #expect(try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat, headers: bound).status == 200)
        #expect(try await keysSent(rig) == ["Bearer sk-rot-old-works-0001"])

        // 2. Promotion waits for a passing test (or force).
        let early = try await rig.send("POST", "\(base)/rotation/promote", expect: 409)
        #expect(early.json["error"].flatMap { ($0 as? [String: Any])?["code"] as? String } == "staged_key_not_verified")
        let tested = try await rig.send("POST", "\(base)/rotation/test", expect: 200)
        #expect((tested.json["verification"] as? [String: Any])?["status"] as? String == "valid", "\(tested.text)")
        #expect((tested.json["key"] as? [String: Any])?["status"] as? String != "invalid")

        // 3. Promote: same key id, new secret serves; the binding is untouched.
        let promoted = try await rig.send("POST", "\(base)/rotation/promote", ["grace_hours": 2], expect: 200)
        let promotedKey = try #require(promoted.json["key"] as? [String: Any])
        #expect(promotedKey["id"] as? String == key && promotedKey["status"] as? String == "valid")
        #expect(((promotedKey["lifecycle"] as? [String: Any])?["previous"] as? [String: Any])?["hint"] != nil)
        try await rig.mocks.clear()
        let afterPromotion = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat, headers: bound)
        #expect(afterPromotion.status == 200 && afterPromotion.headers["x-keywarden-key"] == key && afterPromotion.headers["x-keywarden-attempts"] == "1")
        #expect(try await keysSent(rig) == ["Bearer sk-rot-new-works-0002"])
        let binding = try await rig.send("GET", "/api/v1/workspaces/\(ws)/bindings", expect: 200)
        #expect(binding.text.contains(key))

        // 4. The new secret refused by the vendor (here: made to 401): the old secret answers in the same call, under the same key id.
        try await rig.send("POST", "\(base)/rotation", ["api_key": "sk-rot-next-revoked-0003"], expect: 201)
        try await rig.send("POST", "\(base)/rotation/promote", ["force": true, "grace_hours": 1], expect: 200)
        try await rig.mocks.clear()
        let viaPrevious = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat, headers: bound)
        #expect(viaPrevious.status == 200, "\(viaPrevious.text)")
        #expect(viaPrevious.headers["x-keywarden-key"] == key && viaPrevious.headers["x-keywarden-attempts"] == "2")
        #expect(try await keysSent(rig) == ["Bearer sk-rot-next-revoked-0003", "Bearer sk-rot-new-works-0002"])
        // The refused new secret is recorded invalid, yet the key keeps serving through its old secret during the grace period.
        try await rig.eventually("the refused new secret is marked invalid") {
            (try await rig.send("GET", base).json["status"] as? String) == "invalid"
        }
        try await rig.mocks.clear()
        let stillServing = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat, headers: bound)
        #expect(stillServing.status == 200 && stillServing.headers["x-keywarden-key"] == key)
        #expect(try await keysSent(rig) == ["Bearer sk-rot-new-works-0002"], "only the old secret is tried while the new one is known bad")

        // 5. Finish: the old secret is gone; the key has only its (bad) new secret, so the call is refused clearly.
        try await rig.send("POST", "\(base)/rotation/finish", expect: 200)
        try await rig.send("POST", "\(base)/rotation/finish", expect: 409)
        let afterFinish = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat, headers: bound)
        #expect(afterFinish.status != 200)

        // Every step is audited with fingerprints, never a secret.
        let audit = try await rig.send("GET", "/api/v1/audit?workspace=\(ws)&per_page=100", expect: 200)
        for action in ["key.rotation_staged", "key.rotation_tested", "key.rotation_promoted", "key.rotation_finished"] {
            #expect(audit.text.contains(action), "audited: \(action)")
        }
        for secret in ["sk-rot-old-works-0001", "sk-rot-new-works-0002", "sk-rot-next-revoked-0003"] {
            #expect(!audit.text.contains(secret))
        }
    }

    @Test("rotation is refused clearly: no staged key, the same key, a foreign workspace's key, bad grace hours, unknown fields")
    func rotationRefusals() async throws {
        let rig = try await GatewayRig()
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Refusals")
        let other = try await rig.workspace("Other")
        let key = try await rig.key(ws, secret: "sk-rot-refuse-0001")
        let base = "/api/v1/workspaces/\(ws)/keys/\(key)"
        func code(_ reply: TestHTTP.Reply) -> String? { (reply.json["error"] as? [String: Any])?["code"] as? String }

        #expect(code(try await rig.send("POST", "\(base)/rotation/promote", expect: 409)) == "nothing_staged")
        #expect(code(try await rig.send("DELETE", "\(base)/rotation", expect: 409)) == "nothing_staged")
        #expect(code(try await rig.send("POST", "\(base)/rotation", ["api_key": "sk-rot-refuse-0001"], expect: 409)) == "same_key")
        #expect(code(try await rig.send("POST", "\(base)/rotation", ["api_key": "  "], expect: 400)) != nil)
        #expect(code(try await rig.send("POST", "\(base)/rotation", ["api_key": "sk-x", "role": "primary"], expect: 400)) == "unknown_field")
        // Another workspace's owner cannot reach the key (404, not 403).
        let foreign = try await rig.serviceToken(other, permissions: ["keys.update", "keys.read"])
        try await rig.send("POST", "/api/v1/workspaces/\(other)/keys/\(key)/rotation", ["api_key": "sk-rot-foreign-0002"], token: foreign, expect: 404)
        try await rig.send("POST", "\(base)/rotation", ["api_key": "sk-rot-foreign-0002"], token: foreign, expect: 404)

        try await rig.send("POST", "\(base)/rotation", ["api_key": "sk-rot-refuse-next-0003"], expect: 201)
        for hours in [-1, 87_601, Int.max] as [Int] {
            #expect(code(try await rig.send("POST", "\(base)/rotation/promote", ["grace_hours": hours, "force": true], expect: 400)) == "invalid_field")
        }
        #expect(code(try await rig.send("POST", "\(base)/rotation/promote", ["grace_hours": "24"], expect: 400)) != nil)
        let cancelled = try await rig.send("DELETE", "\(base)/rotation", expect: 200)
        #expect((cancelled.json["key"] as? [String: Any]).flatMap { ($0["lifecycle"] as? [String: Any])?["staged"] } == nil)

        // Expiry and rotate-by age: set, read back, cleared; bad values refused.
        let set = try await rig.send("PATCH", base, ["expires_at": "2027-01-15", "rotate_by_days": 90], expect: 200)
        let lifecycle = try #require((set.json["key"] as? [String: Any])?["lifecycle"] as? [String: Any])
        #expect((lifecycle["expires_at"] as? String)?.hasPrefix("2027-01-15") == true && lifecycle["rotate_by_days"] as? Int == 90)
        for bad: [String: Any] in [["expires_at": "2027-02-30"], ["expires_at": "1999-12-31"], ["expires_at": "9999-01-01"], ["rotate_by_days": 0],
                                   ["rotate_by_days": 3651], ["rotate_by_days": Int.max], ["expires_at": 5]] {
            try await rig.send("PATCH", base, bad, expect: 400)
        }
        let cleared = try await rig.send("PATCH", base, ["expires_at": NSNull(), "rotate_by_days": NSNull()], expect: 200)
        let clearedLifecycle = (cleared.json["key"] as? [String: Any])?["lifecycle"] as? [String: Any]
        #expect(clearedLifecycle?["expires_at"] == nil && clearedLifecycle?["rotate_by_days"] == nil)
    }

    @Test("the platform's card key rotates under the same routes, by a platform admin only")
    func platformCardRotation() async throws {
        let rig = try await GatewayRig()
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Tenant")
        let token = try await rig.serviceToken(ws)
        let keyless = try await rig.send("PUT", "/api/v1/platform/providers/openai", ["rotate_by_days": 30], expect: 409)
        #expect((keyless.json["error"] as? [String: Any])?["code"] as? String == "key_required", "a lifecycle needs a key to belong to")
        try await rig.send("POST", "/api/v1/platform/providers/openai/rotation", ["api_key": "sk-platform-rot-new-0002"], expect: 409)
        try await rig.platformCard("openai", secret: "sk-platform-rot-old-0001")
        let owner = try await rig.serviceToken(ws, permissions: ["keys.update", "keys.read", "keys.test"])
        try await rig.send("POST", "/api/v1/platform/providers/openai/rotation", ["api_key": "sk-platform-rot-new-0002"], token: owner, expect: 403)
        try await rig.send("POST", "/api/v1/platform/providers/openai/rotation", ["api_key": "sk-platform-rot-new-0002"], expect: 201)
        try await rig.send("POST", "/api/v1/platform/providers/openai/rotation/test", expect: 200)
        let promoted = try await rig.send("POST", "/api/v1/platform/providers/openai/rotation/promote", expect: 200)
        #expect(promoted.json["card"] != nil)
        try await rig.mocks.clear()
        #expect(try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat).status == 200)
        #expect(try await keysSent(rig) == ["Bearer sk-platform-rot-new-0002"])
        #expect(!promoted.text.contains("sk-platform-rot"))
    }
}

extension GatewayRig {
    /// An API call whose whole reply the test reads (status, text, JSON).
    @discardableResult
    func send(_ method: String, _ path: String, _ body: [String: Any]? = nil, token: String? = nil, expect: Int? = nil,
              sourceLocation: SourceLocation = #_sourceLocation) async throws -> TestHTTP.Reply {
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        let reply = try await TestHTTP.send(method, base + path, body: data, headers: ["Authorization": "Bearer \(token ?? adminToken)", "Content-Type": "application/json"])
        if let expect { #expect(reply.status == expect, "\(method) \(path): \(reply.status) \(reply.text)", sourceLocation: sourceLocation) }
        return reply
    }
}
