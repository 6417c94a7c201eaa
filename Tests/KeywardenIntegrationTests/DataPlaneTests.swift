import Foundation
import KeywardenTestSupport
import Testing

/// The data plane in front of the router, on one client connection of the real binary: gateway calls and management
/// requests pipelined together are answered in the order they came; a call's `Connection: close` is obeyed.
@Suite("Data plane on the connection", .serialized)
struct DataPlaneTests {
    /// A raw chat call to the native OpenAI face.
    static func call(token: String, model: String, close: Bool = false) -> String {
        let body = #"{"model":"\#(model)","messages":[{"role":"user","content":"hi"}]}"#
        return "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: kw\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\n"
            + (close ? "Connection: close\r\n" : "") + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    @Test("gateway calls and management requests pipelined on one connection are answered in order, each whole")
    func pipelinedMixAnsweredInOrder() async throws {
        let rig = try await GatewayRig()
        defer { Task { await rig.stop() } }
        let port = try #require(Int(rig.base.split(separator: ":").last ?? ""))
        let ws = try await rig.workspace("Pipelined mix")
        let token = try await rig.serviceToken(ws)
        _ = try await rig.key(ws, provider: "openai", secret: "sk-proj-pipelined-mix-0901")

        let connection = try RawTCPConnection(port: port)
        defer { connection.close() }
        // Sent in one write: a call, a management request, a refused call, a call, an API request without a token.
        connection.send(Self.call(token: token, model: "gpt-4o-mini") + "GET /healthz HTTP/1.1\r\nHost: kw\r\n\r\n"
            + Self.call(token: "kw_svc_not-a-real-token-000000000000", model: "gpt-4o-mini") + Self.call(token: token, model: "gpt-4o")
            + "GET /api/v1/me HTTP/1.1\r\nHost: kw\r\n\r\n")
        let text = connection.read(until: "Send a Keywarden token", limit: 15)
        // The answers one after another (a body has no line end before the next status line).
        let answers = text.components(separatedBy: "HTTP/1.1 ").dropFirst()
        #expect(answers.map { String($0.prefix(3)) } == ["200", "200", "401", "200", "401"], "\(text)")
        // Each answer in its place: the first call's completion, the health body, the refusal, the second call's model.
        let marks = [#""model":"gpt-4o-mini""#, #""status":"ok""#, "invalid_token", #""model":"gpt-4o""#, "Send a Keywarden token"]
        for (answer, mark) in zip(answers, marks) {
            #expect(answer.contains(mark), "expected \(mark) in \(answer)")
            // Every answer says when and who, as the router's do (a vendor's own `Server` is not passed on).
            #expect(answer.contains("\r\nServer: Keywarden\r\n") && answer.contains(" GMT\r\n"), "\(answer)")
        }
        // The connection is still good for another call.
        connection.send(Self.call(token: token, model: "gpt-4.1"))
        #expect(connection.read(until: #""model":"gpt-4.1"#, limit: 10).contains("200 OK"))
    }

    @Test("a gateway call that asks Connection: close is answered whole, then the connection closes")
    func connectionCloseObeyed() async throws {
        let rig = try await GatewayRig()
        defer { Task { await rig.stop() } }
        let port = try #require(Int(rig.base.split(separator: ":").last ?? ""))
        let ws = try await rig.workspace("Closing")
        let token = try await rig.serviceToken(ws)
        _ = try await rig.key(ws, provider: "openai", secret: "sk-proj-closing-0902")
        let connection = try RawTCPConnection(port: port)
        defer { connection.close() }
        connection.send(Self.call(token: token, model: "gpt-4o-mini", close: true))
        let answer = connection.read(until: "\"usage\"", limit: 10)
        #expect(answer.contains("200 OK") && answer.contains(#""model":"gpt-4o-mini"#), "\(answer)")
        // The answer says the connection ends (RFC 9112 9.6).
        #expect(answer.lowercased().contains("\r\nconnection: close\r\n"), "\(answer)")
        #expect(connection.secondsUntilClosed(limit: 3) != nil, "the connection stayed open")

    }

    @Test("a router request that asks Connection: close ends the connection: a call pipelined behind it never reaches a vendor")
    func routerCloseStopsPipelinedCalls() async throws {
        let rig = try await GatewayRig()
        defer { Task { await rig.stop() } }
        let port = try #require(Int(rig.base.split(separator: ":").last ?? ""))
        let ws = try await rig.workspace("Closed before the call")
        let token = try await rig.serviceToken(ws)
        _ = try await rig.key(ws, provider: "openai", secret: "sk-proj-closed-before-0903")
        let connection = try RawTCPConnection(port: port)
        defer { connection.close() }
        connection.send("GET /healthz HTTP/1.1\r\nHost: kw\r\nConnection: close\r\n\r\n" + Self.call(token: token, model: "gpt-4o-mini"))
        let text = connection.read(until: "never-there", limit: 3)
        #expect(text.components(separatedBy: "HTTP/1.1 ").count == 2 && text.contains(#""status":"ok""#), "\(text)")
        let export = try await TestHTTP.get(rig.base + "/api/v1/usage/export?format=jsonl", headers: ["Authorization": "Bearer \(rig.adminToken)"])
        #expect(!export.text.contains(ws), "the pipelined call was made: \(export.text)")
    }

    @Test("a client that stops reading a streamed answer is given up on at the send timeout: the connection closes, the call is metered 499, the server answers others")
    func clientThatStopsReadingIsAbandoned() async throws {
        let rig = try await GatewayRig(environment: ["KEYWARDEN_SEND_TIMEOUT": "1"])
        defer { Task { await rig.stop() } }
        let port = try #require(Int(rig.base.split(separator: ":").last ?? ""))
        let ws = try await rig.workspace("Stopped reading")
        let token = try await rig.serviceToken(ws)
        // The vendor streams without end, as fast as it is taken.
        _ = try await rig.key(ws, provider: "openai", secret: "sk-floodstream-stopped-reading-0906")
        let body = #"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#
        let connection = try RawTCPConnection(port: port, receiveBuffer: 4096)
        defer { connection.close() }
        connection.send("POST /openai/v1/chat/completions HTTP/1.1\r\nHost: kw\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let first = connection.read(until: "flood flood", limit: 10)
        #expect(first.contains("200 OK") && first.contains("text/event-stream"), "\(first.prefix(400))")
        // The client reads no more: the buffers on the way fill within moments, and the server gives up a second later.
        let stopped = ContinuousClock.now
        let line = "the client took nothing of its answer within the send timeout"
        try await rig.eventually("the server gave the call up", timeout: .seconds(40)) { rig.server.stderr.contains(line) }
        let gaveUp = ContinuousClock.now - stopped
        // Liveness (a loaded machine drains the buffers slowly): SendTimeoutTests hold the timing itself.
        #expect(gaveUp >= .milliseconds(900) && gaveUp < .seconds(30), "given up after \(gaveUp)")
        #expect(!rig.server.stderr.contains(token) && !rig.server.stderr.contains("sk-floodstream"), "a secret in the log")
        // Closed: what the kernels' buffers held arrives, then the end (a stream still open would flow for ever).
        let closed = connection.secondsUntilClosed(limit: 10)
        #expect(closed != nil, "the connection stayed open")
        // Metered as a client that left mid-stream: 499, one row.
        try await rig.eventually("the call is metered") {
            let export = try await TestHTTP.get(rig.base + "/api/v1/usage/export?format=jsonl", headers: ["Authorization": "Bearer \(rig.adminToken)"])
            return export.text.contains(ws)
        }
        let export = try await TestHTTP.get(rig.base + "/api/v1/usage/export?format=jsonl", headers: ["Authorization": "Bearer \(rig.adminToken)"])
        let rows = export.text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["workspace_id"] as? String == ws }
        #expect(rows.count == 1 && rows.first?["status"] as? Int == 499, "\(rows)")
        // The server still answers, a call included.
        #expect(try await TestHTTP.get(rig.base + "/healthz").status == 200)
        let other = try await rig.workspace("Still served")
        _ = try await rig.key(other, provider: "openai", secret: "sk-proj-still-served-0907")
        let reply = try await rig.call("/openai/v1/chat/completions", token: try await rig.serviceToken(other), json: GatewayRig.chat)
        #expect(reply.status == 200, "\(reply.text)")
    }

    @Test("a whole answer written at once to a client that never reads is given up on at the send timeout too")
    func wholeAnswerToAClientThatNeverReads() async throws {
        // The mock takes its time over megabytes (a debug build, a loaded machine): the rig's 2 s for the vendor's head
        // would end the call with a small 504 before any answer is written.
        let rig = try await GatewayRig(environment: ["KEYWARDEN_SEND_TIMEOUT": "1", "KEYWARDEN_GATEWAY_REPLAY_LIMIT": "\(24 << 20)",
                                                     "KEYWARDEN_GATEWAY_TIMEOUT": "120"])
        defer { Task { await rig.stop() } }
        let port = try #require(Int(rig.base.split(separator: ":").last ?? ""))
        let ws = try await rig.workspace("Never reads")
        let token = try await rig.serviceToken(ws)
        _ = try await rig.key(ws, provider: "anthropic", secret: "sk-ant-api03-never-reads-0908")
        // An OpenAI-shaped call answered by Anthropic, not streamed: the answer is translated whole and written in one
        // write. The mock echoes a tool's result: ~3.9 MB (at ~5.6 MB the answer is not translated: 502), more than the kernels' buffers on the way take (~3 MB seen
        // here; Linux's default ceiling for a socket's send buffer, tcp_wmem, is 4 MiB: a machine whose buffers take more would see no stall).
        let result = String(repeating: "result ", count: 560_000)
        let body = #"{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"Weather?"},"#
            + #"{"role":"assistant","content":null,"tool_calls":[{"id":"call_big","type":"function","function":{"name":"weather","arguments":"{}"}}]},"#
            + #"{"role":"tool","tool_call_id":"call_big","content":"\#(result)"}],"#
            + #""tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object","properties":{}}}}]}"#
        let connection = try RawTCPConnection(port: port, receiveBuffer: 4096)
        defer { connection.close() }
        connection.send("POST /v1/chat/completions HTTP/1.1\r\nHost: kw\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\n"
            + "X-Keywarden-Provider: anthropic\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        // The client reads nothing at all.
        let sent = ContinuousClock.now
        let line = "the client took nothing of its answer within the send timeout"
        // A debug build parses and translates megabytes slowly: the bound is liveness; SendTimeoutTests hold the timing.
        try await rig.eventually("the server gave the answer up", timeout: .seconds(90)) { rig.server.stderr.contains(line) }
        let gaveUp = ContinuousClock.now - sent
        #expect(gaveUp >= .milliseconds(900) && gaveUp < .seconds(90), "given up after \(gaveUp)")
        let closed = connection.secondsUntilClosed(limit: 10)
        #expect(closed != nil, "the connection stayed open")
        #expect(try await TestHTTP.get(rig.base + "/healthz").status == 200)
    }

    @Test("a trailing slash on a unified face is the same face")
    func spellings() async throws {
        let rig = try await GatewayRig()
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Spellings")
        let token = try await rig.serviceToken(ws)
        _ = try await rig.key(ws, provider: "openai", secret: "sk-proj-spellings-0904")
        let body = Data(#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#.utf8)
        let headers = ["Authorization": "Bearer \(token)", "Content-Type": "application/json"]
        let slash = try await TestHTTP.send("POST", rig.base + "/v1/chat/completions/", body: body, headers: headers)
        #expect(slash.status == 200, "\(slash.text)")
    }

    @Test("a call's chunked body that breaks HTTP's framing is answered once (400 malformed_body), never by the router too, and the connection closes")
    func malformedChunkAnsweredOnce() async throws {
        let rig = try await GatewayRig()
        defer { Task { await rig.stop() } }
        let port = try #require(Int(rig.base.split(separator: ":").last ?? ""))
        let ws = try await rig.workspace("Broken chunks")
        let token = try await rig.serviceToken(ws)
        _ = try await rig.key(ws, provider: "openai", secret: "sk-proj-broken-chunks-0905")
        let connection = try RawTCPConnection(port: port)
        defer { connection.close() }
        connection.send("POST /openai/v1/chat/completions HTTP/1.1\r\nHost: kw\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"mod\r\nZZ-not-a-size\r\n")
        let text = connection.read(until: "never-there", limit: 3)
        let answers = text.components(separatedBy: "HTTP/1.1 ").dropFirst()
        #expect(answers.count == 1 && answers.first?.hasPrefix("400") == true && text.contains("malformed_body"), "\(text)")
        #expect(connection.secondsUntilClosed(limit: 3) != nil, "the connection stayed open")
    }

    @Test("a graceful shutdown closes a connection whose call was refused while its body still trickles in, without waiting for the body")
    func shutdownDoesNotWaitForARefusedBody() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("kw-dp-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        let server = try KeywardenProcess(["serve", "--data", data.path, "--port", "0"], environment: ["KEYWARDEN_SHUTDOWN_TIMEOUT": "20"])
        defer { server.signal(SIGKILL) }
        let port = try await server.waitUntilListening()
        let connection = try RawTCPConnection(port: port)
        defer { connection.close() }
        connection.send("POST /openai/v1/chat/completions HTTP/1.1\r\nHost: kw\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
        #expect(connection.read(until: "unauthorized", limit: 5).contains("401"))
        connection.send("  ")
        let started = ContinuousClock.now
        server.signal(SIGTERM)
        #expect(connection.secondsUntilClosed(limit: 10) != nil, "the connection stayed open through the shutdown")
        _ = try await server.wait(timeout: .seconds(15))
        #expect(ContinuousClock.now - started < .seconds(8), "the shutdown waited \(ContinuousClock.now - started)")
    }
}
