import AsyncHTTPClient
import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenProviders
import KeywardenStore
import KeywardenTestSupport
import NIOCore
import Prometheus
import Testing
@testable import KeywardenGateway

/// The gateway applies what the cards promise (seed 000): a call that leaves out the model, Anthropic's max tokens or
/// ElevenLabs' voice gets the serving key's value; a call that sends one keeps its own.
@Suite("Gateway call defaults")
struct CallDefaultsGatewayTests {
    static let ok = #"{"id":"msg_1","type":"message","model":"claude-sonnet-4-6","content":[],"usage":{"input_tokens":3,"output_tokens":2}}"#

    struct Setup {
        let fixture: StoreFixture
        let app: AppServices
        let gateway: Gateway
        let workspaceID: String

        func call(_ providerID: String?, path: String, body: String, chatFace: Bool = false, headers: [(name: String, value: String)] = []) -> GatewayCall {
            GatewayCall(face: chatFace ? .chatCompletions(providerID: providerID) : .native(providerID: providerID ?? ""), method: "POST",
                        pathAndQuery: path, headers: [("Content-Type", "application/json")] + headers,
                        body: .complete(ByteBuffer(string: body)), workspaceID: workspaceID, consumer: nil, modality: nil)
        }

        func close() async {
            await app.close()
            fixture.remove()
        }
    }

