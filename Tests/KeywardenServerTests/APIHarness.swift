import Foundation
import KeywardenApp
import Hummingbird
import HummingbirdTesting
import KeywardenCore
import KeywardenServer
import KeywardenStore
import KeywardenTestSupport
import NIOCore
import Synchronization
import Testing

/// A live Keywarden server over a fresh store, and a client that records every answer it gets.
final class APIHarness: Sendable {
    let fixture: StoreFixture
    let store: AppServices
    let adminToken: String
    private let recorded = Mutex<[String]>([])

    init(catalog: ProviderCatalog? = nil) async throws {
        fixture = try StoreFixture()
        let (store, report) = try await fixture.open(catalog: catalog)
        self.store = store
        guard let token = report.adminToken?.value else { throw HarnessError.noAdminToken }
        adminToken = token
    }

    enum HarnessError: Error { case noAdminToken }

    /// Runs `body` against the live server, then closes the store and removes the data directory.
    static func run(
        settings: ServerSettings = ServerSettings(host: "127.0.0.1", port: 0),
        catalog: ProviderCatalog? = nil,
        _ body: @Sendable (APIHarness, API) async throws -> Void
    ) async throws {
        let harness = try await APIHarness(catalog: catalog)
        let services = try await ServerServices.make(app: harness.store, settings: settings, logger: harness.fixture.logs.logger)
        let app = buildApplication(services, logger: harness.fixture.logs.logger)
        do {
            try await app.test(.live) { client in try await body(harness, API(client: client, harness: harness, services: services)) }
        } catch {
            await services.shutdown()
            await harness.store.close()
            harness.fixture.remove()
            throw error
        }
        await services.shutdown()
        await harness.store.close()
        harness.fixture.remove()
    }

    func record(_ text: String) { recorded.withLock { $0.append(text) } }

    /// Every response (status line, headers, body) the client received.
    var transcript: String { recorded.withLock { $0.joined(separator: "\n") } }
}

/// One answer from the server.
struct Reply: Sendable {
    let status: Int
    let body: Data
    let headers: [String: String]

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    var errorField: String? { (json["error"] as? [String: Any])?["field"] as? String }
    var errorMessage: String? { (json["error"] as? [String: Any])?["message"] as? String }
    func object(_ key: String) -> [String: Any] { json[key] as? [String: Any] ?? [:] }

    /// A card's or key's `{has_key, hint, status}` as one comparable line.
    static func keyState(_ object: [String: Any]) -> String {
        let key = object["key"] as? [String: Any] ?? object
        return "has_key=\((key["has_key"] as? Bool).map(String.init) ?? "?") hint=\(key["hint"] as? String ?? "?") status=\(key["status"] as? String ?? "?")"
    }
    var items: [[String: Any]] { json["items"] as? [[String: Any]] ?? [] }
}

/// A JSON client for the live server.
struct API: Sendable {
    let client: any TestClientProtocol
    let harness: APIHarness
    let services: ServerServices

    @discardableResult
    func call(_ method: HTTPRequest.Method, _ path: String, token: String?, json: Any? = nil, raw: String? = nil) async throws -> Reply {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json {
            headers[.contentType] = "application/json"
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
        } else if let raw {
            headers[.contentType] = "application/json"
            body = ByteBuffer(string: raw)
        }
        return try await client.execute(uri: path, method: method, headers: headers, body: body) { response in
            var collected: [String: String] = [:]
            for field in response.headers { collected[field.name.canonicalName.lowercased()] = field.value }
            let reply = Reply(status: Int(response.status.code), body: Data(buffer: response.body), headers: collected)
            harness.record("\(method) \(path) -> \(reply.status) \(collected) \(reply.text)")
            return reply
        }
    }

    func get(_ path: String, token: String?) async throws -> Reply { try await call(.get, path, token: token) }
    func post(_ path: String, token: String?, json: Any? = nil) async throws -> Reply { try await call(.post, path, token: token, json: json) }
    func put(_ path: String, token: String?, json: Any) async throws -> Reply { try await call(.put, path, token: token, json: json) }
    func patch(_ path: String, token: String?, json: Any) async throws -> Reply { try await call(.patch, path, token: token, json: json) }
    func delete(_ path: String, token: String?) async throws -> Reply { try await call(.delete, path, token: token) }

    // MARK: Fixtures through the API itself

    func createWorkspace(_ name: String, byok: Bool = true, exclusive: Bool = false) async throws -> String {
        let reply = try await post("/api/v1/workspaces", token: harness.adminToken, json: ["name": name, "byok_allowed": byok, "exclusive": exclusive])
        guard reply.status == 201, let id = reply.json["id"] as? String else { throw APIFailure(reply) }
        return id
    }

    func addMember(_ workspace: String, role: String, name: String? = nil) async throws -> String {
        let reply = try await post("/api/v1/workspaces/\(workspace)/members", token: harness.adminToken, json: ["name": name ?? role, "role": role])
        guard reply.status == 201, let token = reply.json["token"] as? String else { throw APIFailure(reply) }
        return token
    }

    func serviceToken(_ workspace: String?, permissions: [String]) async throws -> String {
        let path = workspace.map { "/api/v1/workspaces/\($0)/tokens" } ?? "/api/v1/platform/tokens"
        let reply = try await post(path, token: harness.adminToken, json: ["name": "svc", "kind": "service", "permissions": permissions])
        guard reply.status == 201, let token = reply.json["value"] as? String else { throw APIFailure(reply) }
        return token
    }

    func createKey(_ workspace: String, provider: String = "openai", description: String, key: String, extras: [String: String] = [:], role: String? = nil, active: Bool? = nil, token: String? = nil) async throws -> [String: Any] {
        var body: [String: Any] = ["provider": provider, "description": description, "api_key": key]
        if !extras.isEmpty { body["extras"] = extras }
        if let role { body["role"] = role }
        if let active { body["active"] = active }
        let reply = try await post("/api/v1/workspaces/\(workspace)/keys", token: token ?? harness.adminToken, json: body)
        guard reply.status == 201 else { throw APIFailure(reply) }
        return reply.object("key")
    }
}

struct APIFailure: Error, CustomStringConvertible {
    let reply: Reply
    init(_ reply: Reply) { self.reply = reply }
    var description: String { "unexpected \(reply.status): \(reply.text)" }
}
