import Foundation

/// Who pays for a call: the workspace's own key, the platform's, or the platform's managed default.
public enum KeySource: String, Codable, Sendable {
    case byok, platform, managed
}

/// One key resolution may use, in order.
public struct Candidate: Sendable, Equatable {
    public let credentialID: String
    public let providerID: String
    public let source: KeySource
    /// Why it is in the list: `binding`, `primary`, `fallback`, `pool`, `platform`, `managed`.
    public let reason: String
    /// The model to use when the request names none (or, for the managed default, instead of it).
    public let model: String?
    /// Which of the key's secrets to use: its own, or (during a rotation's grace period) the one it replaced.
    public let slot: KeySlot

    public init(credentialID: String, providerID: String, source: KeySource, reason: String, model: String?, slot: KeySlot = .current) {
        self.credentialID = credentialID
        self.providerID = providerID
        self.source = source
        self.reason = reason
        self.model = model
        self.slot = slot
    }
}

/// An explicit choice: this consumer's calls of this modality use that key (seed 003: an assistant
/// uses a specific key; its TTS another one).
public struct Binding: Sendable, Equatable, Codable {
    public let workspaceID: String
    public let consumer: String
    /// `nil` binds every modality of the consumer.
    public let modality: Modality?
    /// The bound key, or `nil` for "the provider's main chain" (an explicit "no override").
    public let credentialID: String?

    public init(workspaceID: String, consumer: String, modality: Modality?, credentialID: String?) {
        self.workspaceID = workspaceID
        self.consumer = consumer
        self.modality = modality
        self.credentialID = credentialID
    }
}

/// What resolution reads: every key's metadata (never a secret), the workspaces' plans, the platform's
/// cards, bindings and the managed default, all of it in memory (tests and benchmarks). A server keeps the same
/// parts per scope instead (``WorkspaceResolution``, ``PlatformResolution``) and resolves over a ``ResolutionView``.
public struct ResolutionSnapshot: Sendable {
    public struct WorkspacePolicy: Sendable, Equatable {
        public let byokAllowed: Bool
        /// The workspace's own spending limits (the gateway falls back to the platform's default for a `nil`).
        public let budget: BudgetLimits
        /// The workspace's rate limits on the platform's keys.
        public let rateLimits: RateLimits
        /// The plan whose default limits fill the ones the workspace leaves unset.
        public let plan: String?
        /// How the workspace's budget periods run, if it chose (else its plan's, else calendar months).
        public let budgetCycle: BudgetCycle?
        /// When the platform's keys stand in for the workspace's own, if it chose (else its plan's, else the default).
        public let platformFallback: PlatformFallback?
        public init(byokAllowed: Bool, budget: BudgetLimits = BudgetLimits(), rateLimits: RateLimits = RateLimits(), plan: String? = nil,
                    budgetCycle: BudgetCycle? = nil, platformFallback: PlatformFallback? = nil) {
            self.platformFallback = platformFallback
            self.budgetCycle = budgetCycle
            self.byokAllowed = byokAllowed
            self.budget = budget
            self.rateLimits = rateLimits
            self.plan = plan
        }
    }

    public struct PlatformCard: Sendable, Equatable {
        public let active: Bool
        public let defaultModel: String?
        public init(active: Bool, defaultModel: String?) {
            self.active = active
            self.defaultModel = defaultModel
        }
    }

    /// The platform's built-in model for workspaces whose own provider is off or failing.
    public struct ManagedDefault: Sendable, Equatable {
        public let providerID: String
        public let model: String
        public init(providerID: String, model: String) {
            self.providerID = providerID
            self.model = model
        }
    }

    /// Every workspace's part, by id.
    public let workspaces: [String: WorkspaceResolution]
    /// The platform's part.
    public let platform: PlatformResolution
    /// The workspace of every workspace key.
    private let owners: [String: String]

