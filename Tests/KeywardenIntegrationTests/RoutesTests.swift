import Foundation
import KeywardenTestSupport
import Testing

/// Chat routes: fallback across providers within one call, each step translated to its vendor's dialect, metered by
/// source; the API that edits them (authorization, validation, audit).
@Suite("Chat routes", .serialized)
struct RoutesTests {
    @Test("a route whose first step answers 429 is served by its second step at another provider in one call, in either caller's shape, metered by source")
    func routeFailsOverAcrossProviders() async throws {
        let rig = try await GatewayRig(vendors: ["openai", "anthropic"])
        defer { Task { await rig.stop() } }
        try await rig.platformCard("openai", secret: "sk-platform-openai-route-0001")
        let ws = try await rig.workspace("Routed")
        _ = try await rig.key(ws, provider: "anthropic", secret: "sk-ant-ratelimited-route-0002")
        let token = try await rig.serviceToken(ws)
        try await rig.api("PUT", "/api/v1/workspaces/\(ws)/routes/support",
                          ["steps": [["provider": "anthropic", "model": "claude-opus-4-7"], ["provider": "openai", "model": "gpt-5.4-mini"]]], expect: 200)

        let chat: [String: Any] = ["model": "route:support", "messages": [["role": "user", "content": "Route me."]]]
        let served = try await rig.call("/v1/chat/completions", token: token, json: chat)
        #expect(served.status == 200, "\(served.text)")
        #expect(served.headers["x-keywarden-provider"] == "openai" && served.headers["x-keywarden-model"] == "gpt-5.4-mini")
        #expect(served.headers["x-keywarden-source"] == "platform" && served.headers["x-keywarden-attempts"] == "2")
        #expect(served.json["object"] as? String == "chat.completion")
        let anthropicSent = try await rig.mocks.requests("anthropic").filter { ($0["path"] as? String) == "/v1/messages" }
        #expect(anthropicSent.count == 1 && (anthropicSent.first?["body"] as? String)?.contains("claude-opus-4-7") == true,
                "the first step was tried, translated to Anthropic's Messages API")
        let openAISent = try await rig.mocks.requests("openai").filter { ($0["path"] as? String) == "/v1/chat/completions" }
        #expect((openAISent.last?["body"] as? String)?.contains("gpt-5.4-mini") == true)

        // The Anthropic SDK's shape on the same route: the second step answers, translated back to a Message.
        let messages = try await rig.call("/v1/messages", token: token, json: ["model": "route:support", "max_tokens": 100,
                                                                              "messages": [["role": "user", "content": "Route me."]]])
        #expect(messages.status == 200 && messages.json["type"] as? String == "message" && messages.headers["x-keywarden-provider"] == "openai",
                "\(messages.text)")

        // Metered by who paid: the refused attempt costs nothing; the platform paid for the answers.
        try await rig.eventually("both calls metered") {
            ((try await rig.usage("workspace=\(ws)&group_by=source"))["totals"] as? [String: Any])?["requests"] as? Int == 2
        }
        let bySource = try await rig.usage("workspace=\(ws)&group_by=source")
        #expect(((bySource["groups"] as? [[String: Any]]) ?? []).map { $0["key"] as? String } == ["platform"])

        // A route the workspace does not have, and a removed one.
        let unknown = try await rig.call("/v1/chat/completions", token: token, json: ["model": "route:nope", "messages": [["role": "user", "content": "Hi"]]])
        #expect(unknown.status == 404 && unknown.json.errorCode == "unknown_route")
        try await rig.api("DELETE", "/api/v1/workspaces/\(ws)/routes/support", expect: 200)
        let removed = try await rig.call("/v1/chat/completions", token: token, json: chat)
        #expect(removed.status == 404 && removed.json.errorCode == "unknown_route")

        // The platform's route named `default` serves a call that names no model nor provider, in every workspace.
        try await rig.api("PUT", "/api/v1/platform/routes/default", ["steps": [["provider": "openai", "model": "gpt-4.1"]]], expect: 200)
        let other = try await rig.workspace("Defaulted")
        let otherToken = try await rig.serviceToken(other)
        let byDefault = try await rig.call("/v1/chat/completions", token: otherToken, json: ["messages": [["role": "user", "content": "Hi"]]])
        #expect(byDefault.status == 200 && byDefault.headers["x-keywarden-model"] == "gpt-4.1", "\(byDefault.text)")
    }

    @Test("route edits are authorized by the service (a foreign workspace is 404, gateway-only 403), validated against the catalog, and audited")
    func routeAPIRefusalsAndAudit() async throws {
        let rig = try await GatewayRig(vendors: ["openai"])
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Mine")
        let foreign = try await rig.workspace("Theirs")
        let editor = try await rig.serviceToken(ws, permissions: ["keys.read", "keys.update"])
        let gatewayOnly = try await rig.serviceToken(ws)
        let steps: [[String: Any]] = [["provider": "openai", "model": "gpt-5.4-mini"]]
        try await rig.api("PUT", "/api/v1/workspaces/\(ws)/routes/fast", ["steps": steps], token: editor, expect: 200)
        try await rig.api("PUT", "/api/v1/workspaces/\(foreign)/routes/fast", ["steps": steps], token: editor, expect: 404)
        try await rig.api("GET", "/api/v1/workspaces/\(foreign)/routes", token: editor, expect: 404)
        try await rig.api("PUT", "/api/v1/workspaces/\(ws)/routes/fast", ["steps": steps], token: gatewayOnly, expect: 403)
        try await rig.api("PUT", "/api/v1/platform/routes/fast", ["steps": steps], token: editor, expect: 403)
        let listed = try await rig.api("GET", "/api/v1/workspaces/\(ws)/routes", token: editor, expect: 200)
        #expect(((listed["items"] as? [[String: Any]])?.first?["steps"] as? [[String: Any]])?.first?["model"] as? String == "gpt-5.4-mini")
        for (body, field) in [
            (["steps": [["provider": "nope", "model": "m"]]], "steps[0].provider"),
            (["steps": [["provider": "elevenlabs", "model": "eleven_v3"]]], "steps[0].provider"),
            (["steps": [] as [Any]], "steps"),
            (["steps": Array(repeating: ["provider": "openai", "model": "m"], count: 9)], "steps"),
            (["steps": [["provider": "openai", "model": "has space"]]], "steps[0].model"),
            (["steps": [["provider": "openai", "model": "m", "weight": 2]]], "steps"),
        ] as [([String: Any], String)] {
            let refused = try await rig.api("PUT", "/api/v1/workspaces/\(ws)/routes/bad", body, token: editor, expect: 400)
            #expect((refused["error"] as? [String: Any])?["field"] as? String == field, "\(body): \(refused)")
        }
        try await rig.api("PUT", "/api/v1/workspaces/\(ws)/routes/Bad%20Name", ["steps": steps], token: editor, expect: 400)
        try await rig.api("PUT", "/api/v1/workspaces/\(ws)/routes/x", ["steps": steps, "extra": 1], token: editor, expect: 400)
        try await rig.api("DELETE", "/api/v1/workspaces/\(ws)/routes/missing", token: editor, expect: 404)
        try await rig.api("DELETE", "/api/v1/workspaces/\(ws)/routes/fast", token: editor, expect: 200)
        let audit = try await rig.api("GET", "/api/v1/audit?workspace=\(ws)&per_page=100", expect: 200)
        let actions = ((audit["items"] as? [[String: Any]]) ?? []).compactMap { $0["action"] as? String }
        #expect(actions.contains("route.set") && actions.contains("route.removed"), "\(actions)")
    }
}
