import AsyncHTTPClient
import Foundation
import KeywardenTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// The real `keywarden` binary in front of the real mock vendors, with an admin token and helpers.
final class GatewayRig: Sendable {
    let mocks: MockVendorsProcess
    let server: KeywardenProcess
    let base: String
    let adminToken: String
    let data: URL
    /// The rig's PostgreSQL database when the tests run on PostgreSQL (kept in the data directory across restarts).
    let databaseURL: String?

    static let managed = ["KEYWARDEN_MANAGED_PROVIDER": "anthropic", "KEYWARDEN_MANAGED_MODEL": "claude-haiku-4-5"]

    /// - Parameter engine: the database engine (the test run's by default); `.postgres` needs `KEYWARDEN_TEST_POSTGRES_URL`.
    init(environment: [String: String] = [:], mocks: MockVendorsProcess? = nil, data: URL? = nil, vendors: [String]? = nil,
         engine: TestDatabase.Engine = TestDatabase.engine) async throws {
        let mocks = if let mocks { mocks } else { try await MockVendorsProcess(vendors: vendors) }
        self.mocks = mocks
        let data = data ?? FileManager.default.temporaryDirectory.appendingPathComponent("kw-gw-\(UUID().uuidString)")
        self.data = data
        var env = mocks.upstreamEnvironment
        let remembered = data.appendingPathComponent(".test-database-url")
        if engine == .postgres {
            var url = (try? String(contentsOf: remembered, encoding: .utf8)) ?? ""
            if url.isEmpty { url = try await TestDatabase.create() }
            try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
            try url.write(to: remembered, atomically: true, encoding: .utf8)
            env["KEYWARDEN_DATABASE_URL"] = url
            databaseURL = url
        } else {
            databaseURL = nil
        }
        env["KEYWARDEN_ALLOW_PRIVATE_TARGETS"] = "1"
        env["KEYWARDEN_HEALTH_INTERVAL"] = "0"
        env["KEYWARDEN_GATEWAY_TIMEOUT"] = "2"
        env["KEYWARDEN_USAGE_FLUSH"] = "0.05"
        for (key, value) in environment { env[key] = value }
        let firstRun = !FileManager.default.fileExists(atPath: data.appendingPathComponent("keyring.json").path)
        server = try KeywardenProcess(["serve", "--data", data.path, "--port", "0"], environment: env)
        let port = try await server.waitUntilListening()
        base = "http://127.0.0.1:\(port)"
        // A first run prints the admin token just after "listening on": wait for it.
        adminToken = firstRun ? await server.firstRunToken() ?? "" : ""
    }

    /// The environment a command run on the rig's data directory needs (its PostgreSQL database, on that engine).
    var commandEnvironment: [String: String] {
        databaseURL.map { ["KEYWARDEN_DATABASE_URL": $0] } ?? [:]
    }

    func stop(mocksToo: Bool = true, keepData: Bool = false) async {
        server.signal(SIGTERM)
        _ = try? await server.wait(timeout: .seconds(15))
        if mocksToo { await mocks.stop() }
        if !keepData { try? FileManager.default.removeItem(at: data) }
    }