    public init(workspaces: [String: WorkspacePolicy] = [:], credentials: [Credential] = [], platformCards: [String: PlatformCard] = [:],
                bindings: [Binding] = [], managedDefault: ManagedDefault? = nil, plans: [String: Plan] = [:],
                defaultFallback: PlatformFallback = .platformDefault) {
        var keysByWorkspace: [String: [Credential]] = [:]
        var platformKeys: [Credential] = []
        var owners: [String: String] = [:]
        for credential in credentials {
            if let workspaceID = credential.scope.workspaceID {
                keysByWorkspace[workspaceID, default: []].append(credential)
                owners[credential.id] = workspaceID
            } else {
                platformKeys.append(credential)
            }
        }
        let bindingsByWorkspace = Dictionary(grouping: bindings, by: \.workspaceID)
        var parts: [String: WorkspaceResolution] = [:]
        for id in Set(workspaces.keys).union(keysByWorkspace.keys) {
            parts[id] = WorkspaceResolution(id: id, policy: workspaces[id], credentials: keysByWorkspace[id] ?? [], bindings: bindingsByWorkspace[id] ?? [])
        }
        self.workspaces = parts
        self.platform = PlatformResolution(cards: platformCards, credentials: platformKeys, managedDefault: managedDefault, plans: plans,
                                           defaultFallback: defaultFallback)
        self.owners = owners
    }

    /// What a call of `workspaceID` (or of no workspace) reads.
    public func view(for workspaceID: String?) -> ResolutionView {
        ResolutionView(workspace: workspaceID.flatMap { workspaces[$0] }, platform: platform)
    }

    /// The workspace's plan, or `nil` when there is no such workspace.
    public func policy(ofWorkspace workspaceID: String) -> WorkspacePolicy? { workspaces[workspaceID]?.policy }

    /// The workspace's keys, every provider, in the order its chains try them.
    public func keys(ofWorkspace workspaceID: String) -> [Credential] { workspaces[workspaceID]?.keys ?? [] }

    /// The platform's keys for a provider.
    public func platformKeys(for providerID: String) -> [Credential] { platform.keys(for: providerID) }

    /// The platform's card for a provider.
    public func platformCard(for providerID: String) -> PlatformCard? { platform.card(for: providerID) }

    /// A key by id, wherever it lives.
    public func credential(_ id: String) -> Credential? {
        if let workspaceID = owners[id] { return workspaces[workspaceID]?.credential(id) }
        return platform.credential(id)
    }
}

/// What resolution reads of a key: small, so walking a chain copies a few references, not a whole `Credential`.
struct ChainKey: Sendable {
    let id: String
    let providerID: String
    let role: CredentialRole
    let weight: Int
    let defaultModel: String?
    /// Active, holding a key, and not known bad (or still served by the secret a rotation replaced); only a rest can
    /// still rule it out.
    let ready: Bool
    /// Whether its own secret is not known bad.
    let currentReady: Bool
    /// Whether the secret a rotation replaced still serves as its fallback (the store removes it when its grace ends).
    let hasPrevious: Bool

    init(_ key: Credential) {
        (id, providerID, role, weight, defaultModel) = (key.id, key.providerID, key.role, key.weight, key.defaultModel)
        currentReady = key.status.isUsable
        hasPrevious = key.lifecycle.previous != nil
        ready = key.active && (currentReady || hasPrevious) && !key.hint.isEmpty
    }

    @inline(__always)
    func isUsable(coolingDown: Set<String>) -> Bool { ready && (coolingDown.isEmpty || !coolingDown.contains(id)) }
}

/// One workspace's part of resolution: its plan (`nil`: no such workspace), its keys in the order its chains try
/// them, and its bindings. Immutable: a change to the workspace replaces it whole.
public struct WorkspaceResolution: Sendable {
    public let id: String
    public let policy: ResolutionSnapshot.WorkspacePolicy?
    /// Every provider's keys, in chain order (`chain[i]` is `keys[i]`).
    public let keys: [Credential]
    let chain: [ChainKey]
    public let bindings: [Binding]
    /// The workspace's chat routes by name.
    public let routes: [String: ChatRoute]

