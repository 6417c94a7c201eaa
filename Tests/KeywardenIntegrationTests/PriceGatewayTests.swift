import Foundation
import KeywardenTestSupport
import Testing

/// `KEYWARDEN_PRICES` through the real binary: a token-priced call is metered from the vendor's own counts, a call no
/// entry prices costs its `KEYWARDEN_CREDITS` figure, and a budget holds the estimate before the vendor is called.
@Suite("Gateway prices", .serialized)
struct PriceGatewayTests {
    /// Round numbers: a milli-credit per input token, 20 per output token, half a credit per call.
    static let prices = #"{"prices": [{"provider": "openai", "model": "gpt-5.4*", "per_call": 0.5, "input_per_million": 1000, "output_per_million": 20000}, {"provider": "openai", "model": "gpt-5.4*", "source": "byok", "per_call": 0.1}, {"provider": "*", "model": "*", "source": "byok", "per_call": 0}]}"#

    @Test("a token-priced call is metered with the milli-credits its answer's usage says; an unpriced model costs KEYWARDEN_CREDITS; a byok entry applies")
    func meteredFromUsage() async throws {
        let rig = try await GatewayRig(environment: ["KEYWARDEN_PRICES": Self.prices, "KEYWARDEN_CREDITS": "*=2"])
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Priced")
        let token = try await rig.serviceToken(ws)
        try await rig.platformCard("openai", secret: "sk-platform-priced-0500")

        let answer = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(answer.status == 200 && answer.headers["x-keywarden-source"] == "platform", "\(answer.status) \(answer.text)")
        let usage = try #require(answer.json["usage"] as? [String: Int])
        let (input, output) = (try #require(usage["prompt_tokens"]), try #require(usage["completion_tokens"]))
        #expect(input > 0 && output > 0)
        let priced = 500 + input * 1 + output * 20

        // A model no entry covers: the KEYWARDEN_CREDITS figure (2 credits), whatever its tokens.
        var other = GatewayRig.chat
        other["model"] = "o3-unpriced"
        let unpriced = try await rig.call("/openai/v1/chat/completions", token: token, json: other)
        #expect(unpriced.status == 200, "\(unpriced.text)")

        // The workspace's own key: the byok entry for the model (a tenth of a credit), not the token price.
        _ = try await rig.key(ws, secret: "sk-ws-priced-own-0501")
        let own = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(own.status == 200 && own.headers["x-keywarden-source"] == "byok")

        try await rig.eventually("the three calls are metered") {
            (try await rig.usage("workspace=\(ws)&group_by=model")["totals"] as? [String: Any])?["requests"] as? Int == 3
        }
        let bySource = try await rig.usage("workspace=\(ws)&group_by=source")
        let groups = Dictionary(uniqueKeysWithValues: ((bySource["groups"] as? [[String: Any]]) ?? []).map { ($0["key"] as? String ?? "", $0) })
        #expect(groups["platform"]?["credits"] as? Double == Double(priced + 2_000) / 1000, "\(groups) vs \(priced) + 2000 milli")
        #expect(groups["byok"]?["credits"] as? Double == 0.1)
        let byModel = try await rig.usage("workspace=\(ws)&group_by=model")
        let models = Dictionary(uniqueKeysWithValues: ((byModel["groups"] as? [[String: Any]]) ?? []).map { ($0["key"] as? String ?? "", $0) })
        #expect(models["o3-unpriced"]?["credits"] as? Double == 2)
        #expect(models["gpt-5.4-mini"]?["credits"] as? Double == Double(priced + 100) / 1000)
    }

    @Test("a budget holds the estimate: below it the call is refused with 402 before the vendor hears of it; a smaller max_tokens fits")
    func budgetHoldsTheEstimate() async throws {
        let rig = try await GatewayRig(environment: ["KEYWARDEN_PRICES": Self.prices])
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Held")
        let token = try await rig.serviceToken(ws)
        try await rig.platformCard("openai", secret: "sk-platform-held-0502")
        // 10 credits: an estimate with 1,000 output tokens (20 credits and more) does not fit; 100 (2.5 and some) does.
        try await rig.api("PATCH", "/api/v1/workspaces/\(ws)/budget", ["platform_limit_credits": 10], expect: 200)
        try await rig.mocks.clear()

        for (name, maxTokens) in [("the default output estimate", nil), ("max_tokens 1000", 1_000 as Int?)] {
            var body = GatewayRig.chat
            if let maxTokens { body["max_tokens"] = maxTokens }
            let refused = try await rig.call("/openai/v1/chat/completions", token: token, json: body)
            #expect(refused.status == 402 && refused.json.errorCode == "budget_exceeded", "\(name): \(refused.status) \(refused.text)")
        }
        #expect(try await rig.mocks.requests("openai").isEmpty, "the vendor was never called")

        var small = GatewayRig.chat
        small["max_completion_tokens"] = 100
        let served = try await rig.call("/openai/v1/chat/completions", token: token, json: small)
        #expect(served.status == 200, "\(served.status) \(served.text)")
        let usage = served.json["usage"] as? [String: Int] ?? [:]
        let cost = 500 + (usage["prompt_tokens"] ?? -1_000) + 20 * (usage["completion_tokens"] ?? -1_000)
        #expect(try await rig.mocks.requests("openai").count == 1)

        // The hold is settled with the metered cost, not the estimate.
        try await rig.eventually("the budget is settled at the call's cost") {
            let budget = try await rig.api("GET", "/api/v1/workspaces/\(ws)/budget", expect: 200)
            let platform = budget["platform"] as? [String: Any] ?? [:]
            return platform["spent_credits"] as? Double == Double(cost) / 1000 && platform["reserved_credits"] as? Double ?? 0 == 0
        }
    }
}
