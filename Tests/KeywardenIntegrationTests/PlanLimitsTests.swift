import Foundation
import KeywardenTestSupport
import Testing

/// Plans: default limits a platform admin sets once, which every workspace on the plan gets where it sets none.
@Suite("Plans", .serialized)
struct PlanLimitsTests {
    func code(_ reply: TestHTTP.Reply) -> String? { (reply.json["error"] as? [String: Any])?["code"] as? String }

    @Test("a workspace on a plan gets the plan's budget and rate limit; its own limit wins; the platform's key is refused past them")
    func planLimitsHoldOnTheGateway() async throws {
        let rig = try await GatewayRig()
        defer { Task { await rig.stop() } }
        try await rig.platformCard("openai", secret: "sk-platform-plan-0001")
        let saved = try await rig.send("PUT", "/api/v1/platform/plans/starter", ["platform_limit_credits": 2, "requests_per_minute": 50], expect: 200)
        #expect(saved.json["platform_limit_credits"] as? Double == 2 && saved.json["tokens_per_minute"] is NSNull)
        let ws = try #require(try await rig.send("POST", "/api/v1/workspaces", ["name": "On Starter", "plan": "starter"], expect: 201).json["id"] as? String)
        let token = try await rig.serviceToken(ws)

        let budget = try await rig.send("GET", "/api/v1/workspaces/\(ws)/budget", expect: 200)
        let platform = try #require(budget.json["platform"] as? [String: Any])
        #expect(platform["limit_credits"] as? Double == 2 && platform["limit_source"] as? String == "plan" && platform["default"] as? Bool == true)
        let rates = try await rig.send("GET", "/api/v1/workspaces/\(ws)/rate-limits", expect: 200)
        #expect(rates.json["requests_per_minute"] is NSNull && (rates.json["effective"] as? [String: Any])?["requests_per_minute"] as? Int == 50)

        // One credit per call (KEYWARDEN_CREDITS' default): two calls fit the plan's budget, the third is refused.
        for _ in 0..<2 { #expect(try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat).status == 200) }
        let refused = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(refused.status == 402 && refused.text.contains("budget_exceeded"), "\(refused.text)")

        // The workspace's own limit wins over its plan's.
        try await rig.send("PATCH", "/api/v1/workspaces/\(ws)/budget", ["platform_limit_credits": 3], expect: 200)
        #expect(try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat).status == 200)
        let own = try await rig.send("GET", "/api/v1/workspaces/\(ws)/budget", expect: 200)
        #expect((own.json["platform"] as? [String: Any])?["limit_source"] as? String == "workspace")

        // A daily budget of its own: the period is today, and the refusal says so. Today's spending is what today's calls
        // cost (3 credits: the ledger's, whatever cycle counted them), so a limit of 4 leaves one call.
        let daily = try await rig.send("PATCH", "/api/v1/workspaces/\(ws)/budget", ["platform_limit_credits": 4, "period": "day"], expect: 200)
        #expect(daily.json["period"] as? String == "day")
        let end = try #require(daily.json["period_end"] as? String)
        #expect(end.hasSuffix("T00:00:00.000Z"))
        #expect(try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat).status == 200, "today's fourth credit")
        let today = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(today.status == 402 && today.text.contains("credits today") && today.text.contains(end), "\(today.text)")
        for bad in ["month:29", "Month", "weekly", ""] {
            try await rig.send("PATCH", "/api/v1/workspaces/\(ws)/budget", ["period": bad], expect: 400)
        }
        try await rig.send("PUT", "/api/v1/platform/plans/weekly", ["budget_period": "week", "platform_limit_credits": 5], expect: 200)
        try await rig.send("PATCH", "/api/v1/workspaces/\(ws)/budget", ["period": NSNull(), "platform_limit_credits": NSNull()], expect: 200)
        try await rig.send("PATCH", "/api/v1/workspaces/\(ws)", ["plan": "weekly"], expect: 200)
        let weekly = try await rig.send("GET", "/api/v1/workspaces/\(ws)/budget", expect: 200)
        #expect(weekly.json["period"] as? String == "week" && (weekly.json["platform"] as? [String: Any])?["limit_credits"] as? Double == 5)

        // A plan's change reaches the gateway at once: a rate limit of 1 a minute on a fresh workspace.
        try await rig.send("PUT", "/api/v1/platform/plans/tight", ["requests_per_minute": 1], expect: 200)
        let tight = try #require(try await rig.send("POST", "/api/v1/workspaces", ["name": "Tight", "plan": "tight"], expect: 201).json["id"] as? String)
        let tightToken = try await rig.serviceToken(tight)
        #expect(try await rig.call("/openai/v1/chat/completions", token: tightToken, json: GatewayRig.chat).status == 200)
        // The next call in the same minute is refused (two tries: a minute may turn between the first two calls).
        var limited = try await rig.call("/openai/v1/chat/completions", token: tightToken, json: GatewayRig.chat)
        if limited.status == 200 { limited = try await rig.call("/openai/v1/chat/completions", token: tightToken, json: GatewayRig.chat) }
        #expect(limited.status == 429 && limited.headers["retry-after"] != nil, "\(limited.status) \(limited.text)")
        try await rig.send("PUT", "/api/v1/platform/plans/tight", ["requests_per_minute": 100], expect: 200)
        #expect(try await rig.call("/openai/v1/chat/completions", token: tightToken, json: GatewayRig.chat).status == 200, "the raised plan limit holds at once")
    }

    @Test("plans are the platform's: unknown or bad names refused, a plan in use is not deleted, a workspace's owner cannot change its plan")
    func planRefusals() async throws {
        let rig = try await GatewayRig()
        defer { Task { await rig.stop() } }
        try await rig.send("PUT", "/api/v1/platform/plans/pro", ["platform_limit_credits": 100], expect: 200)
        for bad in ["Pro", "a b", String(repeating: "x", count: 65), "pro%2F..", "é"] {
            let escaped = bad.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? bad
            let reply = try await rig.send("PUT", "/api/v1/platform/plans/\(escaped)", [:])
            #expect(reply.status == 400 || reply.status == 404, "\(bad): \(reply.status)")
        }
        for body: [String: Any] in [["platform_limit_credits": -1], ["requests_per_minute": 0], ["tokens_per_minute": Int.max], ["limit": 1],
                                    ["platform_limit_credits": "10"]] {
            try await rig.send("PUT", "/api/v1/platform/plans/pro", body, expect: 400)
        }
        let before = try await rig.send("GET", "/api/v1/workspaces", expect: 200).json["total"] as? Int
        #expect(code(try await rig.send("POST", "/api/v1/workspaces", ["name": "Nope", "plan": "missing"], expect: 422)) == "unknown_plan")
        #expect(try await rig.send("GET", "/api/v1/workspaces", expect: 200).json["total"] as? Int == before, "a refused plan leaves no workspace behind")

        let ws = try await rig.workspace("Owned")
        let owner = try #require(try await rig.send("POST", "/api/v1/workspaces/\(ws)/members", ["name": "Olga", "role": "owner"], expect: 201)
            .json["token"] as? String)
        try await rig.send("PATCH", "/api/v1/workspaces/\(ws)", ["plan": "pro"], token: owner, expect: 403)
        try await rig.send("PUT", "/api/v1/platform/plans/free", [:], token: owner, expect: 403)
        #expect(code(try await rig.send("PATCH", "/api/v1/workspaces/\(ws)", ["plan": "missing"], expect: 422)) == "unknown_plan")
        let moved = try await rig.send("PATCH", "/api/v1/workspaces/\(ws)", ["plan": "pro"], expect: 200)
        #expect(moved.json["plan"] as? String == "pro")
        #expect(code(try await rig.send("DELETE", "/api/v1/platform/plans/pro", expect: 409)) == "plan_in_use")
        try await rig.send("PATCH", "/api/v1/workspaces/\(ws)", ["plan": NSNull()], expect: 200)
        try await rig.send("DELETE", "/api/v1/platform/plans/pro", expect: 200)
        try await rig.send("GET", "/api/v1/platform/plans/pro", expect: 404)
        let audit = try await rig.send("GET", "/api/v1/audit?per_page=100", expect: 200)
        #expect(audit.text.contains("plan.saved") && audit.text.contains("plan.deleted"))
    }
}
