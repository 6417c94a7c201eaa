import AsyncHTTPClient
import Foundation
import KeywardenTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// The gateway through the real binary, against the real mock vendors.
@Suite("Gateway", .serialized)
struct GatewayTests {
    @Test("the chain walks binding → BYOK primary → fallback → platform → managed → a clear error, with source headers and one fallback.engaged")
    func wholeChain() async throws {
        let rig = try await GatewayRig(environment: GatewayRig.managed)
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Acme")
        let token = try await rig.serviceToken(ws)
        let primary = try await rig.key(ws, secret: "sk-ws-primary-revoked-0001")
        let fallback = try await rig.key(ws, secret: "sk-ws-fallback-works-0002", role: "fallback")
        let bound = try await rig.key(ws, secret: "sk-ws-bound-works-0003", role: "pool", active: true)
        try await rig.platformCard("openai", secret: "sk-platform-openai-0004")
        try await rig.platformCard("anthropic", secret: "sk-ant-platform-0005")
        try await rig.api("PUT", "/api/v1/workspaces/\(ws)/bindings", ["consumer": "assistant-1", "modality": "chat", "key_id": bound], expect: 200)

        // 1. The binding wins for its consumer.
        let viaBinding = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat, headers: ["X-Keywarden-Consumer": "assistant-1"])
        #expect(viaBinding.status == 200)
        #expect(viaBinding.headers["x-keywarden-key"] == bound && viaBinding.headers["x-keywarden-source"] == "byok" && viaBinding.headers["x-keywarden-attempts"] == "1")
        // Every answer says what it cost: Keywarden's own time and the vendor's, in milliseconds.
        let timing = try #require(viaBinding.headers["server-timing"])
        let parts = try #require(timing.wholeMatch(of: /kw;dur=(\d+\.\d{3}), upstream;dur=(\d+\.\d{3})/), "\(timing)")
        #expect((Double(parts.1) ?? 0) > 0 && (Double(parts.2) ?? 0) > 0, "\(timing)")

        // 2. The primary is refused (401): the fallback answers in the same call, and the primary is marked invalid.
        let viaFallback = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(viaFallback.status == 200, "\(viaFallback.text)")
        #expect(viaFallback.headers["x-keywarden-key"] == fallback && viaFallback.headers["x-keywarden-attempts"] == "2")
        try await rig.eventually("the refused primary is marked invalid") {
            let key = try await rig.api("GET", "/api/v1/workspaces/\(ws)/keys/\(primary)")
            return ((key["key"] as? [String: Any])?["status"] ?? key["status"]) as? String == "invalid"
        }

        // 3. The workspace's keys all off: the platform's key pays, and fallback.engaged is raised once.
        for id in [fallback, bound] { try await rig.api("POST", "/api/v1/workspaces/\(ws)/keys/\(id)/deactivate", expect: 200) }
        for _ in 0..<3 {
            let viaPlatform = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
            #expect(viaPlatform.status == 200 && viaPlatform.headers["x-keywarden-source"] == "platform")
        }
        try await rig.eventually("one fallback.engaged event") {
            let events = try await rig.api("GET", "/api/v1/events?workspace=\(ws)&kind=fallback.engaged")
            return (events["items"] as? [Any])?.count == 1
        }
        try await Task.sleep(for: .milliseconds(300))
        let engaged = try await rig.api("GET", "/api/v1/events?workspace=\(ws)&kind=fallback.engaged")
        #expect((engaged["items"] as? [Any])?.count == 1, "one event per transition, not one per call")

