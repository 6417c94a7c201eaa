import Foundation
import KeywardenTestSupport
import Testing

/// WebSocket sessions on the native faces (OpenAI's Realtime API, ElevenLabs' stream-input) through the real binary.
@Suite("Realtime sessions", .serialized)
struct RealtimeTests {
    /// One session through `scripts/realtime-probe.py`.
    static func probe(_ url: String, headers: [String: String] = [:], subprotocols: [String] = [], send: [[String: Any]], until: String? = nil) async throws -> [String: Any] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var plan: [String: Any] = ["headers": headers, "subprotocols": subprotocols, "send": send]
        if let until { plan["until"] = until }
        let text = String(decoding: try JSONSerialization.data(withJSONObject: plan), as: UTF8.self)
        let python = try await PythonPeers.python(for: ["websockets"])
        let run = try ChildProcess(python, PythonPeers.arguments(python, script: root.appendingPathComponent("scripts/realtime-probe.py").path, [url, text]))
        await run.wait(timeout: .seconds(60))
        return try #require(try JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any], "\(run.stdout) \(run.stderr)")
    }

    static func rows(_ rig: GatewayRig, workspace: String) async throws -> [[String: Any]] {
        let export = try await TestHTTP.get(rig.base + "/api/v1/usage/export?format=jsonl", headers: ["Authorization": "Bearer \(rig.adminToken)"])
        return export.text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["workspace_id"] as? String == workspace }
    }

    @Test("a Realtime session and an ElevenLabs stream-input session are relayed with the key injected, metered from their messages, and refused clearly without a good token")
    func sessionsAreRelayedAndMetered() async throws {
        let rig = try await GatewayRig(vendors: ["openai", "elevenlabs"])
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Voice")
        let token = try await rig.serviceToken(ws)
        let openaiKey = "sk-proj-rt0" + String(UUID().uuidString.prefix(12)), elevenKey = "sk_rt1" + String(UUID().uuidString.prefix(12))
        _ = try await rig.key(ws, secret: openaiKey)
        _ = try await rig.key(ws, provider: "elevenlabs", secret: elevenKey)
        let socketBase = rig.base.replacingOccurrences(of: "http://", with: "ws://")

        // OpenAI Realtime, the token in Authorization as the SDK sends it.
        let session = try await Self.probe(socketBase + "/openai/v1/realtime?model=gpt-realtime", headers: ["Authorization": "Bearer \(token)"],
                                           send: [["type": "response.create"]], until: "response.done")
        let events = (session["received"] as? [[String: Any]] ?? []).compactMap { $0["type"] as? String }
        #expect(events.first == "session.created" && events.last == "response.done" && events.contains("response.output_text.delta"), "\(session)")
        // The token in a subprotocol, as browser clients send it: the session works, the client is answered "realtime".
        let browser = try await Self.probe(socketBase + "/openai/v1/realtime?model=gpt-realtime", subprotocols: ["realtime", "openai-insecure-api-key.\(token)"],
                                           send: [["type": "response.create"]], until: "response.done")
        #expect(browser["subprotocol"] as? String == "realtime" && (browser["received"] as? [Any])?.count ?? 0 >= 7, "\(browser)")
        // The vendor saw its key, never the token, and the client's messages as sent.
        let seen = try await rig.mocks.requests("openai").filter { $0["method"] as? String == "WS" }
        #expect(seen.count >= 2 && seen.allSatisfy { ($0["headers"] as? [String: String])?["authorization"] == "Bearer \(openaiKey)" }, "\(seen)")
        #expect(!String(describing: seen).contains(token))
        #expect((seen.first?["messages"] as? [String]) == [#"{"type": "response.create"}"#])

        // ElevenLabs stream-input: audio for the text, then isFinal; billed by the characters sent.
        let speech = try await Self.probe(socketBase + "/elevenlabs/v1/text-to-speech/voice1/stream-input?model_id=eleven_flash_v2_5",
                                          headers: ["xi-api-key": token], send: [["text": " "], ["text": "Hello there "], ["text": ""]])
        let frames = speech["received"] as? [[String: Any]] ?? []
        #expect(frames.contains { $0["audio"] is String } && frames.last?["isFinal"] as? Bool == true, "\(speech)")

        // A client that leaves right after asking for a response: the vendor's report of it is still read, and billed.
        _ = try await Self.probe(socketBase + "/openai/v1/realtime?model=gpt-realtime", headers: ["Authorization": "Bearer \(token)"],
                                 send: [["type": "response.create"]], until: "session.created")

        try await rig.eventually("the four sessions are metered") { try await Self.rows(rig, workspace: ws).count >= 4 }
        let rows = try await Self.rows(rig, workspace: ws)
        let realtime = rows.filter { $0["provider"] as? String == "openai" }
        #expect(realtime.count == 3 && realtime.allSatisfy { $0["tokens_in"] as? Int == 12 && $0["tokens_out"] as? Int == 5 && $0["status"] as? Int == 200 }, "\(realtime)")
        let tts = rows.filter { $0["provider"] as? String == "elevenlabs" }
        #expect(tts.count == 1 && tts.first?["characters"] as? Int == 13 && tts.first?["modality"] as? String == "tts", "\(tts)")

        // Without a good token: an error event with Keywarden's code, then a policy-violation close; nothing reaches the vendor.
        try await rig.mocks.clear()
        for headers in [[:], ["Authorization": "Bearer kw_not_a_real_token_000000000000000000000"]] {
            let refused = try await Self.probe(socketBase + "/openai/v1/realtime?model=gpt-realtime", headers: headers, send: [])
            let error = (refused["received"] as? [[String: Any]])?.first
            #expect(error?["type"] as? String == "error" && refused["close_code"] as? Int == 1008, "\(refused)")
            #expect(["unauthorized", "invalid_token"].contains((error?["error"] as? [String: Any])?["code"] as? String ?? ""), "\(refused)")
        }
        #expect(try await rig.mocks.requests("openai").isEmpty)
        // An upgrade on a path that speaks no WebSocket is not one (400), and plain HTTP on the same connection type works.
        let notSocket = try await Self.probe(socketBase + "/openai/v1/chat/completions", headers: ["Authorization": "Bearer \(token)"], send: [])
        #expect(notSocket["status"] as? Int == 400, "\(notSocket)")
        #expect(try await TestHTTP.get(rig.base + "/healthz").status == 200)
    }
}