    public init(id: String, policy: ResolutionSnapshot.WorkspacePolicy?, credentials: [Credential], bindings: [Binding], routes: [ChatRoute] = []) {
        self.routes = Dictionary(routes.filter { $0.workspaceID == id }.map { ($0.name, $0) }) { $1 }
        self.id = id
        self.policy = policy
        keys = credentials.sorted(by: Credential.precedesInChain)
        chain = keys.map(ChainKey.init)
        self.bindings = bindings.filter { $0.workspaceID == id }
    }

    /// One of the workspace's keys by id.
    public func credential(_ id: String) -> Credential? { keys.first { $0.id == id } }
}

/// The platform's part of resolution: its cards, its keys by provider, and the managed default.
public struct PlatformResolution: Sendable {
    /// A provider's platform card and the platform's keys for it (`chain[i]` is `keys[i]`).
    struct ProviderEntry: Sendable {
        var card: ResolutionSnapshot.PlatformCard?
        var keys: [Credential] = []
        var chain: [ChainKey] = []
    }

    let providers: [String: ProviderEntry]
    /// The provider of every platform key.
    private let locations: [String: String]
    public let managedDefault: ResolutionSnapshot.ManagedDefault?
    /// The plans by name, with their default limits.
    public let plans: [String: Plan]
    /// The platform's chat routes by name (every workspace's default).
    public let routes: [String: ChatRoute]
    /// When the platform's keys stand in for a workspace's own, when neither the workspace nor its plan says.
    public let defaultFallback: PlatformFallback

    public init(cards: [String: ResolutionSnapshot.PlatformCard] = [:], credentials: [Credential] = [], managedDefault: ResolutionSnapshot.ManagedDefault? = nil,
                plans: [String: Plan] = [:], routes: [ChatRoute] = [], defaultFallback: PlatformFallback = .platformDefault) {
        self.defaultFallback = defaultFallback
        self.plans = plans
        self.routes = Dictionary(routes.filter { $0.workspaceID == nil }.map { ($0.name, $0) }) { $1 }
        var providers = cards.mapValues { ProviderEntry(card: $0) }
        var locations: [String: String] = [:]
        for credential in credentials where credential.scope.workspaceID == nil {
            providers[credential.providerID, default: ProviderEntry()].keys.append(credential)
            locations[credential.id] = credential.providerID
        }
        for (providerID, entry) in providers { providers[providerID]?.chain = entry.keys.map(ChainKey.init) }
        self.providers = providers
        self.locations = locations
        self.managedDefault = managedDefault
    }

    /// The platform's keys for a provider.
    public func keys(for providerID: String) -> [Credential] { providers[providerID]?.keys ?? [] }

    /// The platform's card for a provider.
    public func card(for providerID: String) -> ResolutionSnapshot.PlatformCard? { providers[providerID]?.card }

    /// A platform key by id.
    public func credential(_ id: String) -> Credential? {
        guard let providerID = locations[id] else { return nil }
        return providers[providerID]?.keys.first { $0.id == id }
    }

    /// Every platform key's id.
    public var credentialIDs: [String] { Array(locations.keys) }
}

/// What one call reads: its workspace's part (if it has a workspace) and the platform's.
public struct ResolutionView: Sendable {
    public let workspace: WorkspaceResolution?
    public let platform: PlatformResolution

    public init(workspace: WorkspaceResolution?, platform: PlatformResolution) {
        self.workspace = workspace
        self.platform = platform
    }

    /// The route of this name: the workspace's, else the platform's.
    public func route(_ name: String) -> ChatRoute? {
        workspace?.routes[name] ?? platform.routes[name]
    }

    /// The workspace's plan, or `nil` when there is no such workspace (or it is not this view's).
    public func policy(ofWorkspace workspaceID: String) -> ResolutionSnapshot.WorkspacePolicy? {
        workspace?.id == workspaceID ? workspace?.policy : nil
    }

