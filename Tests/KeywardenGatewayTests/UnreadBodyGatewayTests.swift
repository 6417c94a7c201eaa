import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenStore
import KeywardenTestSupport
import NIOCore
import Prometheus
import Testing
@testable import KeywardenGateway

/// A body some vendor reads otherwise than Keywarden serves only keys that may take it unread: a workspace's own key
/// with no budget. The platform's keys, and own keys under a budget, never see it.
@Suite("Gateway and bodies Keywarden cannot read as the vendor would")
struct UnreadBodyGatewayTests {
    static let hazards = [
        #"{"model":"gpt-4.1-mini","stream":false,"stream":true,"messages":[]}"#,
        #"{"model":"gpt-4.1-mini","STREAM":true,"stream":false,"messages":[]}"#,
        "{\"model\":\"gpt-4.1-mini\",\"\u{17F}tream\":true,\"messages\":[]}",
        #"{"model":"gpt-4.1-mini","messages":[{"role":"user","content":"\ud800"}]}"#,
        #"{"model":"gpt-4.1-mini","max_tokens":1e999,"messages":[]}"#,
        "\u{FEFF}{\"model\":\"gpt-4.1-mini\",\"messages\":[]}",
        #"{"model":"gpt-4.1-mini","stream_options":{"include_usage":false,"include_usage":true},"messages":[]}"#,
    ]

    struct Setup {
        let fixture: StoreFixture
        let app: AppServices
        let gateway: Gateway
        let transport: ScriptedTransport
        let workspaceID: String

        func call(_ body: String, contentType: String = "application/json") -> GatewayCall {
            GatewayCall(face: .native(providerID: "openai"), method: "POST", pathAndQuery: "/v1/chat/completions",
                        headers: [("Content-Type", contentType)], body: .complete(ByteBuffer(string: body)), workspaceID: workspaceID,
                        consumer: nil, modality: nil)
        }
    }