    /// A management call as the platform admin (or `token`); the JSON answer.
    @discardableResult
    func api(_ method: String, _ path: String, _ body: [String: Any]? = nil, token: String? = nil, expect: Int? = nil,
             sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: Any] {
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        let reply = try await TestHTTP.send(method, base + path, body: data, headers: ["Authorization": "Bearer \(token ?? adminToken)", "Content-Type": "application/json"])
        if let expect { #expect(reply.status == expect, "\(method) \(path): \(reply.status) \(reply.text)", sourceLocation: sourceLocation) }
        return (try? JSONSerialization.jsonObject(with: reply.body) as? [String: Any]) ?? [:]
    }

    func workspace(_ name: String, byok: Bool = true, exclusive: Bool = false) async throws -> String {
        let reply = try await api("POST", "/api/v1/workspaces", ["name": name, "byok_allowed": byok, "exclusive": exclusive], expect: 201)
        return reply["id"] as? String ?? ""
    }

    /// Adds an active workspace key; returns its id.
    func key(_ workspace: String, provider: String = "openai", secret: String, role: String = "primary", active: Bool = true,
             query: String = "") async throws -> String {
        let reply = try await api("POST", "/api/v1/workspaces/\(workspace)/keys\(query)",
                                  ["provider": provider, "description": secret, "api_key": secret, "role": role, "active": active], expect: 201)
        return ((reply["key"] as? [String: Any])?["id"] as? String) ?? ""
    }

    /// Saves and activates a platform card.
    func platformCard(_ provider: String, secret: String) async throws {
        try await api("PUT", "/api/v1/platform/providers/\(provider)", ["api_key": secret], expect: 200)
        try await api("POST", "/api/v1/platform/providers/\(provider)/activate", expect: 200)
    }

    func serviceToken(_ workspace: String?, permissions: [String] = ["gateway.use"]) async throws -> String {
        let path = workspace.map { "/api/v1/workspaces/\($0)/tokens" } ?? "/api/v1/platform/tokens"
        let reply = try await api("POST", path, ["name": "backend", "permissions": permissions], expect: 201)
        return reply["value"] as? String ?? ""
    }

    /// A gateway call; `json` is sent as the body.
    func call(_ path: String, token: String, json: [String: Any]? = nil, headers: [String: String] = [:], method: String = "POST") async throws -> TestHTTP.Reply {
        var all = ["Authorization": "Bearer \(token)", "Content-Type": "application/json"]
        for (key, value) in headers { all[key] = value }
        return try await TestHTTP.send(method, base + path, body: try json.map { try JSONSerialization.data(withJSONObject: $0) }, headers: all)
    }

    nonisolated(unsafe) static let chat: [String: Any] = ["model": "gpt-5.4-mini", "messages": [["role": "user", "content": "Say hello to the gateway test."]]]

    /// Polls until `condition` holds (CI machines are slow and shared: never a fixed sleep).
    func eventually(_ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool,
                    sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting for: \(what)", sourceLocation: sourceLocation)
    }

    /// A page's HTML as a person signed in with `token` (the admin token by default) sees it: through the login form,
    /// redirects not followed, cookies carried by hand.
    func page(_ path: String, token: String? = nil) async throws -> (status: Int, html: String) {
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
        do {
            func send(_ method: HTTPMethod, _ target: String, cookie: String, form: String? = nil) async throws -> (status: Int, cookies: [String], html: String) {
                var request = HTTPClientRequest(url: base + target)
                request.method = method
                if !cookie.isEmpty { request.headers.add(name: "Cookie", value: cookie) }
                if let form {
                    request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                    request.body = .bytes(ByteBuffer(string: form))
                }
                let response = try await client.execute(request, timeout: .seconds(10))
                let body = try await response.body.collect(upTo: 8 << 20)
                let cookies = response.headers["set-cookie"].compactMap { $0.split(separator: ";").first.map(String.init) }
                return (Int(response.status.code), cookies, String(buffer: body))
            }
            let login = try await send(.GET, "/login", cookie: "")
            let marker = #"name="csrf_token" value=""#
            let csrf = login.html.range(of: marker).map { String(login.html[$0.upperBound...].prefix { $0 != "\"" }) } ?? ""
            let form = "csrf_token=\(csrf)&token=\(token ?? adminToken)"
            let signedIn = try await send(.POST, "/login", cookie: login.cookies.joined(separator: "; "), form: form)
            let session = signedIn.cookies.first { $0.hasPrefix("kw_session=") } ?? ""
            let shown = try await send(.GET, path, cookie: session)
            try await client.shutdown()
            return (shown.status, shown.html)
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    func usage(_ query: String) async throws -> [String: Any] {
        try await api("GET", "/api/v1/usage?\(query)", expect: 200)
    }
}

extension TestHTTP.Reply {
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
}