    /// The workspace's keys, every provider, in the order its chains try them.
    public func keys(ofWorkspace workspaceID: String) -> [Credential] { workspace?.id == workspaceID ? workspace?.keys ?? [] : [] }

    /// The platform's keys for a provider.
    public func platformKeys(for providerID: String) -> [Credential] { platform.keys(for: providerID) }

    /// The platform's card for a provider.
    public func platformCard(for providerID: String) -> ResolutionSnapshot.PlatformCard? { platform.card(for: providerID) }

    /// A key by id: the workspace's or the platform's.
    public func credential(_ id: String) -> Credential? { workspace?.credential(id) ?? platform.credential(id) }

    /// When the platform's keys stand in for a workspace's own: its setting, else its plan's, else the platform's default.
    public func platformFallback(ofWorkspace workspaceID: String) -> PlatformFallback {
        let policy = policy(ofWorkspace: workspaceID)
        return policy?.platformFallback ?? policy?.plan.flatMap { platform.plans[$0]?.platformFallback } ?? platform.defaultFallback
    }

    /// The limits that hold for a workspace (its own, else its plan's, else the platform's default budget); `nil` when
    /// there is no such workspace.
    public func limits(ofWorkspace workspaceID: String, defaultPlatformBudget: Int?) -> EffectiveLimits? {
        guard let policy = policy(ofWorkspace: workspaceID) else { return nil }
        return EffectiveLimits(own: policy.budget, ownRates: policy.rateLimits, ownCycle: policy.budgetCycle, plan: policy.plan.flatMap { platform.plans[$0] },
                               defaultPlatformBudget: defaultPlatformBudget)
    }
}

/// What a call asks for.
public struct ResolutionQuery: Sendable, Equatable {
    public var workspaceID: String?
    /// The provider, or `nil` to route by `model`.
    public var providerID: String?
    public var model: String?
    public var modality: Modality
    public var consumer: String?
    /// Whether another provider may serve the call (the OpenAI-compatible face may; a native pass-through may not).
    public var allowsOtherProvider: Bool

    public init(workspaceID: String?, providerID: String?, model: String? = nil, modality: Modality = .chat, consumer: String? = nil, allowsOtherProvider: Bool = false) {
        self.workspaceID = workspaceID
        self.providerID = providerID
        self.model = model
        self.modality = modality
        self.consumer = consumer
        self.allowsOtherProvider = allowsOtherProvider
    }
}

/// Why no key can pay for a call.
public struct ResolutionFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable: `no_key_available`, `unknown_provider`, `unknown_model`.
    public let code: String
    public let providerID: String?
    /// Each step's reason, in order, for the operator and the caller.
    public let reasons: [String]

    public var description: String {
        let provider = providerID.map { " for \($0)" } ?? ""
        return "No key is available\(provider): " + reasons.joined(separator: "; ")
    }
}

/// The one function that answers "which key pays for this?".
public enum Resolver {
    /// The ordered candidates for a call: binding, then the workspace's keys (only if its plan allows
    /// BYOK: primary, fallbacks in order, the pool by weight), then the platform's active keys, then the
    /// managed default. Inactive, unusable (invalid, quota, unreadable) and cooling-down keys are skipped.
    public static func resolve(
        _ query: ResolutionQuery, in snapshot: ResolutionSnapshot, catalog: ProviderCatalog,
        coolingDown: Set<String> = [], random: (Int) -> Int = { Int.random(in: 0..<$0) }
    ) -> Result<[Candidate], ResolutionFailure> {
        resolve(query, in: snapshot.view(for: query.workspaceID), catalog: catalog, coolingDown: coolingDown, random: random)
    }

