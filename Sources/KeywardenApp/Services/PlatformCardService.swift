import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault
import SQLKit

/// One provider as the platform operator sees it: its catalog entry, its saved settings and its key's state.
public struct PlatformCard: Sendable {
    public let provider: ProviderDefinition
    public let state: ProviderState
    /// The platform credential holding the key and extras, if any was saved.
    public let credential: Credential?
    /// Whether the stored key opens; `nil` when no key is stored.
    public let keyReadable: Bool?

    /// A key is on file and opens.
    public var hasKey: Bool { keyReadable == true }
    /// The key's status; `unreadable` when the stored key does not open.
    public var status: VerificationStatus {
        if keyReadable == false { return .unreadable }
        return credential?.status ?? .unverified
    }
    /// Required fields (the key included) that are not filled, or do not open.
    public var missingFields: [ProviderField] {
        provider.missingRequiredFields(hasKey: hasKey, extrasSet: credential?.extrasSet ?? [])
    }
    /// Everything the provider needs is filled.
    public var configured: Bool { missingFields.isEmpty }
    /// Active and configured: resolution may use it.
    /// Active, configured, and its key not refused by the vendor's last test.
    public var ready: Bool { state.active && configured && ![.invalid, .noPermission].contains(status) }
    /// The saved default model has left the curated list.
    public var defaultModelIsCustom: Bool { state.defaultModel.map(provider.isCustomModel) ?? false }
}

/// The stats strip above the cards.
public struct PlatformCardStats: Sendable, Equatable, Codable {
    public let providers: Int
    public let active: Int
    /// Active and configured.
    public let ready: Int
    /// Not configured (no key, or a required field missing).
    public let noKey: Int

    enum CodingKeys: String, CodingKey {
        case providers, active, ready
        case noKey = "no_key"
    }
}

/// What a platform card save may change; absent or blank key and extras keep what is stored.
public struct PlatformCardUpdate: Sendable {
    public var apiKey: Secret?
    public var extras: [String: Secret]
    public var clearExtras: [String]
    public var defaultModel: String?
    public var displayOrder: Int?
    /// `.some(nil)` clears the key's expiry date.
    public var expiresAt: Date??
    /// `.some(nil)` clears the key's rotate-by age.
    public var rotateByDays: Int??

    public init(apiKey: Secret? = nil, extras: [String: Secret] = [:], clearExtras: [String] = [], defaultModel: String? = nil, displayOrder: Int? = nil,
                expiresAt: Date?? = nil, rotateByDays: Int?? = nil) {
        self.expiresAt = expiresAt
        self.rotateByDays = rotateByDays
        self.apiKey = apiKey
        self.extras = extras
        self.clearExtras = clearExtras
        self.defaultModel = defaultModel
        self.displayOrder = displayOrder
    }
}

/// The platform's provider cards: one per catalog provider, with the platform's fallback key.
public struct PlatformCardService: Sendable {
    /// The display orders a card may take (the one rule, for the API and the admin UI).
    public static let displayOrderRange = 0...1_000_000

    let app: AppServices
    var store: Store { app.store }

    /// Every card in display order, and the stats strip.
    public func cards() async throws -> ([PlatformCard], PlatformCardStats) {
        let cards = try await store.engine.read { db in try await self.loadCards(on: db) }
        return (cards, Self.stats(cards))
    }

    /// One card.
    public func card(_ providerID: String) async throws -> PlatformCard {
        let provider = try provider(providerID)
        return try await store.engine.read { db in try await self.loadCard(provider, on: db) }
    }