        // 4. The platform's OpenAI card off: the OpenAI-compatible face falls to the managed default (Anthropic), with its
        // model, translated to Anthropic's own Messages API (its key in Anthropic's header).
        try await rig.api("POST", "/api/v1/platform/providers/openai/deactivate", expect: 200)
        try await rig.mocks.clear()
        let viaManaged = try await rig.call("/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(viaManaged.status == 200, "\(viaManaged.text)")
        #expect(viaManaged.headers["x-keywarden-source"] == "managed" && viaManaged.headers["x-keywarden-provider"] == "anthropic")
        let sent = try await rig.mocks.requests("anthropic").last
        #expect(sent?["path"] as? String == "/v1/messages")
        #expect((sent?["body"] as? String)?.contains("claude-haiku-4-5") == true)
        #expect((sent?["headers"] as? [String: String])?["x-api-key"] == "sk-ant-platform-0005")
        #expect(viaManaged.json["object"] as? String == "chat.completion", "the answer comes back in OpenAI's shape: \(viaManaged.text)")
        // The native face never switches provider.
        let nativeNoKey = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(nativeNoKey.status == 422 && nativeNoKey.json.errorCode == "no_key_available", "\(nativeNoKey.status) \(nativeNoKey.headers) \(nativeNoKey.text)")

        // 5. Nothing left: a clear error naming the provider and each reason.
        try await rig.api("POST", "/api/v1/platform/providers/anthropic/deactivate", expect: 200)
        let none = try await rig.call("/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(none.status == 422 && none.json.errorCode == "no_key_available")
        let message = none.json.errorMessage ?? ""
        #expect(message.contains("openai") && message.contains("card is deactivated") && message.contains("managed default"), "\(message)")
    }

    @Test("a plan without BYOK skips the workspace's keys; exclusive mode leaves one provider's keys in play")
    func planAndExclusiveMode() async throws {
        let rig = try await GatewayRig()
        defer { Task { await rig.stop() } }
        try await rig.platformCard("openai", secret: "sk-platform-openai-0100")
        // A workspace whose plan loses BYOK keeps its keys, but the chain skips them.
        let noByok = try await rig.workspace("Free plan")
        _ = try await rig.key(noByok, secret: "sk-free-plan-key-0101")
        try await rig.api("PATCH", "/api/v1/workspaces/\(noByok)", ["byok_allowed": false], expect: 200)
        let token = try await rig.serviceToken(noByok)
        let reply = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(reply.status == 200 && reply.headers["x-keywarden-source"] == "platform")

        let exclusive = try await rig.workspace("Exclusive", exclusive: true)
        let exclusiveToken = try await rig.serviceToken(exclusive)
        let openaiKey = try await rig.key(exclusive, secret: "sk-exclusive-openai-0102")
        let first = try await rig.call("/openai/v1/chat/completions", token: exclusiveToken, json: GatewayRig.chat)
        #expect(first.headers["x-keywarden-key"] == openaiKey)
        // A platform-bound service token names the workspace it calls for.
        let platformToken = try await rig.serviceToken(nil)
        let named = try await rig.call("/openai/v1/chat/completions", token: platformToken, json: GatewayRig.chat, headers: ["X-Keywarden-Workspace": exclusive])
        #expect(named.status == 200 && named.headers["x-keywarden-key"] == openaiKey)
        let unnamed = try await rig.call("/openai/v1/chat/completions", token: platformToken, json: GatewayRig.chat)
        #expect(unnamed.status == 200 && unnamed.headers["x-keywarden-source"] == "platform")
        // Activating Anthropic with ?switch=true turns OpenAI's key off: OpenAI calls now go to the platform.
        _ = try await rig.key(exclusive, provider: "anthropic", secret: "sk-ant-exclusive-0103", query: "?switch=true")
        let after = try await rig.call("/openai/v1/chat/completions", token: exclusiveToken, json: GatewayRig.chat)
        #expect(after.status == 200 && after.headers["x-keywarden-source"] == "platform")
    }

    @Test("a 429 rests the key for its Retry-After: the next call skips it, and it is used again afterwards")
    func cooldownHonouredThenLifted() async throws {
        let rig = try await GatewayRig()
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Busy")
        let token = try await rig.serviceToken(ws)
        // Retry-After 7: the next call, well within it, skips the key.
        let limited = try await rig.key(ws, secret: "sk-ratelimited-0200")
        let spare = try await rig.key(ws, secret: "sk-spare-works-0201", role: "fallback")
        let firstSent = ContinuousClock.now
        let first = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(first.status == 200 && first.headers["x-keywarden-key"] == spare && first.headers["x-keywarden-attempts"] == "2")
        try await rig.mocks.clear()
        let second = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        // Within the 7 s (a loaded full run once took longer, and the rested key was rightly tried again).
        if ContinuousClock.now - firstSent < .seconds(7) {
            #expect(second.headers["x-keywarden-key"] == spare && second.headers["x-keywarden-attempts"] == "1", "the resting key is skipped")
            #expect(try await rig.mocks.requests("openai").count == 1)
        }

        // Only a key with Retry-After 3 left: while it rests Keywarden answers 429 itself, without calling the vendor.
        for id in [limited, spare] { try await rig.api("POST", "/api/v1/workspaces/\(ws)/keys/\(id)/deactivate", expect: 200) }
        let short = try await rig.key(ws, secret: "sk-ratelimited-retry3-0202")
        // The rest begins after this moment: a call answered within 3 s of it met the key resting (on a machine loaded
        // enough to take longer, the rest may have ended, and the vendor is rightly asked again).
        let sentAt = ContinuousClock.now
        let vendorSays = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(vendorSays.status == 429 && vendorSays.headers["x-keywarden-key"] == short && vendorSays.headers["retry-after"] == "3")
        try await rig.mocks.clear()
        let resting = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        if ContinuousClock.now - sentAt < .seconds(3) {
            #expect(resting.status == 429 && resting.json.errorCode == "keys_cooling_down", "\(resting.status) \(resting.text)")
            #expect(Int(resting.headers["retry-after"] ?? "") ?? 0 >= 1 && Int(resting.headers["retry-after"] ?? "") ?? 9 <= 3)
            #expect(try await rig.mocks.requests("openai").isEmpty)
        }
        try await rig.mocks.clear()
        // After the rest the key is tried again (the vendor answers 429 again, passed through with its Retry-After).
        try await rig.eventually("the rested key is tried again") {
            try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat).headers["x-keywarden-key"] == short
        }
        #expect(try await rig.mocks.requests("openai").count == 1)
    }

