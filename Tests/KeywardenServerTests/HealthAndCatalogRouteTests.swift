import Foundation
import KeywardenApp
import Hummingbird
import HummingbirdTesting
import KeywardenCore
import KeywardenServer
import KeywardenStore
import KeywardenTestSupport
import Logging
import Testing

@Suite("Health and catalog routes")
struct HealthAndCatalogRouteTests {
    func withApp(_ body: @Sendable (any TestClientProtocol, AppServices) async throws -> Void) async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let services = try await ServerServices.make(app: store, settings: ServerSettings(host: "127.0.0.1", port: 0), logger: fixture.logs.logger)
        let app = buildApplication(services, logger: fixture.logs.logger)
        do {
            try await app.test(.live) { client in try await body(client, store) }
        } catch {
            await services.shutdown()
            await store.close()
            throw error
        }
        await services.shutdown()
        await store.close()
    }

    @Test("/healthz answers ok")
    func healthz() async throws {
        try await withApp { client, _ in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"status":"ok"}"#)
            }
        }
    }

    @Test("/readyz reports the database and the keyring")
    func readyz() async throws {
        try await withApp { client, store in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
                let body = try JSONDecoder().decode([String: JSONValue].self, from: Data(buffer: response.body))
                #expect(body["status"] == .string("ready"))
                #expect(body["database"] == .string("ok"))
                #expect(body["keyring"] == .string("loaded"))
                #expect(body["active_master_key"] == .string(store.vault.activeKeyID))
            }
        }
    }

    @Test("/readyz answers 503 when the database is gone")
    func readyzWhenDatabaseClosed() async throws {
        try await withApp { client, store in
            await store.close()
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains(#""status":"not_ready""#))
            }
        }
    }

    @Test("/api/v1/providers lists the catalog with fields, models and modalities")
    func providers() async throws {
        try await withApp { client, store in
            try await client.execute(uri: "/api/v1/providers", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
                let body = try JSONDecoder().decode(CatalogBody.self, from: Data(buffer: response.body))
                #expect(body.providers.map(\.id) == store.catalog.providers.map(\.id))
                let openai = try #require(body.providers.first { $0.id == "openai" })
                #expect(openai.defaultModel == "gpt-5.4-mini")
                #expect(openai.fields.contains { $0.id == "organization_id" })
                #expect(body.categories.contains("translate"))
            }
        }
    }

    @Test("an unknown route answers 404 in the one error shape")
    func unknownRoute() async throws {
        try await withApp { client, _ in
            try await client.execute(uri: "/api/v1/nope", method: .get) { response in
                #expect(response.status == .notFound)
                let body = try JSONDecoder().decode([String: [String: String]].self, from: Data(buffer: response.body))
                #expect(body["error"]?["code"] == "not_found")
            }
        }
    }

    struct CatalogBody: Decodable {
        let providers: [ProviderDefinition]
        let categories: [String]
        let modalities: [String]
    }
}

/// A JSON value, for loose assertions on response bodies.
enum JSONValue: Decodable, Equatable {
    case string(String), number(Double), bool(Bool), null, array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }
}
