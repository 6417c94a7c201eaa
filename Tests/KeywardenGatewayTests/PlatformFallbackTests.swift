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

/// Who pays when a workspace's own keys cannot: `platform_fallback` decides whether the platform's keys stand in when the
/// own key fails, when its own-keys budget is spent, or never — the workspace's setting, else its plan's, else the default.
@Suite("Platform fallback")
struct PlatformFallbackTests {
    static let ok = #"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-5.4-mini","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#
    static let ownKey = "sk-own-0123456789abcdef"
    static let platformKey = "sk-platform-0123456789abcdef"

    /// A workspace with its own OpenAI key (an own-keys budget of `ownCredits`), the platform's OpenAI card active.
    func setUp(ownCredits: Int? = nil, ownRefused: Bool = false, plan: Plan? = nil) async throws -> (StoreFixture, AppServices, Gateway, UsageLedger, String, ScriptedTransport) {
        let transport = ScriptedTransport { key in
            key == Self.ownKey && ownRefused
                ? .respond(status: 401, headers: [("Content-Type", "application/json")], body: #"{"error":{"message":"Incorrect API key","code":"invalid_api_key"}}"#)
                : .respond(status: 200, headers: [("Content-Type", "application/json")], body: Self.ok)
        }
        let fixture = try StoreFixture()
        let (app, _) = try await fixture.open()
        if let plan { _ = try await app.plans.save(plan, actor: "test") }
        let ws = try await app.workspaceService.create(name: "Own keys", byokAllowed: true, exclusive: false, plan: plan?.name, actor: "test").id
        _ = try await app.keys.create(workspaceID: ws, NewKeyRequest(providerID: "openai", description: "own", apiKey: Secret(Self.ownKey),
                                                                    role: .primary, active: true), actor: "test")
        _ = try await app.platformCards.save("openai", PlatformCardUpdate(apiKey: Secret(Self.platformKey)), actor: "test")
        _ = try await app.platformCards.activate("openai", actor: "test")
        if let ownCredits { _ = try await app.budgets.setLimits(workspaceID: ws, BudgetLimits(byok: ownCredits * 1000), actor: "test") }
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry())
        let ledger = UsageLedger(app: app, interval: .seconds(60), metrics: metrics, logger: fixture.logs.logger)
        let gateway = Gateway(app: app, transport: transport, settings: GatewaySettings(), health: nil, ledger: ledger, metrics: metrics,
                              logger: fixture.logs.logger).carryingOutEffects()
        return (fixture, app, gateway, ledger, ws, transport)
    }

    func call(_ ws: String) -> GatewayCall {
        GatewayCall(face: .native(providerID: "openai"), method: "POST", pathAndQuery: "/v1/chat/completions", headers: [("Content-Type", "application/json")],
                    body: .complete(ByteBuffer(string: #"{"model":"gpt-5.4-mini","messages":[]}"#)), workspaceID: ws, consumer: nil, modality: nil)
    }

    func source(_ response: GatewayResponse) -> String? { response.headers.first { $0.name == "X-Keywarden-Source" }?.value }

    @Test("with the own-keys budget spent: on_failure (the default) answers budget_exceeded and the platform pays nothing; on_failure_or_budget lets the platform's key serve")
    func ownBudgetSpent() async throws {
        for (setting, platformServes) in [(nil as PlatformFallback?, false), (.onFailure, false), (.never, false), (.onFailureOrBudget, true)] {
            let (fixture, app, gateway, ledger, ws, transport) = try await setUp(ownCredits: 1)
            if let setting { _ = try await app.workspaceService.update(ws, WorkspaceChanges(platformFallback: .some(setting)), actor: "test") }
            let first = await gateway.handle(call(ws))
            #expect(first.status == 200 && source(first) == "byok", "\(String(describing: setting))")
            if case .stream(let stream) = first.body { try await stream.pump { _ in } }
            await ledger.flush()
            let second = await gateway.handle(call(ws))
            if platformServes {
                #expect(second.status == 200 && source(second) == "platform", "\(String(describing: setting)): \(second.status)")
                #expect(transport.keysSeen == [Self.ownKey, Self.platformKey])
            } else {
                #expect(second.status == 402, "\(String(describing: setting)): \(second.status) \(source(second) ?? "-")")
                #expect(transport.keysSeen == [Self.ownKey], "the platform's key was never called: \(transport.keysSeen)")
            }
            await app.close()
            fixture.remove()
        }
    }

    @Test("when the own key is refused: on_failure lets the platform's key stand in; never answers the vendor's refusal; the plan's setting applies where the workspace has none")
    func ownKeyFails() async throws {
        for (setting, plan, platformServes) in [(PlatformFallback.onFailure, nil as Plan?, true), (.never, nil, false),
                                                (nil, Plan(name: "strict", platformFallback: .never), false),
                                                (.onFailure, Plan(name: "strict", platformFallback: .never), true)] {
            let (fixture, app, gateway, _, ws, transport) = try await setUp(ownRefused: true, plan: plan)
            if let setting { _ = try await app.workspaceService.update(ws, WorkspaceChanges(platformFallback: .some(setting)), actor: "test") }
            let answer = await gateway.handle(call(ws))
            if platformServes {
                #expect(answer.status == 200 && source(answer) == "platform", "\(String(describing: setting)) \(String(describing: plan))")
            } else {
                #expect(answer.status != 200 && !transport.keysSeen.contains(Self.platformKey),
                        "\(String(describing: setting)) \(String(describing: plan)): \(answer.status) \(transport.keysSeen)")
            }
            await app.close()
            fixture.remove()
        }
    }

    @Test("never does not cut off a provider the workspace brings no key for, nor a workspace whose keys are all off")
    func neverOnlyConcernsOwnKeys() async throws {
        let (fixture, app, _, _, ws, _) = try await setUp()
        _ = try await app.workspaceService.update(ws, WorkspaceChanges(platformFallback: .some(.never)), actor: "test")
        _ = try await app.platformCards.save("anthropic", PlatformCardUpdate(apiKey: Secret("sk-ant-platform-0123456789")), actor: "test")
        _ = try await app.platformCards.activate("anthropic", actor: "test")
        guard case .success(let anthropic) = try await app.resolution.resolve(ResolutionQuery(workspaceID: ws, providerID: "anthropic")) else {
            Issue.record("the platform's Anthropic key should serve a provider the workspace brings none for")
            return
        }
        #expect(anthropic.map(\.source) == [.platform])
        guard case .success(let openai) = try await app.resolution.resolve(ResolutionQuery(workspaceID: ws, providerID: "openai")) else {
            Issue.record("the own key serves")
            return
        }
        #expect(openai.map(\.source) == [.byok], "never: only the workspace's own key")
        await app.close()
        fixture.remove()
    }
}