    @Test("a stream reaches the client as the vendor sends it; a failure mid-stream is not retried")
    func streamingAndMidstreamFailure() async throws {
        let rig = try await GatewayRig()
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Streams")
        let token = try await rig.serviceToken(ws)
        let breaking = try await rig.key(ws, secret: "sk-midstream-breaks-0300")
        _ = try await rig.key(ws, secret: "sk-stream-works-0301", role: "fallback")
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await client.shutdown() } }

        // Each part is stamped on the event loop as it arrives, not when this task reads it: on a machine loaded enough
        // to starve the test's task (CI runs every suite at once), parts read late would look as if they came together.
        func stream(_ body: [String: Any]) async throws -> (status: Int, headers: HTTPHeaders, chunks: [(ContinuousClock.Instant, String)], failed: Bool) {
            var request = try HTTPClient.Request(url: rig.base + "/openai/v1/chat/completions", method: .POST)
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(try JSONSerialization.data(withJSONObject: body))
            let timer = ArrivalStamps()
            let failed: Bool
            do { try await client.execute(request: request, delegate: timer, deadline: .now() + .seconds(30)).futureResult.get(); failed = false } catch { failed = true }
            let seen = timer.seen
            return (seen.status, seen.headers, seen.chunks, failed)
        }
        var body = GatewayRig.chat
        body["stream"] = true
        body["stream_options"] = ["include_usage": true]

        // The first key breaks after two events: the client sees those, then the broken stream; no retry.
        let broken = try await stream(body)
        #expect(broken.status == 200 && broken.headers.first(name: "x-keywarden-key") == breaking && broken.headers.first(name: "x-keywarden-attempts") == "1")
        #expect(broken.chunks.map(\.1).joined().contains("\"role\":\"assistant\""))
        #expect(broken.failed || !broken.chunks.map(\.1).joined().contains("[DONE]"))
        #expect(try await rig.mocks.requests("openai").count == 1, "no second key was tried after the first byte")

        // A whole stream arrives in parts over time (the mock sends an event every 20 ms), not at the end: a buffered stream would arrive within a few ms, so half the sending time is the bound (robust on a loaded machine).
        try await rig.api("POST", "/api/v1/workspaces/\(ws)/keys/\(breaking)/deactivate", expect: 200)
        // Up to fifteen streams: on a machine loaded enough to starve the mock's timer or this client (CI's PostgreSQL pass
        // runs every suite at once, the hostile-vendor suite among them), several streams in a row can arrive in a burst;
        // a buffering gateway makes every one of them arrive at once.
        var spreads: [Duration] = []
        for _ in 0..<15 {
            let whole = try await stream(body)
            let text = whole.chunks.map(\.1).joined()
            #expect(whole.status == 200 && text.hasSuffix("data: [DONE]\n\n") && !whole.failed)
            #expect(whole.headers.first(name: "content-type")?.hasPrefix("text/event-stream") == true)
            #expect(whole.chunks.count >= 5, "chunks arrive separately: \(whole.chunks.count)")
            if let first = whole.chunks.first?.0, let last = whole.chunks.last?.0 { spreads.append(last - first) }
            if spreads.last.map({ $0 >= .milliseconds(50) }) == true { break }
        }
        #expect(spreads.contains { $0 >= .milliseconds(50) }, "the first chunk arrived this long before the last, each try: \(spreads)")
    }

    @Test("usage rows carry the token counts the vendors reported, for plain and streamed calls of each shape")
    func usageMatchesVendorCounts() async throws {
        let rig = try await GatewayRig(environment: ["KEYWARDEN_CREDITS": "*=1,elevenlabs=0.5"])
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Metered")
        let token = try await rig.serviceToken(ws)
        for (provider, secret) in [("openai", "sk-meter-openai-0400"), ("anthropic", "sk-ant-meter-0401"), ("gemini", "AIza-meter-gemini-0402"), ("elevenlabs", "sk_meter_eleven_0403")] {
            _ = try await rig.key(ws, provider: provider, secret: secret)
        }
        var expected: [String: (input: Int, output: Int)] = [:]
        func add(_ provider: String, _ input: Int, _ output: Int) {
            let current = expected[provider] ?? (0, 0)
            expected[provider] = (current.input + input, current.output + output)
        }

        // OpenAI, plain and streamed (usage in the last chunk).
        let plain = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        let plainUsage = plain.json["usage"] as? [String: Int] ?? [:]
        add("openai", plainUsage["prompt_tokens"] ?? -1, plainUsage["completion_tokens"] ?? -1)
        var streamed = GatewayRig.chat
        streamed["stream"] = true
        streamed["stream_options"] = ["include_usage": true]
        let openaiStream = try await rig.call("/openai/v1/chat/completions", token: token, json: streamed)
        let lastUsage = openaiStream.text.split(separator: "\n").filter { $0.contains("\"usage\"") }.last.flatMap { line in
            try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any]
        }?["usage"] as? [String: Int] ?? [:]
        add("openai", lastUsage["prompt_tokens"] ?? -1, lastUsage["completion_tokens"] ?? -1)
        #expect(openaiStream.text.contains(#""choices":[]"#), "a caller who asked for usage gets its event")

        // An OpenAI stream that does not ask for usage is asked for it by the gateway (so it is metered), and the
        // caller does not see the usage-only event it did not ask for.
        streamed["stream_options"] = nil
        let unasked = try await rig.call("/openai/v1/chat/completions", token: token, json: streamed)
        #expect(unasked.status == 200 && unasked.text.hasSuffix("data: [DONE]\n\n") && unasked.text.contains("\"content\""))
        #expect(!unasked.text.contains(#""choices":[]"#) && !unasked.text.contains(#""prompt_tokens""#), "\(unasked.text)")
        let sent = try await rig.mocks.requests("openai").last?["body"] as? String ?? ""
        let sentOptions = (try? JSONSerialization.jsonObject(with: Data(sent.utf8)) as? [String: Any])?["stream_options"] as? [String: Any]
        #expect(sentOptions?["include_usage"] as? Bool == true, "the vendor was asked for usage: \(sent)")
        add("openai", lastUsage["prompt_tokens"] ?? -1, lastUsage["completion_tokens"] ?? -1)

        // Anthropic's messages, streamed: input in message_start, output in message_delta.
        let messages: [String: Any] = ["model": "claude-sonnet-4-6", "max_tokens": 64, "stream": true, "messages": [["role": "user", "content": "Count the tokens of this, please."]]]
        let anthropic = try await rig.call("/anthropic/v1/messages", token: token, json: messages, headers: ["x-api-key": token, "anthropic-version": "2023-06-01"])
        #expect(anthropic.status == 200 && anthropic.text.contains("message_delta"))
        let start = anthropic.text.split(separator: "\n").first { $0.contains("message_start") && $0.hasPrefix("data:") }
        let startUsage = ((start.flatMap { try? JSONSerialization.jsonObject(with: Data($0.dropFirst(6).utf8)) as? [String: Any] })?["message"] as? [String: Any])?["usage"] as? [String: Int]
        let delta = anthropic.text.split(separator: "\n").first { $0.contains("\"message_delta\"") && $0.hasPrefix("data:") }
        let deltaUsage = (delta.flatMap { try? JSONSerialization.jsonObject(with: Data($0.dropFirst(6).utf8)) as? [String: Any] })?["usage"] as? [String: Int]
        add("anthropic", startUsage?["input_tokens"] ?? -1, deltaUsage?["output_tokens"] ?? -1)

        // Gemini, streamed over SSE with x-goog-api-key.
        let gemini = try await rig.call("/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", token: "ignored",
                                        json: ["contents": [["parts": [["text": "Hello Gemini, how are you today?"]]]]], headers: ["Authorization": "", "x-goog-api-key": token])
        #expect(gemini.status == 200, "\(gemini.text)")
        let geminiLast = gemini.text.components(separatedBy: .newlines).filter { $0.hasPrefix("data:") }.last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.dropFirst(5).utf8)) as? [String: Any] }
        let metadata = geminiLast?["usageMetadata"] as? [String: Int]
        add("gemini", metadata?["promptTokenCount"] ?? -1, metadata?["candidatesTokenCount"] ?? -1)

        // ElevenLabs text-to-speech: characters, and half a credit per call.
        let speech = "Twenty-nine characters spoken"
        let tts = try await rig.call("/elevenlabs/v1/text-to-speech/voice123", token: "ignored", json: ["text": speech, "model_id": "eleven_v3"],
                                     headers: ["Authorization": "", "xi-api-key": token])
        #expect(tts.status == 200 && tts.headers["content-type"] == "audio/mpeg")

        try await rig.eventually("every call is metered") {
            let report = try await rig.usage("workspace=\(ws)&group_by=provider")
            return (report["totals"] as? [String: Any])?["requests"] as? Int == 6
        }
        let report = try await rig.usage("workspace=\(ws)&group_by=provider")
        let groups = Dictionary(uniqueKeysWithValues: ((report["groups"] as? [[String: Any]]) ?? []).map { ($0["key"] as? String ?? "", $0) })
        for (provider, counts) in expected {
            #expect(groups[provider]?["tokens_in"] as? Int == counts.input, "\(provider) input: \(groups[provider] ?? [:]) vs \(counts)")
            #expect(groups[provider]?["tokens_out"] as? Int == counts.output, "\(provider) output: \(groups[provider] ?? [:]) vs \(counts)")
            #expect(counts.input > 0 && counts.output > 0)
        }
        #expect(groups["elevenlabs"]?["characters"] as? Int == speech.count)
        #expect(groups["elevenlabs"]?["credits"] as? Double == 0.5)
        #expect((report["totals"] as? [String: Any])?["credits"] as? Double == 5.5)
        let bySource = try await rig.usage("workspace=\(ws)&group_by=source")
        #expect(((bySource["groups"] as? [[String: Any]]) ?? []).map { $0["key"] as? String } == ["byok"])
        let byModel = try await rig.usage("workspace=\(ws)&group_by=model")
        let models = Set(((byModel["groups"] as? [[String: Any]]) ?? []).compactMap { $0["key"] as? String })
        #expect(models.isSuperset(of: ["gpt-5.4-mini", "claude-sonnet-4-6", "gemini-2.5-flash", "eleven_v3"]), "\(models)")
        let metrics = try await TestHTTP.get(rig.base + "/metrics")
        #expect(metrics.text.contains(#"keywarden_gateway_requests_total{provider="anthropic",source="byok",status="2xx"} 1"#))
        let overheadCount = metrics.text.split(separator: "\n").first { $0.hasPrefix("keywarden_gateway_overhead_seconds_count") }
        #expect(overheadCount.flatMap { $0.split(separator: " ").last }.flatMap { Int($0) } ?? 0 >= 6, "\(overheadCount ?? "no overhead histogram")")
        #expect(!metrics.text.contains(ws), "no workspace in metric labels")
    }

    @Test("the vendor never sees the Keywarden token; the client, the logs and the metrics never see the vendor key")
    func secretsStayWhereTheyBelong() async throws {
        let rig = try await GatewayRig()
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Canary")
        let token = try await rig.serviceToken(ws)
        let canary = "sk-canary-revoked-7Hq2mZ9xL4"
        _ = try await rig.key(ws, secret: canary)

        // Only key refused: the vendor's 401 goes back, with the key it echoed removed.
        let refused = try await rig.call("/openai/v1/chat/completions?trace=1", token: token, json: GatewayRig.chat,
                                         headers: ["X-Keywarden-Consumer": "bot", "OpenAI-Beta": "assistants=v2", "Connection": "keep-alive, X-Private-Hop", "X-Private-Hop": "1"])
        #expect(refused.status == 401)
        let seenByClient = refused.text + refused.headers.description
        #expect(!seenByClient.contains(canary) && !seenByClient.contains(String(canary.suffix(8))) && !seenByClient.contains(String(canary.prefix(9))), "\(seenByClient)")

        // (The refusal also triggers a health check of the key: look at the chat call itself.)
        let sent = try await rig.mocks.requests("openai").first { $0["path"] as? String == "/v1/chat/completions" }
        let headers = sent?["headers"] as? [String: String] ?? [:]
        #expect(headers["authorization"] == "Bearer \(canary)")
        #expect(!(String(describing: sent ?? [:])).contains(token), "the vendor never sees the Keywarden token")
        #expect(headers.keys.allSatisfy { !$0.hasPrefix("x-keywarden") }, "\(headers.keys)")
        #expect(headers["openai-beta"] == "assistants=v2", "end-to-end headers are forwarded")
        #expect(headers["x-private-hop"] == nil, "headers named by Connection are hop-by-hop")
        #expect(sent?["query"] as? [String: String] == ["trace": "1"])

        let metrics = try await TestHTTP.get(rig.base + "/metrics")
        let usage = try await rig.usage("workspace=\(ws)&group_by=key")
        await rig.stop(mocksToo: true)
        for text in [rig.server.stdout, rig.server.stderr, metrics.text, String(describing: usage)] {
            #expect(!text.contains(canary) && !text.contains(token))
        }
    }

    @Test("a vendor that sends no response head in time, or cannot be reached, is failed over; the last failure has a stable code")
    func timeoutAndConnectFailures() async throws {
        // Mistral's upstream is a port nobody listens on.
        let rig = try await GatewayRig(environment: ["KEYWARDEN_UPSTREAM_MISTRAL": "http://127.0.0.1:1"])
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Slow")
        let token = try await rig.serviceToken(ws)
        _ = try await rig.key(ws, secret: "sk-slow-vendor-0900")
        let spare = try await rig.key(ws, secret: "sk-spare-then-0901", role: "fallback")
        let started = ContinuousClock.now
        let reply = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(reply.status == 200 && reply.headers["x-keywarden-key"] == spare && reply.headers["x-keywarden-attempts"] == "2")
        #expect(ContinuousClock.now - started >= .seconds(2), "the first key had its two seconds")

        try await rig.api("POST", "/api/v1/workspaces/\(ws)/keys/\(spare)/deactivate", expect: 200)
        let timedOut = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(timedOut.status == 504 && timedOut.json.errorCode == "upstream_timeout", "\(timedOut.status) \(timedOut.text)")

        _ = try await rig.key(ws, provider: "mistral", secret: "sk-mistral-unreachable-0902")
        let refused = try await rig.call("/mistral/v1/chat/completions", token: token, json: ["model": "mistral-small-latest", "messages": []])
        #expect(refused.status == 502 && refused.json.errorCode == "upstream_unreachable", "\(refused.status) \(refused.text)")
        let metrics = try await TestHTTP.get(rig.base + "/metrics")
        #expect(metrics.text.contains(#"keywarden_gateway_failovers_total{provider="openai",reason="timeout"} 2"#), "\(metrics.text)")
    }

    @Test("usage buffered at SIGTERM is written before the process exits")
    func usageFlushedOnGracefulShutdown() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("kw-gw-\(UUID().uuidString)")
        let mocks = try await MockVendorsProcess(vendors: ["openai"])
        // Flush only every 10 minutes: what is written, shutdown wrote.
        let rig = try await GatewayRig(environment: ["KEYWARDEN_USAGE_FLUSH": "600"], mocks: mocks, data: data)
        try await rig.platformCard("openai", secret: "sk-platform-flush-0500")
        for _ in 0..<7 {
            #expect(try await rig.call("/openai/v1/chat/completions", token: rig.adminToken, json: GatewayRig.chat).status == 200)
        }
        rig.server.signal(SIGTERM)
        #expect(try await rig.server.wait(timeout: .seconds(20)).status == 0)

        let again = try await GatewayRig(mocks: mocks, data: data)
        defer { Task { await again.stop() } }
        // The admin token was printed on the first run only.
        let report = try await again.api("GET", "/api/v1/usage?group_by=provider", token: rig.adminToken, expect: 200)
        #expect((report["totals"] as? [String: Any])?["requests"] as? Int == 7, "\(report)")
    }

    @Test("HEAD and OPTIONS reach the vendor on the native face as GET does: its status and headers come back, no body; a platform key takes HEAD where it takes GET")
    func headAndOptionsReachTheVendor() async throws {
        let rig = try await GatewayRig(vendors: ["openai"])
        defer { Task { await rig.stop() } }
        try await rig.platformCard("openai", secret: "sk-platform-head-0601")
        let ws = try await rig.workspace("Heads")
        let token = try await rig.serviceToken(ws)
        _ = try await rig.key(ws, secret: "sk-own-head-0602")

        let got = try await TestHTTP.send("GET", rig.base + "/openai/v1/models", headers: ["Authorization": "Bearer \(token)"])
        let head = try await TestHTTP.send("HEAD", rig.base + "/openai/v1/models", headers: ["Authorization": "Bearer \(token)"])
        #expect(got.status == 200 && head.status == 200 && head.text.isEmpty, "\(head.status) \(head.text)")
        #expect(head.headers["content-type"] == got.headers["content-type"] && head.headers["x-keywarden-source"] == "byok")
        let options = try await TestHTTP.send("OPTIONS", rig.base + "/openai/v1/chat/completions", headers: ["Authorization": "Bearer \(token)"])
        #expect(options.status == 204 && options.headers["allow"] == "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" && options.headers["x-mock-options"] == "1", "\(options.status) \(options.text)")
        let seen = try await rig.mocks.requests("openai").map { "\($0["method"] as? String ?? "") \($0["path"] as? String ?? "")" }
        #expect(seen.contains("HEAD /v1/models") && seen.contains("OPTIONS /v1/chat/completions"), "\(seen)")
        // Without a token of its own, OPTIONS is refused like any other call (a browser's preflight is not answered).
        let anonymous = try await TestHTTP.send("OPTIONS", rig.base + "/openai/v1/chat/completions")
        #expect(anonymous.status == 401)
        // The platform's key serves only its inference endpoints: OPTIONS is not one, and HEAD goes where GET may.
        let other = try await rig.workspace("Shared")
        let sharedToken = try await rig.serviceToken(other)
        let sharedOptions = try await TestHTTP.send("OPTIONS", rig.base + "/openai/v1/chat/completions", headers: ["Authorization": "Bearer \(sharedToken)"])
        #expect(sharedOptions.status == 403 && sharedOptions.json.errorCode == "endpoint_not_allowed", "\(sharedOptions.status) \(sharedOptions.text)")
        let sharedGet = try await TestHTTP.send("GET", rig.base + "/openai/v1/models", headers: ["Authorization": "Bearer \(sharedToken)"])
        let sharedHead = try await TestHTTP.send("HEAD", rig.base + "/openai/v1/models", headers: ["Authorization": "Bearer \(sharedToken)"])
        #expect(sharedHead.status == sharedGet.status, "\(sharedGet.status) \(sharedHead.status)")
    }

    @Test("Gemini's per-minute 429 rests the key for its RetryInfo delay only (a call 1.5 s later is served by it); a spent daily quota turns the key off, and the recheck brings it back by itself")
    func geminiThrottlesReadInItsOwnWords() async throws {
        // Shrunk: a recheck every 2 s (15 min by default), and a refused key's rest (60 s) shorter than it, as by default.
        let rig = try await GatewayRig(environment: ["KEYWARDEN_QUOTA_RECHECK": "2", "KEYWARDEN_HEALTH_TICK": "0.2", "KEYWARDEN_GATEWAY_REJECTED_COOLDOWN": "1"],
                                       vendors: ["gemini"])
        defer { Task { await rig.stop() } }
        let path = "/gemini/v1beta/models/gemini-2.5-flash:generateContent"
        let body: [String: Any] = ["contents": [["role": "user", "parts": [["text": "hi"]]]]]

        let ws = try await rig.workspace("Per minute")
        let token = try await rig.serviceToken(ws)
        let key = try await rig.key(ws, provider: "gemini", secret: "AIzaSy-perminute-0801-abcdefghijklmnopq")
        let limited = try await rig.call(path, token: token, json: body)
        #expect(limited.status == 429, "\(limited.status) \(limited.text)")
        try await Task.sleep(for: .milliseconds(1500))
        let served = try await rig.call(path, token: token, json: body)
        #expect(served.status == 200, "a call 1.5 s later: \(served.status) \(served.text)")
        let status = try await rig.api("GET", "/api/v1/workspaces/\(ws)/keys/\(key)")["status"] as? String
        #expect(status != "quota_exceeded", "a minute's limit is no spent quota: \(status ?? "nil")")

        let daily = try await rig.workspace("Per day")
        let dailyToken = try await rig.serviceToken(daily)
        let dailyKey = try await rig.key(daily, provider: "gemini", secret: "AIzaSy-dailyquota-0802-abcdefghijklmnop")
        let spent = try await rig.call(path, token: dailyToken, json: body)
        #expect(spent.status == 429, "\(spent.status) \(spent.text)")
        try await rig.eventually("the key is recorded out of quota") {
            try await rig.api("GET", "/api/v1/workspaces/\(daily)/keys/\(dailyKey)")["status"] as? String == "quota_exceeded"
        }
        let off = try await rig.call(path, token: dailyToken, json: body)
        #expect(off.status == 422 && off.json.errorCode == "no_key_available", "\(off.status) \(off.text)")
        // The vendor's quota comes back (2.5 s); the recheck (every 2 s here) sees it, and the key serves again.
        try await rig.eventually("the recheck brings the key back", timeout: .seconds(15)) {
            try await rig.api("GET", "/api/v1/workspaces/\(daily)/keys/\(dailyKey)")["status"] as? String == "valid"
        }
        // The recorded status reaches this instance's resolution through the change log (milliseconds; longer on a loaded
        // machine): the key serves once it has.
        try await rig.eventually("the key serves again", timeout: .seconds(5)) {
            try await rig.call(path, token: dailyToken, json: body).status == 200
        }
        let back = try await rig.call(path, token: dailyToken, json: body)
        #expect(back.status == 200, "\(back.status) \(back.text)")
    }

    @Test("a Gemini resumable upload's session URL is rewritten to Keywarden's face, so both legs pass through it with the key injected; a Keywarden token in ?key= authenticates and never reaches the vendor")
    func geminiUploadsPassThrough() async throws {
        let rig = try await GatewayRig(vendors: ["gemini"])
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Uploads")
        let token = try await rig.serviceToken(ws)
        let vendorKey = "AIzaSyQ7x0901kLmNoPqRsTuVwXyZaBcDeF12"
        _ = try await rig.key(ws, provider: "gemini", secret: vendorKey)

        let start = try await TestHTTP.send("POST", rig.base + "/gemini/upload/v1beta/files", body: Data(#"{"file":{"display_name":"notes"}}"#.utf8), headers: [
            "x-goog-api-key": token, "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": "16", "X-Goog-Upload-Header-Content-Type": "text/plain", "Content-Type": "application/json",
        ])
        let seenByMock = try await rig.mocks.requests("gemini")
        let session = try #require(start.headers["x-goog-upload-url"], "\(start.status) \(start.headers) \(seenByMock)")
        #expect(start.status == 200 && session.hasPrefix(rig.base + "/gemini/upload/v1beta/files?upload_id="), "\(session)")
        // The upload's legs carry no key (Google's session URL is the credential): the grant in the rewritten URL lets exactly
        // this session through; altered, moved to another upload, or on another path, it lets nothing through.
        #expect(session.contains("kw_session=v1.gemini."), "\(session)")
        for forged in [session.replacingOccurrences(of: "kw_session=v1.gemini.", with: "kw_session=v1.gemini.x"),
                       session.replacingOccurrences(of: "upload_id=", with: "upload_id=other"),
                       session.replacingOccurrences(of: "/upload/v1beta/files", with: "/v1beta/files"),
                       session.replacingOccurrences(of: "/gemini/", with: "/openai/")] {
            let refused = try await TestHTTP.send("POST", forged, body: Data("x".utf8), headers: ["X-Goog-Upload-Command": "upload, finalize"])
            #expect(refused.status == 401, "\(forged): \(refused.status) \(refused.text)")
        }
        let uploaded = try await TestHTTP.send("POST", session, body: Data("hello file bytes".utf8), headers: [
            "X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0",
        ])
        let file = uploaded.json["file"] as? [String: Any]
        #expect(uploaded.status == 200 && uploaded.headers["x-goog-upload-status"] == "final" && file?["displayName"] as? String == "hello file bytes",
                "\(uploaded.status) \(uploaded.text)")
        let legs = try await rig.mocks.requests("gemini").filter { $0["path"] as? String == "/upload/v1beta/files" }
        #expect(legs.count == 2 && legs.allSatisfy { ($0["headers"] as? [String: String])?["x-goog-api-key"] == vendorKey }, "\(legs)")
        #expect((legs.last?["query"] as? [String: String])?["upload_id"]?.hasPrefix("mock-") == true)
        #expect((legs.last?["query"] as? [String: String])?["kw_session"] == nil, "the grant never reaches the vendor")

        // The token as Gemini's ?key= (and under any other name) authenticates, and is taken out of the query.
        try await rig.mocks.clear()
        let path = "/gemini/v1beta/models/gemini-2.5-flash:generateContent?alt=sse&key=\(token)&note=\(token)"
        let byQuery = try await TestHTTP.send("POST", rig.base + path, body: Data(#"{"contents":[{"parts":[{"text":"hi"}]}]}"#.utf8),
                                              headers: ["Content-Type": "application/json"])
        #expect(byQuery.status == 200, "\(byQuery.status) \(byQuery.text)")
        let sent = try await rig.mocks.requests("gemini").last
        #expect(sent?["query"] as? [String: String] == ["alt": "sse"], "\(String(describing: sent?["query"]))")
        #expect(!String(describing: sent ?? [:]).contains(token))
    }

    @Test("bad gateway input gets a clear error with a stable code")
    func badInput() async throws {
        // A generous first-byte deadline: the 5 MiB upload below must not race it on a loaded machine.
        let rig = try await GatewayRig(environment: ["KEYWARDEN_GATEWAY_TIMEOUT": "60"], vendors: ["openai"])
        defer { Task { await rig.stop() } }
        try await rig.platformCard("openai", secret: "sk-platform-bad-0600")
        let other = try await rig.workspace("Other")
        let viewerLike = try await rig.serviceToken(other, permissions: ["keys.read"])
        let cases: [(String, [String: String], Data?, Int, String)] = [
            ("/openai/v1/chat/completions", [:], Data("{}".utf8), 401, "unauthorized"),
            ("/openai/v1/chat/completions", ["Authorization": "Bearer kw_not_a_real_token_000000000000000000000"], Data("{}".utf8), 401, "invalid_token"),
            ("/openai/v1/chat/completions", ["Authorization": "Bearer \(viewerLike)"], Data("{}".utf8), 403, "forbidden"),
            ("/openai/v1/chat/completions", ["Authorization": "Bearer \(rig.adminToken)", "X-Keywarden-Workspace": "ws_nope"], Data("{}".utf8), 404, "not_found"),
            ("/v1/chat/completions", ["Authorization": "Bearer \(rig.adminToken)"], Data("not json".utf8), 400, "invalid_request"),
            ("/v1/chat/completions", ["Authorization": "Bearer \(rig.adminToken)"], Data(#"{"model":"no-such-model"}"#.utf8), 400, "unknown_model"),
            ("/v1/chat/completions", ["Authorization": "Bearer \(rig.adminToken)", "X-Keywarden-Provider": "acme"], Data(#"{"model":"x"}"#.utf8), 400, "invalid_field"),
            ("/openai/v1/chat/completions", ["Authorization": "Bearer \(rig.adminToken)", "X-Keywarden-Modality": "telepathy"], Data("{}".utf8), 400, "invalid_field"),
        ]
        for (path, headers, body, status, code) in cases {
            let reply = try await TestHTTP.send("POST", rig.base + path, body: body, headers: headers)
            #expect(reply.status == status && reply.json.errorCode == code, "\(path) \(headers): \(reply.status) \(reply.text)")
        }
        // A JSON body past the replay limit is kept whole to be read (up to 32 MiB) and served.
        let big = Data(("{\"model\":\"gpt-5.4-mini\",\"pad\":\"" + String(repeating: "x", count: 5 * 1024 * 1024) + "\"}").utf8)
        let reply = try await TestHTTP.send("POST", rig.base + "/openai/v1/chat/completions", body: big, headers: ["Authorization": "Bearer \(rig.adminToken)", "Content-Type": "application/json"])
        #expect(reply.status == 200 && reply.headers["x-keywarden-attempts"] == "1", "\(reply.status) \(reply.text.prefix(200))")
        #expect(try await TestHTTP.get(rig.base + "/healthz").status == 200)
    }
}

extension Dictionary where Key == String, Value == Any {
    var errorCode: String? { (self["error"] as? [String: Any])?["code"] as? String }
    var errorMessage: String? { (self["error"] as? [String: Any])?["message"] as? String }
}

@Suite("Vendor SDKs through the gateway", .serialized)
struct SDKTests {
    @Test("the official openai and anthropic Python SDKs complete a chat and a streamed chat with only base_url and api_key changed")
    func officialSDKs() async throws {
        let rig = try await GatewayRig(vendors: ["openai", "anthropic"])
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("SDK")
        let token = try await rig.serviceToken(ws)
        _ = try await rig.key(ws, secret: "sk-sdk-openai-0700")
        _ = try await rig.key(ws, provider: "anthropic", secret: "sk-ant-sdk-0701")

        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = root.appendingPathComponent("scripts/sdk-test.py").path
        let python = try await PythonPeers.python(for: ["openai", "anthropic"])
        let arguments = PythonPeers.arguments(python, script: script, [rig.base, token])
        let sdk = try ChildProcess(python, arguments)
        await sdk.wait(timeout: .seconds(300))
        let output = sdk.stdoutData, errors = sdk.stderr
        try #require(sdk.terminationStatus == 0, "sdk-test.py failed (pip install openai anthropic?): \(errors)")
        let results = try #require(try JSONSerialization.jsonObject(with: output) as? [String: Any])

        let chat = results["openai_chat"] as? [String: Any]
        #expect(chat?["text"] as? String == "Hello from the openai mock.")
        #expect((chat?["completion_tokens"] as? Int ?? 0) > 0)
        #expect((results["openai_headers"] as? [String: String])?["x-keywarden-source"] == "byok")
        let stream = results["openai_stream"] as? [String: Any]
        #expect(stream?["text"] as? String == "Hello from the openai mock." && (stream?["chunks"] as? Int ?? 0) >= 5)
        #expect((results["openai_stream_unasked"] as? [String: Any])?["text"] as? String == "Hello from the openai mock.")
        let compatible = results["compatible_chat"] as? [String: Any]
        #expect(compatible?["text"] as? String == "Hello from the anthropic mock." && compatible?["provider"] as? String == "anthropic")
        let message = results["anthropic_message"] as? [String: Any]
        #expect(message?["text"] as? String == "Hello from the anthropic mock." && (message?["input_tokens"] as? Int ?? 0) > 0)
        let anthropicStream = results["anthropic_stream"] as? [String: Any]
        #expect(anthropicStream?["text"] as? String == "Hello from the anthropic mock." && anthropicStream?["output_tokens"] as? Int == 5)
        #expect(results["bad_token"] as? Int == 401)
        // Left out: the anthropic key has no default model of its own, so the catalog's; max tokens the catalog's 4096.
        let defaults = results["anthropic_defaults"] as? [String: Any]
        #expect(defaults?["text"] as? String == "Hello from the anthropic mock." && defaults?["model"] as? String == "claude-opus-4-7")
        let defaultModel = results["compatible_default_model"] as? [String: Any]
        #expect(defaultModel?["text"] as? String == "Hello from the anthropic mock." && defaultModel?["model"] as? String == "claude-opus-4-7")

        // Neither vendor saw the Keywarden token; each saw its own key in its own header.
        let openaiSeen = try await rig.mocks.requests("openai")
        let anthropicSeen = try await rig.mocks.requests("anthropic")
        #expect(!openaiSeen.isEmpty && !anthropicSeen.isEmpty)
        #expect(!String(describing: openaiSeen + anthropicSeen).contains(token))
        #expect(anthropicSeen.contains { ($0["headers"] as? [String: String])?["x-api-key"] == "sk-ant-sdk-0701" })
        #expect(anthropicSeen.contains { ($0["body"] as? String)?.hasPrefix(#"{"model":"claude-opus-4-7","max_tokens":4096,"#) == true },
                "the Messages call that left both out reached the vendor with the defaults in front")
        try await rig.eventually("nine SDK calls metered, the streams with their tokens") {
            let report = try await rig.usage("workspace=\(ws)&group_by=provider")
            let openai = ((report["groups"] as? [[String: Any]]) ?? []).first { $0["key"] as? String == "openai" }
            // Plain chat, raw chat and two streams, each 5 tokens out (the unasked stream was asked for usage by the gateway).
            return (report["totals"] as? [String: Any])?["requests"] as? Int == 9 && openai?["tokens_out"] as? Int == 20
        }
    }
}

/// Stamps each part of an answer with the time it reached the event loop.
private final class ArrivalStamps: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = Void
    private let lock = NSLock()
    private var status = 0
    private var headers = HTTPHeaders()
    private var chunks: [(ContinuousClock.Instant, String)] = []

    var seen: (status: Int, headers: HTTPHeaders, chunks: [(ContinuousClock.Instant, String)]) {
        lock.withLock { (status, headers, chunks) }
    }

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        lock.withLock { status = Int(head.status.code); headers = head.headers }
        return task.eventLoop.makeSucceededFuture(())
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let now = ContinuousClock.now
        lock.withLock { chunks.append((now, String(buffer: buffer))) }
        return task.eventLoop.makeSucceededFuture(())
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {}
}
