import Foundation
import Testing
@testable import KeywardenCore

@Suite("Resolution")
struct ResolverTests {
    let catalog: ProviderCatalog
    let epoch = Date(timeIntervalSince1970: 1_800_000_000)

    init() throws { catalog = try ProviderCatalog.load() }

    func key(_ id: String, ws: String? = "ws", provider: String = "openai", role: CredentialRole = .fallback, position: Int = 0,
             weight: Int = 1, active: Bool = true, status: VerificationStatus = .valid, model: String? = nil) -> Credential {
        Credential(id: id, scope: ws.map(Scope.workspace) ?? .platform, providerID: provider, description: id, defaultModel: model,
                   role: role, weight: weight, position: position, active: active, status: status, hint: "sk-…\(id.suffix(4))",
                   createdAt: epoch, createdBy: "t", updatedAt: epoch, updatedBy: "t")
    }

    func snapshot(_ keys: [Credential], byok: Bool = true, cardActive: Bool = true, bindings: [Binding] = [], managed: ResolutionSnapshot.ManagedDefault? = nil) -> ResolutionSnapshot {
        ResolutionSnapshot(
            workspaces: ["ws": .init(byokAllowed: byok)], credentials: keys,
            platformCards: ["openai": .init(active: cardActive, defaultModel: "gpt-5.4-mini"), "anthropic": .init(active: true, defaultModel: "claude-opus-4-7")],
            bindings: bindings, managedDefault: managed
        )
    }

    func ids(_ result: Result<[Candidate], ResolutionFailure>) -> [String] {
        (try? result.get().map(\.credentialID)) ?? []
    }

    @Test("the whole chain: binding, primary, fallbacks in order, pool, platform, managed")
    func wholeChain() {
        let keys = [
            key("fb2", position: 2), key("fb1", position: 1), key("prim", role: .primary), key("pool", role: .pool),
            key("bound", role: .fallback, position: 9), key("plat", ws: nil), key("mgd", ws: nil, provider: "anthropic"),
        ]
        let s = snapshot(keys, bindings: [Binding(workspaceID: "ws", consumer: "assistant-7", modality: .chat, credentialID: "bound")],
                         managed: .init(providerID: "anthropic", model: "claude-haiku-4-5"))
        let result = Resolver.resolve(ResolutionQuery(workspaceID: "ws", providerID: "openai", consumer: "assistant-7", allowsOtherProvider: true), in: s, catalog: catalog)
        #expect(ids(result) == ["bound", "prim", "fb1", "fb2", "pool", "plat", "mgd"])
        let sources = (try? result.get().map(\.source)) ?? []
        #expect(sources == [.byok, .byok, .byok, .byok, .byok, .platform, .managed])
        #expect((try? result.get().last?.model) == "claude-haiku-4-5")
        // The binding is per modality: TTS of the same consumer does not use it.
        #expect(ids(Resolver.resolve(ResolutionQuery(workspaceID: "ws", providerID: "openai", modality: .tts, consumer: "assistant-7"), in: s, catalog: catalog)).first == "prim")
        // A native pass-through cannot be served by another provider.
        #expect(!ids(Resolver.resolve(ResolutionQuery(workspaceID: "ws", providerID: "openai"), in: s, catalog: catalog)).contains("mgd"))
    }

