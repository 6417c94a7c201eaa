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
        #expect(connection.secondsUntilClosed(limit: 3) != nil, "the connection stayed open")
    }
}
