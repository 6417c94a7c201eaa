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

/// A translated call's answer is scrubbed after translation too: pieces of a key the vendor sent apart (7 bytes at a
/// time), joined by the translation, or a signature re-encoded into a tool call's id, never reach the caller. Hostile
/// numbers and model names are refused before any arithmetic or URL.
@Suite("Translated calls: scrubbing and hostile input")
struct TranslationSafetyTests {
    static let geminiKey = "AIzaSyD-abcdefghijklmnopqrstuvwxyz012345"
    static let anthropicKey = "sk-ant-api03-QWERTYUIOPASDFGHJKLZXCVBNM0123"

    /// The key in 7-byte pieces.
    static func pieces(_ key: String) -> [String] {
        stride(from: 0, to: key.count, by: 7).map { String(Array(key)[$0..<min($0 + 7, key.count)]) }
    }

    func setUp(_ transport: ScriptedTransport) async throws -> (StoreFixture, AppServices, Gateway, String) {
        let fixture = try StoreFixture()
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Translated", byokAllowed: true, exclusive: false, actor: "test").id
        for (provider, key) in [("gemini", Self.geminiKey), ("anthropic", Self.anthropicKey)] {
            _ = try await app.keys.create(workspaceID: ws, NewKeyRequest(providerID: provider, description: provider, apiKey: Secret(key),
                                                                        role: .primary, active: true), actor: "test")
        }
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry())
        let ledger = UsageLedger(app: app, interval: .seconds(60), metrics: metrics, logger: fixture.logs.logger)
        let gateway = Gateway(app: app, transport: transport, settings: GatewaySettings(), health: nil, ledger: ledger, metrics: metrics,
                              logger: fixture.logs.logger).carryingOutEffects()
        return (fixture, app, gateway, ws)
    }

    func call(_ face: GatewayCall.Face, _ body: String, workspace: String) -> GatewayCall {
        GatewayCall(face: face, method: "POST", pathAndQuery: "/", headers: [("Content-Type", "application/json")],
                    body: .complete(ByteBuffer(string: body)), workspaceID: workspace, consumer: nil, modality: nil)
    }

    func text(_ response: GatewayResponse) async throws -> String {
        switch response.body {
        case .complete(let buffer): return String(buffer: buffer)
        case .stream(let stream):
            var bytes: [UInt8] = []
            try await stream.pump { bytes.append(contentsOf: $0.readableBytesView) }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    @Test("a Gemini thought signature made of the key's pieces does not come back joined in a tool call's id")
    func signatureInCallID() async throws {
        let signature = Self.pieces(Self.geminiKey).joined(separator: "=")
        let answer = #"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"weather","args":{}},"thoughtSignature":"\#(signature)"}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2}}"#
        let transport = ScriptedTransport { _ in .respond(status: 200, headers: [("Content-Type", "application/json")], body: answer) }
        let (fixture, app, gateway, ws) = try await setUp(transport)
        defer { fixture.remove() }
        for face in [GatewayCall.Face.chatCompletions(providerID: "gemini"), .messages(providerID: "gemini"), .responses(providerID: "gemini")] {
            let body = face == .messages(providerID: "gemini")
                ? #"{"model":"gemini-2.5-flash","max_tokens":50,"messages":[{"role":"user","content":"Hi"}],"tools":[{"name":"weather","input_schema":{"type":"object"}}]}"#
                : face == .responses(providerID: "gemini")
                ? #"{"model":"gemini-2.5-flash","input":"Hi","tools":[{"type":"function","name":"weather","parameters":{"type":"object"}}]}"#
                : #"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object"}}}]}"#
            let response = await gateway.handle(call(face, body, workspace: ws))
            let out = try await text(response)
            #expect(response.status == 200, "\(face): \(out)")
            #expect(out.contains("weather"), "\(face): the call came back: \(out)")
            #expect(!out.contains(Self.geminiKey) && !out.contains(String(Self.geminiKey.dropFirst(8))), "\(face): \(out)")
        }
        await app.close()
    }

    @Test("a key sent in pieces across text blocks, or as 6-byte stream deltas, is not joined into the caller's answer")
    func piecesAreNotJoined() async throws {
        let blocks = Self.pieces(Self.anthropicKey).map { #"{"type":"text","text":"\#($0)"}"# }.joined(separator: ",")
        let whole = #"{"id":"msg_1","type":"message","model":"claude","content":[\#(blocks)],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2}}"#
        var stream = #"event: message_start\#ndata: {"type":"message_start","message":{"id":"msg_2","model":"claude","usage":{"input_tokens":3,"output_tokens":1}}}\#n\#nevent: content_block_start\#ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\#n\#n"#
        for piece in stride(from: 0, to: Self.anthropicKey.count, by: 6).map({ String(Array(Self.anthropicKey)[$0..<min($0 + 6, Self.anthropicKey.count)]) }) {
            stream += #"event: content_block_delta\#ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\#(piece)"}}\#n\#n"#
        }
        stream += #"event: message_delta\#ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}\#n\#nevent: message_stop\#ndata: {"type":"message_stop"}\#n\#n"#
        let streamed = stream
        let transport = ScriptedTransport { _ in
            .respond(status: 200, headers: [("Content-Type", "text/event-stream")], body: streamed)
        }
        let wholeTransport = ScriptedTransport { _ in .respond(status: 200, headers: [("Content-Type", "application/json")], body: whole) }
        for (scripted, streams) in [(wholeTransport, false), (transport, true)] {
            let (fixture, app, gateway, ws) = try await setUp(scripted)
            for face in [GatewayCall.Face.chatCompletions(providerID: "anthropic"), .responses(providerID: "anthropic")] {
                let body = face == .responses(providerID: "anthropic")
                    ? #"{"model":"claude-sonnet-4-6","input":"Hi","stream":\#(streams)}"#
                    : #"{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"Hi"}],"stream":\#(streams)}"#
                let response = await gateway.handle(call(face, body, workspace: ws))
                let out = try await text(response)
                #expect(response.status == 200, "\(face): \(out)")
                #expect(!out.contains(Self.anthropicKey), "\(face) streamed \(streams): the key came back joined: \(out.prefix(600))")
            }
            await app.close()
            fixture.remove()
        }
    }

    @Test("an output limit at Int.min, a negative thinking budget and a model that would change Gemini's URL are refused, nothing sent")
    func hostileNumbersAndModels() async throws {
        let transport = ScriptedTransport { _ in .respond(status: 200, headers: [("Content-Type", "application/json")], body: "{}") }
        let (fixture, app, gateway, ws) = try await setUp(transport)
        defer { fixture.remove() }
        let refused = [
            (GatewayCall.Face.chatCompletions(providerID: nil), #"{"model":"anthropic/claude-sonnet-4-6","max_tokens":-9223372036854775808,"reasoning_effort":"low","messages":[{"role":"user","content":"Hi"}]}"#),
            (.responses(providerID: nil), #"{"model":"anthropic/claude-sonnet-4-6","max_output_tokens":-9223372036854775808,"reasoning":{"effort":"low"},"input":"Hi"}"#),
            (.chatCompletions(providerID: nil), #"{"model":"anthropic/claude-sonnet-4-6","max_tokens":0,"messages":[{"role":"user","content":"Hi"}]}"#),
            (.messages(providerID: nil), #"{"model":"gemini/gemini-2.5-flash","max_tokens":10,"thinking":{"type":"enabled","budget_tokens":-5},"messages":[{"role":"user","content":"Hi"}]}"#),
            (.chatCompletions(providerID: nil), #"{"model":"gemini/gemini-2.5-flash:streamGenerateContent?alt=sse&x=","messages":[{"role":"user","content":"Hi"}]}"#),
            (.chatCompletions(providerID: nil), #"{"model":"gemini/../../v1beta/files","messages":[{"role":"user","content":"Hi"}]}"#),
        ]
        for (face, body) in refused {
            let response = await gateway.handle(call(face, body, workspace: ws))
            let out = try await text(response)
            #expect(response.status == 400 && out.contains("invalid_request"), "\(body): \(response.status) \(out)")
        }
        #expect(transport.sent.isEmpty, "nothing reached a vendor: \(transport.sent.map(\.url))")
        await app.close()
    }
}
