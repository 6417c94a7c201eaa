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

    public var workspaces: [String: WorkspacePolicy]
    /// Workspace keys by workspace, and the platform's keys (scope platform) by provider.
    public var workspaceKeys: [String: [Credential]]
    public var platformKeys: [String: [Credential]]
    public var platformCards: [String: PlatformCard]
    public var bindings: [Binding]
    public var managedDefault: ManagedDefault?

    public init(workspaces: [String: WorkspacePolicy] = [:], credentials: [Credential] = [], platformCards: [String: PlatformCard] = [:],
                bindings: [Binding] = [], managedDefault: ManagedDefault? = nil) {
        self.workspaces = workspaces
        self.workspaceKeys = Dictionary(grouping: credentials.filter { $0.scope.workspaceID != nil }) { $0.scope.workspaceID ?? "" }
        self.platformKeys = Dictionary(grouping: credentials.filter { $0.scope == .platform }) { $0.providerID }
        self.platformCards = platformCards
        self.bindings = bindings
        self.managedDefault = managedDefault
    }

    /// A key by id, wherever it lives.
    public func credential(_ id: String) -> Credential? {
        for keys in workspaceKeys.values { if let key = keys.first(where: { $0.id == id }) { return key } }
        for keys in platformKeys.values { if let key = keys.first(where: { $0.id == id }) { return key } }
        return nil
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

        var candidates: [Candidate] = []
        candidates.reserveCapacity(8)
        var reasons: [String] = []
        // Keys are read in place (a `Credential` is large: copying one costs more than resolving with it).
        func usable(_ key: borrowing Credential) -> Bool {
            key.active && key.status.isUsable && !key.hint.isEmpty && (coolingDown.isEmpty || !coolingDown.contains(key.id))
        }
        func add(_ key: borrowing Credential, _ source: KeySource, _ reason: String, model: String?) {
            // At most a handful of candidates: a linear check beats hashing ids.
            let id = key.id
            guard !candidates.contains(where: { $0.credentialID == id }) else { return }
            candidates.append(Candidate(credentialID: id, providerID: key.providerID, source: source, reason: reason, model: model))
        }
        func skipped(_ keys: [Credential]) -> String {
            let counts = Dictionary(grouping: keys) { key -> String in
                if !key.active { return "inactive" }
                if key.hint.isEmpty { return "no key" }
                if !key.status.isUsable || !coolingDown.contains(key.id) { return key.status.rawValue }
                return "cooling down"
            }.map { "\($0.value.count) \($0.key)" }.sorted()
            return counts.joined(separator: ", ")
        }

        // 1 and 2: the workspace's binding and its own keys.
        if let workspaceID = query.workspaceID {
            let policy = snapshot.workspaces[workspaceID]
            let keys = snapshot.workspaceKeys[workspaceID] ?? []
            if policy?.byokAllowed == true {
                if let consumer = query.consumer, !snapshot.bindings.isEmpty,
                   let binding = snapshot.bindings.first(where: { $0.workspaceID == workspaceID && $0.consumer == consumer && $0.modality == query.modality })
                        ?? snapshot.bindings.first(where: { $0.workspaceID == workspaceID && $0.consumer == consumer && $0.modality == nil }),
                   let boundID = binding.credentialID,
                   let index = keys.firstIndex(where: { $0.id == boundID }), keys[index].providerID == providerID {
                    if usable(keys[index]) { add(keys[index], .byok, "binding", model: keys[index].defaultModel) } else { reasons.append("the bound key is \(skipped([keys[index]]))") }
                }
                var own = 0
                var ready = 0
                var fallbacks: [Int] = []
                var pool: [Int] = []
                for index in keys.indices where keys[index].providerID == providerID {
                    own += 1
                    guard usable(keys[index]) else { continue }
                    ready += 1
                    switch keys[index].role {
                    case .primary: add(keys[index], .byok, "primary", model: keys[index].defaultModel)
                    case .fallback: fallbacks.append(index)
                    case .pool: pool.append(index)
                    }
                }
                fallbacks.sort { (keys[$0].position, keys[$0].createdAt) < (keys[$1].position, keys[$1].createdAt) }
                for index in fallbacks { add(keys[index], .byok, "fallback", model: keys[index].defaultModel) }
                for index in weightedOrder(pool, weight: { keys[$0].weight }, random: random) { add(keys[index], .byok, "pool", model: keys[index].defaultModel) }
                if own == 0 {
                    reasons.append("the workspace has no \(providerID) key")
                } else if ready == 0 {
                    reasons.append("the workspace's \(providerID) keys are unusable (\(skipped(keys.filter { $0.providerID == providerID })))")
                }
            } else if policy == nil {
                reasons.append("the workspace does not exist")
            } else if keys.contains(where: { $0.providerID == providerID }) {
                reasons.append("the workspace's plan does not allow its own keys")
            }
        }

        // 3: the platform's card for the provider.
        let card = snapshot.platformCards[providerID]
        let platformKeys = snapshot.platformKeys[providerID] ?? []
        if card?.active == true {
            var ready = 0
            for index in platformKeys.indices where usable(platformKeys[index]) {
                ready += 1
                add(platformKeys[index], .platform, "platform", model: card?.defaultModel)
            }
            if ready == 0 { reasons.append(platformKeys.isEmpty ? "the platform has no \(providerID) key" : "the platform's \(providerID) key is unusable (\(skipped(platformKeys)))") }
        } else {
            reasons.append("the platform's \(providerID) card is deactivated")
        }

        // 4: the managed default, where another provider may serve the call.
        if let managed = snapshot.managedDefault, query.allowsOtherProvider || managed.providerID == providerID {
            let keys = snapshot.platformKeys[managed.providerID] ?? []
            if snapshot.platformCards[managed.providerID]?.active != true {
                reasons.append("the managed default's card (\(managed.providerID)) is deactivated")
            } else {
                var ready = 0
                for index in keys.indices where usable(keys[index]) {
                    ready += 1
                    add(keys[index], .managed, "managed", model: managed.model)
                }
                if ready == 0 { reasons.append("the managed default (\(managed.providerID)) has no usable key") }
            }
        }

        guard !candidates.isEmpty else {
            return .failure(ResolutionFailure(code: "no_key_available", providerID: providerID, reasons: reasons))
        }
        return .success(candidates)
    }

    /// A weighted random order: each item's chance to come first is its share of the total weight (at least 1 each).
    static func weightedOrder<Item>(_ items: [Item], weight: (Item) -> Int, random: (Int) -> Int) -> [Item] {
        guard items.count > 1 else { return items }
        var remaining = items
        var ordered: [Item] = []
        ordered.reserveCapacity(items.count)
        while !remaining.isEmpty {
            let total = remaining.reduce(0) { $0 + max(weight($1), 1) }
            var pick = random(total)
            var index = 0
            for (i, item) in remaining.enumerated() {
                pick -= max(weight(item), 1)
                if pick < 0 { index = i; break }
            }
            ordered.append(remaining.remove(at: index))
        }
        return ordered
    }
}
