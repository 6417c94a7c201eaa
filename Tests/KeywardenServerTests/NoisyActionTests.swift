import Foundation
import Hummingbird
import HummingbirdTesting
import KeywardenCore
import KeywardenServer
import Testing

/// Noisy actions are bounded per workspace and per client; /metrics can be closed to everyone but its scraper.
@Suite("Noisy actions and /metrics")
struct NoisyActionTests {
    @Test("Test is limited per workspace: past the limit a 429 with Retry-After, and another workspace is not held back")
    func keyTestsAreLimited() async throws {
        // OpenAI at a closed local port and a 1 s deadline: each Test ends quickly, so the calls fit inside the limit's minute.
        let catalog = try ProviderCatalog.load().applyingUpstreamOverrides(from: ["KEYWARDEN_UPSTREAM_OPENAI": "http://127.0.0.1:9"])
        let settings = ServerSettings(host: "127.0.0.1", port: 0, verifyTimeoutSeconds: 1, limits: NoisyActionLimits(keyTestsPerMinute: 4))
        try await APIHarness.run(settings: settings, catalog: catalog) { harness, api in
            let busy = try await api.createWorkspace("Busy")
            let quiet = try await api.createWorkspace("Quiet")
            let key = try await api.createKey(busy, description: "k", key: "sk-noisy-abcdefghijkl")["id"] as? String ?? ""
            let other = try await api.createKey(quiet, description: "k", key: "sk-quiet-abcdefghijkl")["id"] as? String ?? ""
            var statuses: [Int] = []
            var retryAfter: String?
            for _ in 0..<6 {
                let reply = try await api.post("/api/v1/workspaces/\(busy)/keys/\(key)/test", token: harness.adminToken)
                statuses.append(reply.status)
                if reply.status == 429 { retryAfter = reply.headers["retry-after"]; #expect(reply.errorCode == "rate_limited") }
            }
            #expect(statuses.prefix(4).allSatisfy { $0 != 429 }, "\(statuses)")
            #expect(statuses.suffix(2).allSatisfy { $0 == 429 }, "\(statuses)")
            #expect(Int(retryAfter ?? "").map { (1...60).contains($0) } == true)
            #expect(try await api.post("/api/v1/workspaces/\(quiet)/keys/\(other)/test", token: harness.adminToken).status != 429)
        }
    }

    @Test("failed sign-ins are limited per client address: the eleventh in a minute is a 429, and a valid token still signs in")
    func signInIsLimited() async throws {
        try await APIHarness.run { harness, api in
            var last = 0
            func attempt(_ token: String) async throws -> Int {
                let page = try await api.client.execute(uri: "/login", method: .get) { response in
                    (response.headers[.setCookie] ?? "", String(buffer: response.body))
                }
                let cookie = page.0.split(separator: ";").first.map(String.init) ?? ""
                let marker = #"name="csrf_token" value=""#
                let csrf = page.1.range(of: marker).map { String(page.1[$0.upperBound...].prefix { $0 != "\"" }) } ?? ""
                let headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded", .cookie: cookie]
                return try await api.client.execute(uri: "/login", method: .post, headers: headers,
                                                    body: ByteBuffer(string: "csrf_token=\(csrf)&token=\(token)")) { response in
                    Int(response.status.code)
                }
            }
            for _ in 0..<11 { last = try await attempt("kw_wrongwrongwrongwrongwrongwrongwrongwrongwro") }
            #expect(last == 429)
            let valid = try await attempt(harness.adminToken)
            #expect((300..<400).contains(valid), "a valid token signs in whatever the failures: \(valid)")
        }
    }

    @Test("with KEYWARDEN_METRICS_TOKEN, /metrics answers only its bearer")
    func metricsToken() async throws {
        let settings = ServerSettings(host: "127.0.0.1", port: 0, metricsToken: Secret("metrics-scraper-token-0001"))
        try await APIHarness.run(settings: settings) { (_, api) async throws in
            #expect(try await api.get("/metrics", token: nil).status == 401)
            #expect(try await api.get("/metrics", token: "wrong-token-000000000").status == 401)
            #expect(try await api.get("/metrics", token: "metrics-scraper-token-0001").status == 200)
        }
        try await APIHarness.run { (_, api) async throws in
            #expect(try await api.get("/metrics", token: nil).status == 200, "open when no token is configured")
        }
    }
}
