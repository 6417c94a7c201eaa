import AsyncHTTPClient
import Foundation
import KeywardenCore
import KeywardenTestSupport
import Logging
import Testing
@testable import KeywardenProviders

/// Every status, reached through real HTTP against the mock of each vendor family.
@Suite("Verification against the vendors' mocks", .serialized)
struct VerifierAgainstMockTests {
    /// Extras each provider needs before a call can be made.
    static let requiredExtras: [String: [String: String]] = [
        "azure-openai": ["endpoint": "https://unused.example", "api_version": "2024-10-21"],
        "azure-speech": ["region": "westeurope"],
        "ollama": ["base_url": "http://unused.example"],
        "openai-compatible": ["base_url": "http://unused.example/v1"],
    ]

    func withMocks(timeout: Int64 = 5, _ body: (ProviderCatalog, KeyVerifier, MockVendorsProcess) async throws -> Void) async throws {
        let mocks = try await MockVendorsProcess()
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let catalog = try ProviderCatalog.load().applyingUpstreamOverrides(from: mocks.upstreamEnvironment)
            try await body(catalog, KeyVerifier(client: client, timeout: .seconds(timeout)), mocks)
        } catch {
            try? await client.shutdown()
            await mocks.stop()
            throw error
        }
        try await client.shutdown()
        await mocks.stop()
    }

    func verify(_ verifier: KeyVerifier, _ provider: ProviderDefinition, key: String, model: String? = nil, extras: [String: String] = [:]) async -> VerificationResult {
        let all = (Self.requiredExtras[provider.id] ?? [:]).merging(extras) { $1 }
        return await verifier.verify(provider: provider, credentials: VendorCredentials(key: Secret(key), extras: all.mapValues(Secret.init)),
                                     defaultModel: model, logger: Logger(label: "test"))
    }

    @Test("valid, invalid, no_permission, rate_limited, quota_exceeded and unreachable for every verifiable provider")
    func everyStatusForEveryFamily() async throws {
        try await withMocks { catalog, verifier, mocks in
            let verifiable = catalog.providers.filter { $0.verification.available }
            #expect(verifiable.count == 17)
            let cases: [(String, VerificationStatus)] = [
                ("key-good-0001", .valid), ("key-revoked-0002", .invalid), ("key-forbidden-03", .noPermission),
                ("key-ratelimited-4", .rateLimited), ("key-noquota-0005", .quotaExceeded), ("key-servererror-6", .unreachable),
            ]
            for provider in verifiable {
                for (key, expected) in cases {
                    let result = await verify(verifier, provider, key: key)
                    #expect(result.status == expected, "\(provider.id) with \(key): \(result.status) \(result.message)")
                    #expect(!result.message.contains(key), "\(provider.id) echoed the key: \(result.message)")
                    #expect(!result.message.isEmpty && !result.hint.isEmpty)
                    if expected == .rateLimited { #expect(result.retryAfter == 7, "\(provider.id)") }
                    if expected == .valid { #expect(result.httpStatus == 200) }
                }
            }
            // The vendor really received every call, with its own auth header.
            let received = try await mocks.requests("stability").count
            #expect(received == cases.count)
        }
    }

    @Test("a default model the key cannot list is model_not_found; a listed one is valid with a count")
    func modelNotFound() async throws {
        try await withMocks { catalog, verifier, _ in
            for (id, listed) in [("openai", "gpt-5.4-mini"), ("anthropic", "claude-sonnet-4-6"), ("gemini", "gemini-3.5-flash"), ("ollama", "llama3.2:latest")] {
                let provider = try #require(catalog.provider(id))
                let ok = await verify(verifier, provider, key: "key-good-0001", model: listed)
                #expect(ok.status == .valid && (ok.modelsAvailable ?? 0) > 0, "\(id): \(ok.message)")
                let missing = await verify(verifier, provider, key: "key-good-0001", model: "no-such-model-1")
                #expect(missing.status == .modelNotFound, "\(id): \(missing.message)")
            }
        }
    }

    @Test("extras are sent only when filled, and the key reaches the vendor only in its own header")
    func headersSent() async throws {
        try await withMocks { catalog, verifier, mocks in
            let key = "sk-proj-headercheck-77aa"
            _ = await verify(verifier, try #require(catalog.provider("openai")), key: key, extras: ["organization_id": "org-42", "project_id": ""])
            let request = try #require(try await mocks.requests("openai").last)
            let headers = try #require(request["headers"] as? [String: String])
            #expect(headers["authorization"] == "Bearer \(key)")
            #expect(headers["openai-organization"] == "org-42")
            #expect(headers["openai-project"] == nil)
            #expect(headers.filter { $0.value.contains(key) }.map(\.key) == ["authorization"])
            #expect((request["path"] as? String) == "/v1/models" && (request["query"] as? [String: String])?.isEmpty == true)

            _ = await verify(verifier, try #require(catalog.provider("anthropic")), key: "sk-ant-hdr-001122")
            let anthropic = try #require(try await mocks.requests("anthropic").last?["headers"] as? [String: String])
            #expect(anthropic["x-api-key"] == "sk-ant-hdr-001122" && anthropic["anthropic-version"] == "2023-06-01" && anthropic["authorization"] == nil)
        }
    }

    @Test("nothing listening and a vendor that never answers are unreachable")
    func unreachable() async throws {
        try await withMocks(timeout: 1) { catalog, verifier, _ in
            let slow = await verify(verifier, try #require(catalog.provider("openai")), key: "key-slow-0001")
            #expect(slow.status == .unreachable && slow.message.contains("did not answer"), "\(slow.message)")
            let nowhere = try catalog.applyingUpstreamOverrides(from: ["KEYWARDEN_UPSTREAM_MISTRAL": "http://127.0.0.1:1"])
            let refused = await verify(verifier, try #require(nowhere.provider("mistral")), key: "key-good-0001")
            #expect(refused.status == .unreachable && refused.message.contains("refused"), "\(refused.message)")
        }
    }
}