    /// The ordered candidates for a call, from the parts of resolution the call reads.
    public static func resolve(
        _ query: ResolutionQuery, in view: ResolutionView, catalog: ProviderCatalog,
        coolingDown: Set<String> = [], random: (Int) -> Int = { Int.random(in: 0..<$0) }
    ) -> Result<[Candidate], ResolutionFailure> {
        let providerID: String
        if let id = query.providerID {
            guard catalog.contains(id) else { return .failure(ResolutionFailure(code: "unknown_provider", providerID: id, reasons: ["there is no provider '\(id)'"])) }
            providerID = id
        } else if let model = query.model, let provider = catalog.provider(servingModel: model) {
            providerID = provider.id
        } else {
            return .failure(ResolutionFailure(code: "unknown_model", providerID: nil, reasons: ["no provider of the catalog serves model '\(query.model ?? "")'; name the provider"]))
        }

        var candidates = CandidateList()
        /// Whether the workspace brings its own active keys for the provider (its choice of who pays then applies).
        var hasOwnKeys = false
        var reasons: [String] = []
        let platform = view.platform.providers[providerID]
        // A key without a default model of its own uses its card's, else the catalog's.
        let cardModel = platform?.card?.defaultModel ?? catalog.provider(providerID)?.defaultModel
        func model(_ key: ChainKey) -> String? { key.defaultModel ?? cardModel }
        func skipped(_ keys: [Credential]) -> String {
            let counts = Dictionary(grouping: keys) { key -> String in
                if !key.active { return "inactive" }
                if key.hint.isEmpty { return "no key" }
                if !key.status.isUsable || !coolingDown.contains(key.id) { return key.status.rawValue }
                return "cooling down"
            }.map { "\($0.value.count) \($0.key)" }.sorted()
            return counts.joined(separator: ", ")
        }

        // 1 and 2: the workspace's binding and its own keys (already in chain order: primaries, fallbacks, pool).
        if let workspaceID = query.workspaceID {
            let entry = view.workspace?.id == workspaceID ? view.workspace : nil
            if let entry, let policy = entry.policy, policy.byokAllowed {
                let keys = entry.chain
                if let consumer = query.consumer, !entry.bindings.isEmpty,
                   let binding = entry.bindings.first(where: { $0.consumer == consumer && $0.modality == query.modality })
                        ?? entry.bindings.first(where: { $0.consumer == consumer && $0.modality == nil }),
                   let boundID = binding.credentialID,
                   let index = keys.firstIndex(where: { $0.id == boundID }), keys[index].providerID == providerID {
                    if keys[index].isUsable(coolingDown: coolingDown) {
                        candidates.add(keys[index], .byok, "binding", model: model(keys[index]))
                    } else {
                        reasons.append("the bound key is \(skipped([entry.keys[index]]))")
                    }
                }
                var own = 0
                var ready = 0
                var firstPool = -1
                var poolCount = 0
                for index in keys.indices where keys[index].providerID == providerID {
                    own += 1
                    guard keys[index].isUsable(coolingDown: coolingDown) else { continue }
                    ready += 1
                    switch keys[index].role {
                    case .primary: candidates.add(keys[index], .byok, "primary", model: model(keys[index]))
                    case .fallback: candidates.add(keys[index], .byok, "fallback", model: model(keys[index]))
                    case .pool:
                        if firstPool < 0 { firstPool = index }
                        poolCount += 1
                    }
                }
                if poolCount == 1 {
                    candidates.add(keys[firstPool], .byok, "pool", model: model(keys[firstPool]))
                } else if poolCount > 1 {
                    let pool = keys.indices.filter { keys[$0].providerID == providerID && keys[$0].role == .pool && keys[$0].isUsable(coolingDown: coolingDown) }
                    for index in weightedOrder(pool, weight: { keys[$0].weight }, random: random) {
                        candidates.add(keys[index], .byok, "pool", model: model(keys[index]))
                    }
                }
                hasOwnKeys = keys.indices.contains { keys[$0].providerID == providerID && entry.keys[$0].active }
                if own == 0 {
                    reasons.append("the workspace has no \(providerID) key")
                } else if ready == 0 {
                    reasons.append("the workspace's \(providerID) keys are unusable (\(skipped(entry.keys.filter { $0.providerID == providerID })))")
                }
            } else if entry?.policy == nil {
                reasons.append("the workspace does not exist")
            } else if entry?.chain.contains(where: { $0.providerID == providerID }) == true {
                reasons.append("the workspace's plan does not allow its own keys")
            }
        }

        // The workspace's choice of who pays: with `never`, the platform's keys (and the managed default) do not stand in
        // for a provider it brings its own active keys for.
        if hasOwnKeys, let workspaceID = query.workspaceID, view.platformFallback(ofWorkspace: workspaceID) == .never {
            reasons.append("the workspace's platform_fallback is never: the platform's keys do not stand in for its own \(providerID) keys")
            guard !candidates.items.isEmpty else { return .failure(ResolutionFailure(code: "no_key_available", providerID: providerID, reasons: reasons)) }
            return .success(candidates.items)
        }

        // 3: the platform's card for the provider.
        if let platform, let card = platform.card, card.active {
            var ready = 0
            for index in platform.chain.indices where platform.chain[index].isUsable(coolingDown: coolingDown) {
                ready += 1
                candidates.add(platform.chain[index], .platform, "platform", model: cardModel)
            }
            if ready == 0 { reasons.append(platform.keys.isEmpty ? "the platform has no \(providerID) key" : "the platform's \(providerID) key is unusable (\(skipped(platform.keys)))") }
        } else {
            reasons.append("the platform's \(providerID) card is deactivated")
        }

        // 4: the managed default, where another provider may serve the call.
        if let managed = view.platform.managedDefault, query.allowsOtherProvider || managed.providerID == providerID {
            let entry = managed.providerID == providerID ? platform : view.platform.providers[managed.providerID]
            if entry?.card?.active != true {
                reasons.append("the managed default's card (\(managed.providerID)) is deactivated")
            } else {
                let keys = entry?.chain ?? []
                var ready = 0
                for index in keys.indices where keys[index].isUsable(coolingDown: coolingDown) {
                    ready += 1
                    candidates.add(keys[index], .managed, "managed", model: managed.model)
                }
                if ready == 0 { reasons.append("the managed default (\(managed.providerID)) has no usable key") }
            }
        }

        guard !candidates.items.isEmpty else {
            return .failure(ResolutionFailure(code: "no_key_available", providerID: providerID, reasons: reasons))
        }
        return .success(candidates.items)
    }