    func setUp(ownKey: Bool, platformKey: Bool, byokBudget: Bool = false) async throws -> Setup {
        let fixture = try StoreFixture()
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Bodies", byokAllowed: true, exclusive: false, actor: "test").id
        if platformKey {
            _ = try await app.platformCards.save("openai", PlatformCardUpdate(apiKey: Secret("sk-platform-0123456789abcdef")), actor: "test")
            _ = try await app.platformCards.activate("openai", actor: "test")
        }
        if ownKey {
            _ = try await app.keys.create(workspaceID: ws, NewKeyRequest(providerID: "openai", description: "own", apiKey: Secret("sk-own-0123456789abcdef"),
                                                                         role: .primary, active: true), actor: "test")
        }
        if byokBudget { _ = try await app.budgets.setLimits(workspaceID: ws, BudgetLimits(byok: 1_000_000), actor: "test") }
        let transport = ScriptedTransport(whole: true) { _ in .respond(status: 200, headers: GatewayInProcessTests.json, body: GatewayInProcessTests.ok) }
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry())
        let ledger = UsageLedger(app: app, interval: .seconds(60), metrics: metrics, logger: fixture.logs.logger)
        let gateway = Gateway(app: app, transport: transport, settings: GatewaySettings(), health: nil, ledger: ledger, metrics: metrics,
                              logger: fixture.logs.logger).carryingOutEffects()
        return Setup(fixture: fixture, app: app, gateway: gateway, transport: transport, workspaceID: ws)
    }

    func text(_ response: GatewayResponse) -> String {
        if case .complete(let buffer) = response.body { return String(buffer: buffer) }
        return ""
    }

    @Test("on the platform's key every hazardous body is 400 unreadable_body naming why, and reaches no vendor; a readable one is served")
    func platformKeyNeverSeesThem() async throws {
        let setup = try await setUp(ownKey: false, platformKey: true)
        for body in Self.hazards {
            let answer = await setup.gateway.handle(setup.call(body))
            #expect(answer.status == 400 && text(answer).contains("unreadable_body"), "\(body): \(answer.status) \(text(answer))")
        }
        // Labelled as something else, a body that opens an object is still JSON to a vendor.
        let disguised = await setup.gateway.handle(setup.call(Self.hazards[0], contentType: "text/plain"))
        #expect(disguised.status == 400)
        #expect(setup.transport.sent.isEmpty, "no vendor received any of them")
        let why = text(await setup.gateway.handle(setup.call(Self.hazards[0])))
        #expect(why.contains(#"duplicate member \"stream\" at $"#), "\(why)")
        #expect(await setup.gateway.handle(setup.call(#"{"model":"gpt-4.1-mini","stream":false,"messages":[]}"#)).status == 200)
        #expect(setup.transport.sent.count == 1)
        await setup.app.close()
        setup.fixture.remove()
    }

    @Test("a workspace's own key without a budget takes them as sent (the workspace pays its own vendor); with the platform's key behind it, only the own key serves")
    func ownKeyTakesThemUnread() async throws {
        let setup = try await setUp(ownKey: true, platformKey: true)
        for body in Self.hazards {
            let answer = await setup.gateway.handle(setup.call(body))
            #expect(answer.status == 200 && answer.headers.contains { $0.name == "X-Keywarden-Source" && $0.value == "byok" }, "\(body)")
        }
        #expect(setup.transport.sent.count == Self.hazards.count)
        #expect(setup.transport.keysSeen.allSatisfy { $0 == "sk-own-0123456789abcdef" }, "the platform's key never took one")
        #expect(setup.transport.sent.map { String(decoding: $0.body, as: UTF8.self) } == Self.hazards, "forwarded byte for byte")
        await setup.app.close()
        setup.fixture.remove()
    }

    @Test("a form upload names its model in a field: read and metered on the platform's key; a form whose model is given twice, or that does not end, is refused there and reaches no vendor")
    func formUploads() async throws {
        let setup = try await setUp(ownKey: false, platformKey: true)
        let boundary = "kwForm1234"
        func form(_ fields: [(String, String)], end: Bool = true) -> String {
            var text = "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF....\r\n"
            for (name, value) in fields { text += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n" }
            return end ? text + "--\(boundary)--\r\n" : text
        }
        func call(_ body: String) -> GatewayCall {
            GatewayCall(face: .native(providerID: "openai"), method: "POST", pathAndQuery: "/v1/audio/transcriptions",
                        headers: [("Content-Type", "multipart/form-data; boundary=\(boundary)")], body: .complete(ByteBuffer(string: body)),
                        workspaceID: setup.workspaceID, consumer: nil, modality: nil)
        }
        let served = await setup.gateway.handle(call(form([("model", "gpt-4o-transcribe"), ("language", "en")])))
        #expect(served.status == 200)
        #expect(served.headers.contains { $0.name == "X-Keywarden-Model" && $0.value == "gpt-4o-transcribe" }, "the form's model is the call's: \(served.headers)")
        let sent = setup.transport.sent.count
        for body in [form([("model", "whisper-1"), ("model", "gpt-4o-transcribe")]), form([("model", "whisper-1")], end: false)] {
            let refused = await setup.gateway.handle(call(body))
            #expect(refused.status == 400 && text(refused).contains("unreadable_body"), "\(refused.status) \(text(refused))")
        }
        // A JSON body labelled as a form is judged as JSON (a label cannot hide it).
        let disguised = GatewayCall(face: .native(providerID: "openai"), method: "POST", pathAndQuery: "/v1/chat/completions",
                                    headers: [("Content-Type", "multipart/form-data; boundary=X")],
                                    body: .complete(ByteBuffer(string: #"{"model":"gpt-4o-mini","MODEL":"gpt-4o","max_tokens":16,"Max_Tokens":100000,"x":"--X--"}"#)),
                                    workspaceID: setup.workspaceID, consumer: nil, modality: nil)
        let judged = await setup.gateway.handle(disguised)
        #expect(judged.status == 400 && text(judged).contains("unreadable_body"), "\(judged.status) \(text(judged))")
        #expect(setup.transport.sent.count == sent, "a refused form reached the vendor")
        await setup.app.close()
        setup.fixture.remove()
    }

    @Test("an own key under a budget needs the body read too")
    func budgetedOwnKeyRefusesThem() async throws {
        let setup = try await setUp(ownKey: true, platformKey: false, byokBudget: true)
        let answer = await setup.gateway.handle(setup.call(Self.hazards[3]))
        #expect(answer.status == 400 && text(answer).contains("lone surrogate at $.messages[0].content"), "\(text(answer))")
        #expect(setup.transport.sent.isEmpty)
        await setup.app.close()
        setup.fixture.remove()
    }
}

/// What a call the vendor received costs, whatever came back: a stream that reported no usage, an attempt a deadline
/// ended after its request was sent.
@Suite("Gateway charges what the vendor bills")
struct VendorBillsGatewayTests {
    func setUp(_ transport: ScriptedTransport, limits: (BudgetLimits?, RateLimits?)) async throws -> (StoreFixture, AppServices, Gateway, UsageLedger, String) {
        let fixture = try StoreFixture()
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Bills", byokAllowed: true, exclusive: false, actor: "test").id
        _ = try await app.platformCards.save("openai", PlatformCardUpdate(apiKey: Secret("sk-platform-0123456789abcdef")), actor: "test")
        _ = try await app.platformCards.activate("openai", actor: "test")
        _ = try await app.keys.create(workspaceID: ws, NewKeyRequest(providerID: "openai", description: "slow own", apiKey: Secret("sk-own-slow-0123456789"),
                                                                     role: .primary, active: true), actor: "test")
        if let budget = limits.0 { _ = try await app.budgets.setLimits(workspaceID: ws, budget, actor: "test") }
        if let rates = limits.1 { _ = try await app.rateLimits.setLimits(workspaceID: ws, rates, actor: "test") }
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry())
        let ledger = UsageLedger(app: app, interval: .seconds(60), metrics: metrics, logger: fixture.logs.logger)
        let gateway = Gateway(app: app, transport: transport, settings: GatewaySettings(), health: nil, ledger: ledger, metrics: metrics, logger: fixture.logs.logger).carryingOutEffects()
        return (fixture, app, gateway, ledger, ws)
    }

    func call(_ ws: String, _ body: String) -> GatewayCall {
        GatewayCall(face: .native(providerID: "openai"), method: "POST", pathAndQuery: "/v1/chat/completions", headers: [("Content-Type", "application/json")],
                    body: .complete(ByteBuffer(string: body)), workspaceID: ws, consumer: nil, modality: nil)
    }

    @Test("a stream whose answer reports no usage counts its estimated tokens against the tokens-per-minute limit")
    func unreportedStreamCountsItsEstimate() async throws {
        let transport = ScriptedTransport { key in
            key.contains("own") ? .fail(.connectTimeout)
                : .respond(status: 200, headers: [("Content-Type", "text/event-stream")], body: "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n")
        }
        let (fixture, app, gateway, _, ws) = try await setUp(transport, limits: (nil, RateLimits(requestsPerMinute: 100, tokensPerMinute: 1_000)))
        // Both calls must fall in one minute's window for the first to count against the second: the minute is taken
        // before the first call and compared after the second.
        let minute = RateWindow(containing: Date()).key
        let first = await gateway.handle(call(ws, #"{"model":"gpt-4.1-mini","stream":true,"max_tokens":600,"messages":[]}"#))
        #expect(first.status == 200)
        if case .stream(let stream) = first.body { try await stream.pump { _ in } }
        // The stream said nothing of its tokens: it keeps its estimate (600 output tokens and its input, ~615), so a call
        // estimated at ~465 no longer fits the minute's 1,000 (counted as 0, it would). On PostgreSQL the settlement is
        // written off the call's path: given a moment, it must not have given the estimate back.
        try await Task.sleep(for: .milliseconds(300))
        let next = await gateway.handle(call(ws, #"{"model":"gpt-4.1-mini","max_tokens":450,"messages":[]}"#))
        if case .stream(let stream) = next.body { try await stream.pump { _ in } }
        if RateWindow(containing: Date()).key == minute { #expect(next.status == 429, "the stream's tokens were counted as none") }
        await app.close()
        fixture.remove()
    }

    @Test("an attempt that never reached the vendor (a connect that timed out, a deadline that passed before the request was sent) costs nothing")
    func unsentAttemptIsFree() async throws {
        let transport = ScriptedTransport { key in
            key.contains("own") ? .fail(.connectTimeout) : .respond(status: 200, headers: GatewayInProcessTests.json, body: GatewayInProcessTests.ok)
        }
        let (fixture, app, gateway, ledger, ws) = try await setUp(transport, limits: (BudgetLimits(platform: 100_000, byok: 100_000), nil))
        let answer = await gateway.handle(call(ws, #"{"model":"gpt-4.1-mini","messages":[]}"#))
        if case .stream(let stream) = answer.body { try await stream.pump { _ in } }
        await ledger.flush()
        let byok = try #require(try await app.budgets.status(workspaceID: ws, defaultPlatformLimit: nil).first { $0.scope == .byok })
        #expect(answer.status == 200 && byok.spent == 0 && byok.reserved == 0, "\(byok)")
        let rows = try await app.usage.report(UsageQuery(workspaceID: ws, from: nil, to: nil, groupBy: .source))
        #expect(rows.totals.requests == 1)
        await app.close()
        fixture.remove()
    }

    @Test("an attempt the first-byte deadline ends after its request was sent is charged its estimate in a row of its own; the key that serves next is charged as usual")
    func timedOutAttemptIsCharged() async throws {
        let transport = ScriptedTransport { key in
            key.contains("own") ? .fail(.deadlineExceeded) : .respond(status: 200, headers: GatewayInProcessTests.json, body: GatewayInProcessTests.ok)
        }
        let (fixture, app, gateway, ledger, ws) = try await setUp(transport, limits: (BudgetLimits(platform: 100_000, byok: 100_000), nil))
        let answer = await gateway.handle(call(ws, #"{"model":"gpt-4.1-mini","messages":[]}"#))
        #expect(answer.status == 200 && answer.headers.contains { $0.name == "X-Keywarden-Source" && $0.value == "platform" })
        if case .stream(let stream) = answer.body { try await stream.pump { _ in } }
        await ledger.flush()
        let statuses = try await app.budgets.status(workspaceID: ws, defaultPlatformLimit: nil)
        let byok = try #require(statuses.first { $0.scope == .byok })
        let platform = try #require(statuses.first { $0.scope == .platform })
        #expect(byok.spent == 1000 && byok.reserved == 0, "the timed-out own key's attempt is charged its estimate: \(byok)")
        #expect(platform.spent == 1000 && platform.reserved == 0)
        let rows = try await app.usage.report(UsageQuery(workspaceID: ws, from: nil, to: nil, groupBy: .source))
        #expect(rows.totals.requests == 2, "a row for the timed-out attempt and one for the call")
        await app.close()
        fixture.remove()
    }
}

/// Bodies that would reach a platform key without being read, by their encoding or their label.
@Suite("Gateway and bodies no meter reads")
struct UnreadEncodingGatewayTests {
    @Test("a compressed body, a UTF-16 body and a JSON body labelled as media are refused on the platform's key; a real media upload is not judged as JSON")
    func encodingsAndLabels() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Labels", byokAllowed: true, exclusive: false, actor: "test").id
        _ = try await app.platformCards.save("openai", PlatformCardUpdate(apiKey: Secret("sk-platform-0123456789abcdef")), actor: "test")
        _ = try await app.platformCards.activate("openai", actor: "test")
        let transport = ScriptedTransport(whole: true) { _ in .respond(status: 200, headers: GatewayInProcessTests.json, body: GatewayInProcessTests.ok) }
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry())
        let gateway = Gateway(app: app, transport: transport, settings: GatewaySettings(), health: nil,
                              ledger: UsageLedger(app: app, interval: .seconds(60), metrics: metrics, logger: fixture.logs.logger), metrics: metrics,
                              logger: fixture.logs.logger).carryingOutEffects()
        func call(_ body: [UInt8], _ headers: [(String, String)], path: String = "/v1/chat/completions") -> GatewayCall {
            GatewayCall(face: .native(providerID: "openai"), method: "POST", pathAndQuery: path, headers: headers,
                        body: .complete(ByteBuffer(bytes: body)), workspaceID: ws, consumer: nil, modality: nil)
        }
        let json: [UInt8] = Array(#"{"model":"gpt-4.1-mini","messages":[]}"#.utf8)
        var utf16: [UInt8] = [0xFF, 0xFE]
        for unit in #"{"model":"gpt-4.1-mini","messages":[]}"#.utf16 { utf16 += [UInt8(unit & 0xFF), UInt8(unit >> 8)] }
        let cases: [([UInt8], [(String, String)])] = [
            (json, [("Content-Type", "application/json"), ("Content-Encoding", "gzip")]),
            (utf16, [("Content-Type", "application/json")]), (utf16, []),
            (Array(#"{"model":"gpt-4.1-mini","stream":true,"STREAM":false}"#.utf8), [("Content-Type", "image/json")]),
        ]
        for (body, headers) in cases {
            let answer = await gateway.handle(call(body, headers))
            #expect(answer.status == 400, "\(headers)")
        }
        #expect(transport.sent.isEmpty)
        let audio = await gateway.handle(call([0x52, 0x49, 0x46, 0x46, 0x00, 0x00, 0x00, 0x00], [("Content-Type", "audio/wav")], path: "/v1/audio/transcriptions"))
        #expect(audio.status == 200, "media is not JSON: \(audio.status)")
        await app.close()
    }
}

@Suite("Gateway and vendors' statuses")
struct InvalidStatusGatewayTests {
    @Test("a vendor answering a status HTTP does not know (000, 099, 600, 999) is failed over; when every key does, 502 upstream_invalid", arguments: [0, 99, 600, 999])
    func invalidStatuses(status: Int) async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Statuses", byokAllowed: true, exclusive: false, actor: "test").id
        for (index, secret) in ["sk-invalid-status-0001", "sk-good-status-0002"].enumerated() {
            _ = try await app.keys.create(workspaceID: ws, NewKeyRequest(providerID: "openai", description: "k\(index)", apiKey: Secret(secret),
                                                                         role: index == 0 ? .primary : .fallback, active: true), actor: "test")
        }
        let allBad = ScriptedTransport(whole: true) { _ in .respond(status: status, headers: GatewayInProcessTests.json, body: "{}") }
        let firstBad = ScriptedTransport(whole: true) { key in
            key.contains("invalid") ? .respond(status: status, headers: GatewayInProcessTests.json, body: "{}")
                : .respond(status: 200, headers: GatewayInProcessTests.json, body: GatewayInProcessTests.ok)
        }
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry())
        let ledger = UsageLedger(app: app, interval: .seconds(60), metrics: metrics, logger: fixture.logs.logger)
        let call = GatewayCall(face: .native(providerID: "openai"), method: "POST", pathAndQuery: "/v1/chat/completions",
                               headers: [("Content-Type", "application/json")], body: .complete(ByteBuffer(string: #"{"model":"gpt-4.1-mini","messages":[]}"#)),
                               workspaceID: ws, consumer: nil, modality: nil)
        let served = await Gateway(app: app, transport: firstBad, settings: GatewaySettings(), health: nil, ledger: ledger, metrics: metrics,
                                   logger: fixture.logs.logger).carryingOutEffects().handle(call)
        #expect(served.status == 200 && firstBad.sent.count == 2)
        let refused = await Gateway(app: app, transport: allBad, settings: GatewaySettings(), health: nil, ledger: ledger, metrics: metrics,
                                    logger: fixture.logs.logger).carryingOutEffects().handle(call)
        #expect(refused.status == 502)
        if case .complete(let buffer) = refused.body { #expect(String(buffer: buffer).contains("upstream_invalid")) }
        await app.close()
    }
}
