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

    public init(credentialID: String, providerID: String, source: KeySource, reason: String, model: String?) {
        self.credentialID = credentialID
        self.providerID = providerID
        self.source = source
        self.reason = reason
        self.model = model
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
/// cards, bindings and the managed default. Built from the store and swapped whole when something changes.
public struct ResolutionSnapshot: Sendable {
    public struct WorkspacePolicy: Sendable, Equatable {
        public let byokAllowed: Bool
        public init(byokAllowed: Bool) { self.byokAllowed = byokAllowed }
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

    /// What resolution reads of a key: small, so walking a chain copies a few references, not a whole `Credential`.
    struct ChainKey: Sendable {
        let id: String
        let providerID: String
        let role: CredentialRole
        let weight: Int
        let defaultModel: String?
        /// Active, holding a key, and not known bad; only a rest can still rule it out.
        let ready: Bool

        init(_ key: Credential) {
            (id, providerID, role, weight, defaultModel) = (key.id, key.providerID, key.role, key.weight, key.defaultModel)
            ready = key.active && key.status.isUsable && !key.hint.isEmpty
        }

        @inline(__always)
        func isUsable(coolingDown: Set<String>) -> Bool { ready && (coolingDown.isEmpty || !coolingDown.contains(id)) }
    }

    /// A workspace's plan and its keys in the order its chain tries them (`chain[i]` is `keys[i]`).
    struct WorkspaceEntry: Sendable {
        var policy: WorkspacePolicy?
        var keys: [Credential] = []
        var chain: [ChainKey] = []
    }

    /// A provider's platform card and the platform's keys for it (`chain[i]` is `keys[i]`).
    struct ProviderEntry: Sendable {
        var card: PlatformCard?
        var keys: [Credential] = []
        var chain: [ChainKey] = []
    }

    /// Where a key lives: its workspace (or `nil` for the platform's keys under a provider) and its index there.
    private struct Location: Sendable {
        let workspaceID: String?
        let providerID: String
        let index: Int
    }

    /// Workspaces by id, each with its plan and keys: one lookup answers both.
    let workspaceEntries: [String: WorkspaceEntry]
    /// The platform's cards and keys by provider.
    let providerEntries: [String: ProviderEntry]
    private let locations: [String: Location]
    public let bindings: [Binding]
    public let managedDefault: ManagedDefault?

    public init(workspaces: [String: WorkspacePolicy] = [:], credentials: [Credential] = [], platformCards: [String: PlatformCard] = [:],
                bindings: [Binding] = [], managedDefault: ManagedDefault? = nil) {
        var workspaceEntries = workspaces.mapValues { WorkspaceEntry(policy: $0) }
        var providerEntries = platformCards.mapValues { ProviderEntry(card: $0) }
        for credential in credentials {
            if let workspaceID = credential.scope.workspaceID {
                workspaceEntries[workspaceID, default: WorkspaceEntry()].keys.append(credential)
            } else {
                providerEntries[credential.providerID, default: ProviderEntry()].keys.append(credential)
            }
        }
        var locations: [String: Location] = [:]
        for (workspaceID, entry) in workspaceEntries {
            let keys = entry.keys.sorted(by: Credential.precedesInChain)
            workspaceEntries[workspaceID]?.keys = keys
            workspaceEntries[workspaceID]?.chain = keys.map(ChainKey.init)
            for (index, key) in keys.enumerated() { locations[key.id] = Location(workspaceID: workspaceID, providerID: key.providerID, index: index) }
        }
        for (providerID, entry) in providerEntries {
            providerEntries[providerID]?.chain = entry.keys.map(ChainKey.init)
            for (index, key) in entry.keys.enumerated() { locations[key.id] = Location(workspaceID: nil, providerID: providerID, index: index) }
        }
        self.workspaceEntries = workspaceEntries
        self.providerEntries = providerEntries
        self.locations = locations
        self.bindings = bindings
        self.managedDefault = managedDefault
    }

    /// The workspace's plan, or `nil` when there is no such workspace.
    public func policy(ofWorkspace workspaceID: String) -> WorkspacePolicy? { workspaceEntries[workspaceID]?.policy }

    /// The workspace's keys, every provider, in the order its chains try them.
    public func keys(ofWorkspace workspaceID: String) -> [Credential] { workspaceEntries[workspaceID]?.keys ?? [] }

    /// The platform's keys for a provider.
    public func platformKeys(for providerID: String) -> [Credential] { providerEntries[providerID]?.keys ?? [] }

    /// The platform's card for a provider.
    public func platformCard(for providerID: String) -> PlatformCard? { providerEntries[providerID]?.card }

    /// A key by id, wherever it lives.
    public func credential(_ id: String) -> Credential? {
        guard let location = locations[id] else { return nil }
        let keys = location.workspaceID.map { workspaceEntries[$0]?.keys ?? [] } ?? providerEntries[location.providerID]?.keys ?? []
        return location.index < keys.count ? keys[location.index] : nil
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
        var reasons: [String] = []
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
            let entry = snapshot.workspaceEntries[workspaceID]
            if let entry, let policy = entry.policy, policy.byokAllowed {
                let keys = entry.chain
                if let consumer = query.consumer, !snapshot.bindings.isEmpty,
                   let binding = snapshot.bindings.first(where: { $0.workspaceID == workspaceID && $0.consumer == consumer && $0.modality == query.modality })
                        ?? snapshot.bindings.first(where: { $0.workspaceID == workspaceID && $0.consumer == consumer && $0.modality == nil }),
                   let boundID = binding.credentialID,
                   let index = keys.firstIndex(where: { $0.id == boundID }), keys[index].providerID == providerID {
                    if keys[index].isUsable(coolingDown: coolingDown) {
                        candidates.add(keys[index], .byok, "binding", model: keys[index].defaultModel)
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
                    case .primary: candidates.add(keys[index], .byok, "primary", model: keys[index].defaultModel)
                    case .fallback: candidates.add(keys[index], .byok, "fallback", model: keys[index].defaultModel)
                    case .pool:
                        if firstPool < 0 { firstPool = index }
                        poolCount += 1
                    }
                }
                if poolCount == 1 {
                    candidates.add(keys[firstPool], .byok, "pool", model: keys[firstPool].defaultModel)
                } else if poolCount > 1 {
                    let pool = keys.indices.filter { keys[$0].providerID == providerID && keys[$0].role == .pool && keys[$0].isUsable(coolingDown: coolingDown) }
                    for index in weightedOrder(pool, weight: { keys[$0].weight }, random: random) {
                        candidates.add(keys[index], .byok, "pool", model: keys[index].defaultModel)
                    }
                }
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

        // 3: the platform's card for the provider.
        let platform = snapshot.providerEntries[providerID]
        if let platform, let card = platform.card, card.active {
            var ready = 0
            for index in platform.chain.indices where platform.chain[index].isUsable(coolingDown: coolingDown) {
                ready += 1
                candidates.add(platform.chain[index], .platform, "platform", model: card.defaultModel)
            }
            if ready == 0 { reasons.append(platform.keys.isEmpty ? "the platform has no \(providerID) key" : "the platform's \(providerID) key is unusable (\(skipped(platform.keys)))") }
        } else {
            reasons.append("the platform's \(providerID) card is deactivated")
        }

        // 4: the managed default, where another provider may serve the call.
        if let managed = snapshot.managedDefault, query.allowsOtherProvider || managed.providerID == providerID {
            let entry = managed.providerID == providerID ? platform : snapshot.providerEntries[managed.providerID]
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

    mutating func add(_ key: borrowing ResolutionSnapshot.ChainKey, _ source: KeySource, _ reason: String, model: String?) {
        // At most a handful of candidates: a linear check beats hashing ids.
        let id = key.id
        guard !items.contains(where: { $0.credentialID == id }) else { return }
        items.append(Candidate(credentialID: id, providerID: key.providerID, source: source, reason: reason, model: model))
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