    @Test("a snapshot finds every key by id, in a workspace or on the platform, and lists a workspace's keys in chain order")
    func snapshotLookups() {
        let keys = [key("pool", role: .pool), key("fb2", position: 2), key("claude", provider: "anthropic"), key("fb1", position: 1),
                    key("prim", role: .primary), key("plat", ws: nil), key("other", ws: "ws2")]
        let s = snapshot(keys)
        for key in keys { #expect(s.credential(key.id) == key) }
        #expect(s.credential("missing") == nil)
        #expect(s.keys(ofWorkspace: "ws").map(\.id) == ["claude", "prim", "fb1", "fb2", "pool"])
        #expect(s.keys(ofWorkspace: "ws2").map(\.id) == ["other"] && s.policy(ofWorkspace: "ws2") == nil)
        #expect(s.platformKeys(for: "openai").map(\.id) == ["plat"] && s.platformCard(for: "openai")?.defaultModel == "gpt-5.4-mini")
    }

    @Test("a plan without BYOK skips the workspace's keys and says so")
    func noByok() {
        let s = snapshot([key("prim", role: .primary), key("plat", ws: nil)], byok: false)
        #expect(ids(Resolver.resolve(ResolutionQuery(workspaceID: "ws", providerID: "openai"), in: s, catalog: catalog)) == ["plat"])
        let none = Resolver.resolve(ResolutionQuery(workspaceID: "ws", providerID: "openai"), in: snapshot([key("prim", role: .primary)], byok: false, cardActive: false), catalog: catalog)
        guard case .failure(let failure) = none else { Issue.record("expected a failure"); return }
        #expect(failure.code == "no_key_available" && failure.providerID == "openai")
        #expect(failure.reasons.contains("the workspace's plan does not allow its own keys"))
        #expect(failure.reasons.contains("the platform's openai card is deactivated"))
    }

    @Test("inactive, invalid, quota-exhausted, unreadable and cooling-down keys are skipped; usable states are kept")
    func skipping() {
        let keys = [
            key("off", role: .primary, active: false), key("bad", status: .invalid), key("quota", status: .quotaExceeded),
            key("unread", status: .unreadable), key("cool"), key("limited", position: 5, status: .rateLimited), key("new", position: 6, status: .unverified),
        ]
        let result = Resolver.resolve(ResolutionQuery(workspaceID: "ws", providerID: "openai"), in: snapshot(keys, cardActive: false), catalog: catalog, coolingDown: ["cool"])
        #expect(ids(result) == ["limited", "new"])
        let empty = Resolver.resolve(ResolutionQuery(workspaceID: "ws", providerID: "openai"), in: snapshot([key("bad", status: .invalid)], cardActive: false), catalog: catalog)
        if case .failure(let failure) = empty { #expect(failure.reasons.first == "the workspace's openai keys are unusable (1 invalid)") } else { Issue.record("expected a failure") }
    }

    @Test("routing by model finds the provider; an unknown model or provider is a clear failure")
    func routingByModel() {
        let s = snapshot([key("ant", provider: "anthropic", role: .primary)])
        #expect(ids(Resolver.resolve(ResolutionQuery(workspaceID: "ws", providerID: nil, model: "claude-sonnet-4-6"), in: s, catalog: catalog)) == ["ant"])
        if case .failure(let f) = Resolver.resolve(ResolutionQuery(workspaceID: "ws", providerID: nil, model: "mystery-1"), in: s, catalog: catalog) { #expect(f.code == "unknown_model") } else { Issue.record("expected a failure") }
        if case .failure(let f) = Resolver.resolve(ResolutionQuery(workspaceID: "ws", providerID: "nope"), in: s, catalog: catalog) { #expect(f.code == "unknown_provider") } else { Issue.record("expected a failure") }
    }

    @Test("the pool is ordered by weight: over many draws each key leads in proportion")
    func poolByWeight() {
        let keys = [key("heavy", role: .pool, weight: 3), key("light", role: .pool, weight: 1)]
        var generator = SeededGenerator(seed: 42)
        var firsts: [String: Int] = [:]
        for _ in 0..<4000 {
            let order = Resolver.weightedOrder(keys, weight: \.weight, random: { Int.random(in: 0..<$0, using: &generator) })
            firsts[order[0].id, default: 0] += 1
            #expect(order.count == 2)
        }
        let share = Double(firsts["heavy"] ?? 0) / 4000
        #expect(share > 0.70 && share < 0.80)
    }
}

/// A deterministic generator for statistical tests.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Resolution: the managed default")
struct ManagedDefaultTests {
    @Test("the managed default serves only while its card is active, and the failure says so")
    func managedNeedsItsCard() throws {
        let catalog = try ProviderCatalog.load()
        let now = Date()
        let key = Credential(id: "key_managed", scope: .platform, providerID: "anthropic", description: "managed", active: true, status: .valid,
                             hint: "sk-…x", createdAt: now, createdBy: "t", updatedAt: now, updatedBy: "t")
        func snapshot(active: Bool) -> ResolutionSnapshot {
            ResolutionSnapshot(workspaces: ["ws": .init(byokAllowed: true)], credentials: [key],
                               platformCards: ["anthropic": .init(active: active, defaultModel: nil)],
                               managedDefault: .init(providerID: "anthropic", model: "claude-haiku-4-5"))
        }
        let query = ResolutionQuery(workspaceID: "ws", providerID: "openai", allowsOtherProvider: true)
        let served = try Resolver.resolve(query, in: snapshot(active: true), catalog: catalog).get()
        #expect(served.map(\.source) == [.managed] && served.first?.model == "claude-haiku-4-5")
        guard case .failure(let failure) = Resolver.resolve(query, in: snapshot(active: false), catalog: catalog) else {
            Issue.record("a deactivated managed card still served")
            return
        }
        #expect(failure.description.contains("managed default's card (anthropic) is deactivated"))
        // The native face never switches provider.
        let native = Resolver.resolve(ResolutionQuery(workspaceID: "ws", providerID: "openai"), in: snapshot(active: true), catalog: catalog)
        #expect((try? native.get()) == nil)
    }
}