    /// Saves a card with leave-blank-to-keep; returns the card as saved.
    public func save(_ providerID: String, _ update: PlatformCardUpdate, actor: String) async throws -> PlatformCard {
        let provider = try provider(providerID)
        if let key = update.apiKey, !key.isBlank { try provider.validateKey(key) }
        try provider.validateExtras(update.extras)
        for id in update.clearExtras where !provider.extraFields.contains(where: { $0.id == id }) {
            throw KeywardenError.invalid("clear_extras", "\(provider.displayName) has no field '\(id)'.", code: "unknown_field")
        }
        let model = update.defaultModel?.trimmingCharacters(in: .whitespaces)
        if let model, model.unicodeScalars.count > 200 { throw KeywardenError.invalid("default_model", "default_model is longer than 200 characters.") }
        if let order = update.displayOrder {
            try NumberField.check(order, field: "display_order", in: Self.displayOrderRange)
        }
        try KeyLifecycle.check(expiresAt: update.expiresAt ?? nil, rotateByDays: update.rotateByDays ?? nil)
        // The platform's key unwrapped before the write lock is taken (no device call while it is held).
        try await store.vault.prepare(.platform, keys: store.scopeKeys)
        return try await store.engine.transaction { db in
            let existing = try await self.platformCredential(providerID, on: db)
            let key = update.apiKey.flatMap { $0.isBlank ? nil : $0 }
            let extras = update.extras.filter { !$0.value.isBlank }
            if let existing {
                _ = try await self.app.updateCredential(
                    existing, with: CredentialChanges(apiKey: key, extras: extras, clearExtras: update.clearExtras,
                                                      expiresAt: update.expiresAt, rotateByDays: update.rotateByDays),
                    actor: actor, on: db
                )
            } else if key == nil, update.expiresAt != nil || update.rotateByDays != nil {
                throw KeywardenError(.conflict, code: "key_required", message: "Add an API key before setting its expiry or rotation age.", field: "api_key")
            } else if key != nil || !extras.isEmpty {
                _ = try await self.app.createCredential(NewCredential(
                    scope: .platform, providerID: providerID, description: "\(provider.displayName) (platform)",
                    apiKey: key, extras: extras, role: .primary, active: true,
                    expiresAt: update.expiresAt ?? nil, rotateByDays: update.rotateByDays ?? nil
                ), actor: actor, on: db)
            }
            var changed: [String] = []
            if let model, !model.isEmpty {
                let state = try await self.store.providers.get(providerID, on: db)
                if state?.defaultModel != model || state?.defaultModelSaved == false {
                    try await self.store.providers.saveDefaultModel(model, for: providerID, seeded: provider.defaultModel, by: actor, on: db)
                    changed.append("default_model")
                }
            }
            if let order = update.displayOrder, let state = try await self.store.providers.get(providerID, on: db),
               state.displayOrder != order || !state.displayOrderSaved {
                try await self.store.providers.saveDisplayOrder(order, for: providerID, by: actor, on: db)
                changed.append("display_order")
            }
            if !changed.isEmpty {
                try await self.store.audit.append(AuditEvent(
                    actor: actor, action: "platform_card.updated", targetType: "provider", targetID: providerID,
                    details: ["changed": changed.joined(separator: ","), "default_model": model ?? ""]
                ), on: db)
            }
            return try await self.loadCard(provider, on: db)
        }
    }

    /// Turns a card on; refuses while the key or a required field is missing.
    public func activate(_ providerID: String, actor: String) async throws -> PlatformCard {
        try await setActive(true, providerID, actor: actor)
    }

    /// Turns a card off; resolution stops using the platform's key for it.
    public func deactivate(_ providerID: String, actor: String) async throws -> PlatformCard {
        try await setActive(false, providerID, actor: actor)
    }

    /// How many workspaces rely on the platform's key for a provider: those without an active key of their own for it
    /// (what deactivating or removing the card's key cuts off).
    public func workspacesRelying(on providerID: String) async throws -> Int {
        try await store.engine.read { db in
            max(0, try await self.store.workspaces.count(on: db) - (try await self.store.credentials.workspacesWithActiveKey(providerID: providerID, on: db)))
        }
    }

