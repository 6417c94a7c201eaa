import Foundation
import Testing
@testable import KeywardenGateway

@Suite("Cooldowns")
struct CooldownsTests {
    @Test("a rest lasts its duration, a shorter one does not cut a longer one, and refusals are told from rate limits")
    func rests() {
        let cooldowns = Cooldowns()
        let start = ContinuousClock.now
        cooldowns.rest("limited", for: .seconds(7), rateLimited: true, now: start)
        cooldowns.rest("limited", for: .seconds(1), rateLimited: true, now: start)
        cooldowns.rest("refused", for: .seconds(60), rateLimited: false, now: start)
        #expect(cooldowns.resting(now: start + .seconds(6)) == ["limited", "refused"])
        #expect(cooldowns.resting(refusedOnly: true, now: start + .seconds(6)) == ["refused"])
        #expect(cooldowns.shortestRateLimit(among: ["limited", "refused"], now: start + .seconds(6)) == .seconds(1))
        #expect(cooldowns.resting(now: start + .seconds(8)) == ["refused"])
        #expect(cooldowns.shortestRateLimit(among: ["limited"], now: start + .seconds(8)) == nil)
    }

    @Test("fallback.engaged is raised once per move away from the workspace's keys, and re-armed when they serve again")
    func fallbackTransitions() {
        let tracker = FallbackTracker()
        #expect(tracker.engage(workspaceID: "ws", providerID: "openai"))
        #expect(!tracker.engage(workspaceID: "ws", providerID: "openai"))
        #expect(tracker.engage(workspaceID: "ws", providerID: "anthropic"))
        tracker.release(workspaceID: "ws", providerID: "openai")
        #expect(tracker.engage(workspaceID: "ws", providerID: "openai"))
    }

    @Test("failover statuses: refusals, rate limits and server errors move on; the caller's own mistakes do not")
    func failoverStatuses() {
        #expect([401, 403, 429, 500, 502, 503, 529].allSatisfy(Gateway.triggersFailover))
        #expect(![200, 400, 404, 408, 413, 422].contains(where: Gateway.triggersFailover))
    }

    @Test("the model of an OpenAI-shaped body is replaced, the rest kept; a body that is not JSON is left alone")
    func modelRewrite() throws {
        let body = Array(#"{"model":"anthropic/claude-sonnet-4-6","messages":[{"role":"user","content":"a/b"}],"stream":true}"#.utf8)
        let rewritten = try #require(Gateway.replacingModel(in: body, with: "claude-sonnet-4-6"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(rewritten)) as? [String: Any])
        #expect(object["model"] as? String == "claude-sonnet-4-6" && object["stream"] as? Bool == true)
        #expect(String(decoding: rewritten, as: UTF8.self).contains("a/b"))
        #expect(Gateway.replacingModel(in: Array("[1]".utf8), with: "x") == nil)
    }

    @Test("a vendor's error is scrubbed of every key sent and of long fragments of it")
    func scrubbing() {
        let body = Array(#"{"error":{"message":"Incorrect API key provided: sk-canary-****7Hq2mZ9xL4."}}"#.utf8)
        let text = String(decoding: Gateway.scrub(body, secrets: ["sk-canary-revoked-7Hq2mZ9xL4"]), as: UTF8.self)
        #expect(!text.contains("7Hq2mZ9xL4") && text.contains("[redacted]"))
    }
}