    /// A workspace with an Anthropic key (default model, max tokens 2048) and an ElevenLabs key (its own voice).
    func setUp(_ transport: ScriptedTransport, platformVoiceOnly: Bool = false) async throws -> Setup {
        let fixture = try StoreFixture()
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Defaults", byokAllowed: true, exclusive: false, actor: "test").id
        _ = try await app.keys.create(workspaceID: ws, NewKeyRequest(
            providerID: "anthropic", description: "claude", apiKey: Secret("sk-ant-0123456789abcdef"),
            extras: ["default_max_tokens": Secret("2048")], defaultModel: "claude-sonnet-4-6", role: .primary, active: true), actor: "test")
        if platformVoiceOnly {
            _ = try await app.platformCards.save("elevenlabs", PlatformCardUpdate(apiKey: Secret("sk_platform0123456789abcdef")), actor: "test")
            _ = try await app.platformCards.activate("elevenlabs", actor: "test")
        } else {
            _ = try await app.keys.create(workspaceID: ws, NewKeyRequest(
                providerID: "elevenlabs", description: "voice", apiKey: Secret("sk_0123456789abcdef0123"),
                extras: ["default_voice_id": Secret("OwnVoice42")], role: .primary, active: true), actor: "test")
        }
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry())
        let ledger = UsageLedger(app: app, interval: .seconds(60), metrics: metrics, logger: fixture.logs.logger)
        let gateway = Gateway(app: app, transport: transport, settings: GatewaySettings(), health: nil, ledger: ledger, metrics: metrics,
                              logger: fixture.logs.logger).carryingOutEffects()
        return Setup(fixture: fixture, app: app, gateway: gateway, workspaceID: ws)
    }

    func header(_ response: GatewayResponse, _ name: String) -> String? {
        response.headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    func sentJSON(_ transport: ScriptedTransport) throws -> [String: Any] {
        let body = try #require(transport.sent.last?.body)
        return try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
    }

    @Test("a Messages call without model or max_tokens gets the key's default model and max tokens, and says which model")
    func anthropicFilledFromKey() async throws {
        let transport = ScriptedTransport { _ in .respond(status: 200, headers: [("Content-Type", "application/json")], body: Self.ok) }
        let setup = try await setUp(transport)
        let answer = await setup.gateway.handle(setup.call("anthropic", path: "/v1/messages", body: #"{"messages":[{"role":"user","content":"hi"}]}"#))
        #expect(answer.status == 200)
        #expect(header(answer, "X-Keywarden-Model") == "claude-sonnet-4-6")
        let sent = try sentJSON(transport)
        #expect(sent["model"] as? String == "claude-sonnet-4-6" && sent["max_tokens"] as? Int == 2048)
        #expect((sent["messages"] as? [[String: Any]])?.first?["content"] as? String == "hi")
        await setup.close()
    }

    @Test("what the caller sent is never overridden: its model and max_tokens reach the vendor as they were")
    func callerValuesKept() async throws {
        let transport = ScriptedTransport { _ in .respond(status: 200, headers: [("Content-Type", "application/json")], body: Self.ok) }
        let setup = try await setUp(transport)
        let body = #"{"model":"claude-haiku-4-5","max_tokens":100,"messages":[]}"#
        let answer = await setup.gateway.handle(setup.call("anthropic", path: "/v1/messages", body: body))
        #expect(answer.status == 200 && header(answer, "X-Keywarden-Model") == "claude-haiku-4-5")
        #expect(transport.sent.last?.body == Array(body.utf8), "the body went byte for byte")
        // "default" asks for the key's model; a null max_tokens for the key's value.
        _ = await setup.gateway.handle(setup.call("anthropic", path: "/v1/messages", body: #"{"model":"default","max_tokens":null,"messages":[]}"#))
        let sent = try sentJSON(transport)
        #expect(sent["model"] as? String == "claude-sonnet-4-6" && sent["max_tokens"] as? Int == 2048)
        await setup.close()
    }

    @Test("a text-to-speech call naming no voice calls the key's default voice")
    func elevenLabsVoice() async throws {
        let transport = ScriptedTransport { _ in .respond(status: 200, headers: [("Content-Type", "audio/mpeg")], body: "ID3") }
        let setup = try await setUp(transport)
        let answer = await setup.gateway.handle(setup.call("elevenlabs", path: "/v1/text-to-speech?output_format=mp3_44100_128", body: #"{"text":"Hello"}"#))
        #expect(answer.status == 200)
        #expect(transport.sent.last?.url.hasSuffix("/v1/text-to-speech/OwnVoice42?output_format=mp3_44100_128") == true)
        // A call that names its voice keeps it.
        _ = await setup.gateway.handle(setup.call("elevenlabs", path: "/v1/text-to-speech/CallerVoice/stream", body: #"{"text":"Hello"}"#))
        #expect(transport.sent.last?.url.hasSuffix("/v1/text-to-speech/CallerVoice/stream") == true)
        await setup.close()
    }

    @Test("the platform's key serves a call naming no voice: the endpoint is judged after the voice is filled in")
    func sharedKeyJudgedOnTheFilledPath() async throws {
        let transport = ScriptedTransport { _ in .respond(status: 200, headers: [("Content-Type", "audio/mpeg")], body: "ID3") }
        let setup = try await setUp(transport, platformVoiceOnly: true)
        let answer = await setup.gateway.handle(setup.call("elevenlabs", path: "/v1/text-to-speech", body: #"{"text":"Hello"}"#))
        #expect(answer.status == 200 && header(answer, "X-Keywarden-Source") == "platform")
        #expect(transport.sent.last?.url.hasSuffix("/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM") == true)
        #expect(try sentJSON(transport)["model_id"] as? String == "eleven_v3", "the card's model (the catalog's default)")
        // Filling in the voice opens no other endpoint to the shared key.
        let other = await setup.gateway.handle(setup.call("elevenlabs", path: "/v1/voices/add", body: "{}"))
        #expect(other.status == 403)
        await setup.close()
    }

    @Test("the OpenAI-compatible face: no model, or \"default\", with the provider named uses the key's model; with neither, the workspace's one chat provider")
    func chatFaceDefaultModel() async throws {
        let transport = ScriptedTransport { _ in .respond(status: 200, headers: [("Content-Type", "application/json")], body: Self.ok) }
        let setup = try await setUp(transport)
        for body in [#"{"messages":[{"role":"user","content":"Hi"}]}"#, #"{"model":"default","messages":[{"role":"user","content":"Hi"}]}"#] {
            let answer = await setup.gateway.handle(setup.call("anthropic", path: "/v1/chat/completions", body: body, chatFace: true))
            #expect(answer.status == 200 && header(answer, "X-Keywarden-Model") == "claude-sonnet-4-6")
            #expect(try sentJSON(transport)["model"] as? String == "claude-sonnet-4-6")
            // Translated to Anthropic's Messages API, its required max_tokens filled in from the card (2048).
            #expect(transport.sent.last?.url.hasSuffix("/v1/messages") == true)
            #expect(try sentJSON(transport)["max_tokens"] as? Int == 2048)
        }
        // Neither: the workspace holds active keys of one chat provider only (exclusive mode's choice), which serves.
        let unnamed = await setup.gateway.handle(setup.call(nil, path: "/v1/chat/completions", body: #"{"messages":[{"role":"user","content":"Hi"}]}"#, chatFace: true))
        #expect(unnamed.status == 200 && header(unnamed, "X-Keywarden-Provider") == "anthropic" && header(unnamed, "X-Keywarden-Model") == "claude-sonnet-4-6")
        await setup.close()
    }
}
