import Foundation
import KeywardenTestSupport
import Testing

/// A client that gives up (closes its connection) before or during the answer: the vendor's connection closes at once,
/// as it would had the client called the vendor itself, and the call is metered as the vendor bills it.
@Suite("Client departures", .serialized)
struct ClientDepartureTests {
    /// A raw request to the gateway's native Mistral face with `secret`'s workspace token.
    static func request(token: String, stream: Bool) -> String {
        let body = #"{"model":"mistral-small-latest","stream":\#(stream),"messages":[{"role":"user","content":"hi"}]}"#
        return "POST /mistral/v1/chat/completions HTTP/1.1\r\nHost: kw\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// The milliseconds the raw vendor says it waited before the caller closed, for each call it saw, in order.
    static func closings(_ output: String) -> [Int] {
        output.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("closed after ") else { return nil }
            return Int(line.dropFirst("closed after ".count).prefix { $0.isNumber })
        }
    }

    @Test("a client that closes before the answer's head, or mid-stream, closes the vendor's connection within a second; no other key is tried and the call is charged as received (499)")
    func departureClosesTheVendorConnection() async throws {
        let mocks = try await MockVendorsProcess(vendors: ["openai", "mistral=hostile-raw"])
        // A first-byte deadline far beyond the test: only the client's leaving can end these calls in time.
        let rig = try await GatewayRig(environment: ["KEYWARDEN_GATEWAY_TIMEOUT": "120", "KEYWARDEN_CREDITS": "*=3"], mocks: mocks)
        defer { Task { await rig.stop() } }
        let port = try #require(Int(rig.base.split(separator: ":").last ?? ""))
        let ws = try await rig.workspace("Leaving")
        let token = try await rig.serviceToken(ws)
        _ = try await rig.key(ws, provider: "mistral", secret: "sk-silenthead-primary-0701")
        // A fallback that would answer: a client that left must not make Keywarden try it.
        _ = try await rig.key(ws, provider: "mistral", secret: "sk-silenthead-fallback-0702", role: "fallback")

        // 1. Before the head: the client waits 1 s, then closes.
        let silent = try RawTCPConnection(port: port)
        silent.send(Self.request(token: token, stream: false))
        try await Task.sleep(for: .seconds(1))
        silent.close()
        try await rig.eventually("the vendor's connection closed after the client's", timeout: .seconds(5)) {
            Self.closings(mocks.output).count == 1
        }
        let waited = try #require(Self.closings(mocks.output).first)
        #expect(waited < 3_000, "the vendor waited \(waited) ms")

        // 2. Mid-stream: the client reads the first event, then closes; the vendor sends nothing more.
        let other = try await rig.workspace("Leaving mid-stream")
        let streamToken = try await rig.serviceToken(other)
        _ = try await rig.key(other, provider: "mistral", secret: "sk-stallstream-0703")
        let streaming = try RawTCPConnection(port: port)
        streaming.send(Self.request(token: streamToken, stream: true))
        let first = streaming.read(until: "Hel", limit: 10)
        #expect(first.contains("200 OK") && first.contains("Hel"), "\(first)")
        streaming.close()
        try await rig.eventually("the vendor's stream closed after the client's", timeout: .seconds(5)) {
            Self.closings(mocks.output).count == 2
        }
        let streamWaited = try #require(Self.closings(mocks.output).last)
        #expect(streamWaited < 4_000, "the vendor's stream stayed open \(streamWaited) ms")

        // Exactly one row per call, each 499 and charged its estimate (`KEYWARDEN_CREDITS`): the vendor had the request whole.
        try await rig.eventually("both calls are metered") {
            let export = try await TestHTTP.get(rig.base + "/api/v1/usage/export?format=jsonl", headers: ["Authorization": "Bearer \(rig.adminToken)"])
            return export.text.split(separator: "\n").count >= 2
        }
        let export = try await TestHTTP.get(rig.base + "/api/v1/usage/export?format=jsonl", headers: ["Authorization": "Bearer \(rig.adminToken)"])
        let rows = export.text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let left = rows.filter { $0["workspace_id"] as? String == ws }
        #expect(left.count == 1 && left.first?["status"] as? Int == 499 && left.first?["attempts"] as? Int == 1, "\(left)")
        let cut = rows.filter { $0["workspace_id"] as? String == other }
        // A stream the client left is an interrupted call: 499 too, charged at least what it had used.
        #expect(cut.count == 1 && cut.first?["status"] as? Int == 499, "\(cut)")
        #expect(left.first?["credits"] as? Int == 3 && cut.first?["credits"] as? Int == 3, "\(left) \(cut)")
        #expect(Self.closings(mocks.output).count == 2, "no other key was called: \(mocks.output)")
        #expect(try await TestHTTP.get(rig.base + "/healthz").status == 200)
    }

    @Test("pipelined requests: the end of the first answer does not start the idle timer while the second is still being answered")
    func pipelinedAnswerIsNotCutByTheIdleTimer() async throws {
        let mocks = try await MockVendorsProcess(vendors: ["openai", "mistral=hostile-raw"])
        let rig = try await GatewayRig(environment: ["KEYWARDEN_GATEWAY_TIMEOUT": "120", "KEYWARDEN_IDLE_TIMEOUT": "1"], mocks: mocks)
        defer { Task { await rig.stop() } }
        let port = try #require(Int(rig.base.split(separator: ":").last ?? ""))
        let ws = try await rig.workspace("Pipelined")
        let token = try await rig.serviceToken(ws)
        _ = try await rig.key(ws, provider: "mistral", secret: "sk-stallstream-pipelined-0801")
        // Two requests at once on one connection: a quick one, then a stream whose vendor sends one event and stalls.
        let connection = try RawTCPConnection(port: port)
        connection.send("GET /healthz HTTP/1.1\r\nHost: kw\r\n\r\n" + Self.request(token: token, stream: true))
        let first = connection.read(until: "Hel", limit: 10)
        #expect(first.contains("200 OK") && first.contains("Hel"), "\(first)")
        // The idle limit (1 s) is not for a connection whose second answer is still streaming.
        #expect(connection.secondsUntilClosed(limit: 2.5) == nil, "the second answer was cut by the idle timer")
        connection.close()
    }
}