    /// A weighted random order: each item's chance to come first is its share of the total weight (at least 1 each).
    static func weightedOrder<Item>(_ items: [Item], weight: (Item) -> Int, random: (Int) -> Int) -> [Item] {
        guard items.count > 1 else { return items }
        var remaining = items
        var ordered: [Item] = []
        ordered.reserveCapacity(items.count)
        while !remaining.isEmpty {
            // Weights are bounded when saved; clamped here too, so a weight forced into the database cannot overflow the sum.
            func share(_ item: Item) -> Int { min(max(weight(item), 1), 1_000_000) }
            let total = remaining.reduce(0) { $0 + share($1) }
            var pick = random(total)
            var index = 0
            for (i, item) in remaining.enumerated() {
                pick -= share(item)
                if pick < 0 { index = i; break }
            }
            ordered.append(remaining.remove(at: index))
        }
        return ordered
    }
}

/// The candidates found so far; a key is listed once, at its first place.
private struct CandidateList {
    var items: [Candidate] = []

    init() { items.reserveCapacity(8) }

    mutating func add(_ key: borrowing ChainKey, _ source: KeySource, _ reason: String, model: String?) {
        // At most a handful of candidates: a linear check beats hashing ids.
        let id = key.id
        guard !items.contains(where: { $0.credentialID == id }) else { return }
        if key.currentReady {
            items.append(Candidate(credentialID: id, providerID: key.providerID, source: source, reason: reason, model: model))
        }
        // A rotated key's old secret is its own fallback, tried right after the new one (or alone, if the new one is bad).
        if key.hasPrevious {
            items.append(Candidate(credentialID: id, providerID: key.providerID, source: source, reason: reason, model: model, slot: .previous))
        }
    }
}