    /// Removes the card's key and extras (the card turns inactive: a card without a key cannot serve). Audited as
    /// `platform_card.deactivated` (when it was active) and `credential.deleted` with the key's fingerprint; a card
    /// with no key is `not_found`.
    public func removeKey(_ providerID: String, actor: String) async throws -> PlatformCard {
        let provider = try provider(providerID)
        return try await store.engine.transaction { db in
            let card = try await self.loadCard(provider, on: db)
            guard let credential = card.credential else { throw KeywardenError.notFound("key") }
            if card.state.active {
                try await self.store.providers.setActive(false, for: providerID, by: actor, on: db)
                try await self.store.audit.append(AuditEvent(
                    actor: actor, action: "platform_card.deactivated", targetType: "provider", targetID: providerID, details: ["why": "key removed"]
                ), on: db)
            }
            try await self.app.deleteCredential(credential, actor: actor, on: db)
            return try await self.loadCard(provider, on: db)
        }
    }

    private func setActive(_ active: Bool, _ providerID: String, actor: String) async throws -> PlatformCard {
        let provider = try provider(providerID)
        return try await store.engine.transaction { db in
            let card = try await self.loadCard(provider, on: db)
            if active { try Self.ensureActivatable(provider: provider, hasKey: card.hasKey, keyStored: card.keyReadable != nil, extrasSet: card.credential?.extrasSet ?? []) }
            guard card.state.active != active else { return card }
            try await self.store.providers.setActive(active, for: providerID, by: actor, on: db)
            try await self.store.audit.append(AuditEvent(
                actor: actor, action: active ? "platform_card.activated" : "platform_card.deactivated",
                targetType: "provider", targetID: providerID
            ), on: db)
            return try await self.loadCard(provider, on: db)
        }
    }

    /// The activation guard shared by platform cards and workspace keys.
    static func ensureActivatable(provider: ProviderDefinition, hasKey: Bool, keyStored: Bool, extrasSet: [String]) throws {
        let missing = provider.missingRequiredFields(hasKey: hasKey, extrasSet: extrasSet)
        guard let first = missing.first else { return }
        if first.id == ProviderDefinition.keyFieldID {
            let message = keyStored
                ? "The stored API key cannot be decrypted; enter it again before activating."
                : "Add an API key before activating."
            throw KeywardenError(.conflict, code: "key_required", message: message, field: "api_key")
        }
        throw KeywardenError(.conflict, code: "field_required", message: "Fill in \(first.label) before activating.", field: "extras.\(first.id)")
    }

    static func stats(_ cards: [PlatformCard]) -> PlatformCardStats {
        PlatformCardStats(
            providers: cards.count,
            active: cards.filter(\.state.active).count,
            ready: cards.filter(\.ready).count,
            noKey: cards.filter { !$0.configured }.count
        )
    }

    // MARK: Loading

    func provider(_ id: String) throws -> ProviderDefinition {
        guard let provider = store.catalog.provider(id) else { throw KeywardenError.notFound("provider") }
        return provider
    }

    func platformCredential(_ providerID: String, on db: any SQLDatabase) async throws -> Credential? {
        try await store.credentials.list(scope: .platform, providerID: providerID, on: db).first
    }

    func loadCard(_ provider: ProviderDefinition, on db: any SQLDatabase) async throws -> PlatformCard {
        guard let state = try await store.providers.get(provider.id, on: db) else { throw KeywardenError.notFound("provider") }
        let credential = try await platformCredential(provider.id, on: db)
        let readable = try await credential.asyncMap { try await store.credentials.keyIsReadable($0, on: db) } ?? nil
        return PlatformCard(provider: provider, state: state, credential: credential, keyReadable: readable)
    }

    func loadCards(on db: any SQLDatabase) async throws -> [PlatformCard] {
        let states = Dictionary(uniqueKeysWithValues: try await store.providers.all(on: db).map { ($0.providerID, $0) })
        let credentials = try await store.credentials.list(scope: .platform, on: db)
        var cards: [PlatformCard] = []
        for provider in store.catalog.providers {
            guard let state = states[provider.id] else { continue }
            let credential = credentials.filter { $0.providerID == provider.id }.min(by: CredentialRepository.mainFirst)
            let readable = try await credential.asyncMap { try await store.credentials.keyIsReadable($0, on: db) } ?? nil
            cards.append(PlatformCard(provider: provider, state: state, credential: credential, keyReadable: readable))
        }
        return cards.sorted { ($0.state.displayOrder, $0.provider.id) < ($1.state.displayOrder, $1.provider.id) }
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