extension Credential {
    /// The order a workspace's chain tries its keys: by provider, then primaries, fallbacks by position, the pool;
    /// the oldest first among equals.
    static func precedesInChain(_ a: Credential, _ b: Credential) -> Bool {
        (a.providerID, a.role.chainRank, a.position, a.createdAt, a.id) < (b.providerID, b.role.chainRank, b.position, b.createdAt, b.id)
    }
}

extension CredentialRole {
    /// Primaries come first in a chain, then fallbacks, then the pool.
    var chainRank: Int {
        switch self {
        case .primary: 0
        case .fallback: 1
        case .pool: 2
        }
    }
}

extension Resolver {
    /// What a route resolves to: every step's keys in chain order (each serving the step's model), then the managed
    /// default's (with its model) as the last step of every route; and the query of each step, so a later key can be
    /// checked against the step it came from.
    public struct RouteResolution: Sendable, Equatable {
        public var candidates: [Candidate]
        /// Each step's query (and the managed default's last, when it serves).
        public var queries: [ResolutionQuery]
        /// Why each step that has no usable key has none.
        public var reasons: [String]
    }

    /// Resolves a chat route for a workspace's call: `.failure` when no step (nor the managed default) has a usable key.
    public static func resolve(
        route: ChatRoute, workspaceID: String?, consumer: String?, in view: ResolutionView, catalog: ProviderCatalog,
        coolingDown: Set<String> = [], random: (Int) -> Int = { Int.random(in: 0..<$0) }
    ) -> Result<RouteResolution, ResolutionFailure> {
        var resolution = RouteResolution(candidates: [], queries: [], reasons: [])
        var seen = Set<String>()
        func add(_ candidate: Candidate, model: String?) {
            // A key serves a route once per model (a step may fall back to another model on the same key).
            guard seen.insert("\(candidate.credentialID)|\(candidate.slot)|\(model ?? "")").inserted else { return }
            resolution.candidates.append(Candidate(credentialID: candidate.credentialID, providerID: candidate.providerID, source: candidate.source,
                                                   reason: candidate.reason, model: model, slot: candidate.slot))
        }
        for step in route.steps {
            let query = ResolutionQuery(workspaceID: workspaceID, providerID: step.provider, model: step.model, modality: .chat,
                                        consumer: consumer, allowsOtherProvider: false)
            resolution.queries.append(query)
            switch resolve(query, in: view, catalog: catalog, coolingDown: coolingDown, random: random) {
            case .success(let list):
                for candidate in list where candidate.source != .managed { add(candidate, model: step.model) }
            case .failure(let failure):
                resolution.reasons.append("\(step.provider)/\(step.model): " + failure.reasons.joined(separator: "; "))
            }
        }
        if let managed = view.platform.managedDefault {
            let query = ResolutionQuery(workspaceID: workspaceID, providerID: managed.providerID, model: managed.model, modality: .chat,
                                        consumer: consumer, allowsOtherProvider: false)
            if case .success(let list) = resolve(query, in: view, catalog: catalog, coolingDown: coolingDown, random: random) {
                let managedKeys = list.filter { $0.source == .managed }
                if !managedKeys.isEmpty { resolution.queries.append(query) }
                for candidate in managedKeys { add(candidate, model: managed.model) }
            }
        }
        guard !resolution.candidates.isEmpty else {
            return .failure(ResolutionFailure(code: "no_key_available", providerID: nil,
                                              reasons: ["route '\(route.name)': " + (resolution.reasons.isEmpty ? "no step has a usable key" : resolution.reasons.joined(separator: " | "))]))
        }
        return .success(resolution)
    }
}
