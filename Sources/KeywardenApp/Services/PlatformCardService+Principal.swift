import KeywardenCore
import KeywardenStore

/// The doors' entry points to the platform's cards: each authorizes the principal (a platform admin), then acts as it.
/// The API and the pages call these; the command line calls the `actor:` forms.
extension PlatformCardService {
    /// Every card and the stats strip.
    public func cards(principal: Principal) async throws -> ([PlatformCard], PlatformCardStats) {
        try principal.authorizePlatform()
        return try await cards()
    }

    /// One card.
    public func card(_ providerID: String, principal: Principal) async throws -> PlatformCard {
        try principal.authorizePlatform()
        return try await card(providerID)
    }

    /// Saves a card with leave-blank-to-keep.
    public func save(_ providerID: String, _ update: PlatformCardUpdate, principal: Principal) async throws -> PlatformCard {
        try principal.authorizePlatform()
        return try await save(providerID, update, actor: principal.actor)
    }

    /// Turns a card on (the activation guard holds).
    public func activate(_ providerID: String, principal: Principal) async throws -> PlatformCard {
        try principal.authorizePlatform()
        return try await activate(providerID, actor: principal.actor)
    }

    /// Turns a card off.
    public func deactivate(_ providerID: String, principal: Principal) async throws -> PlatformCard {
        try principal.authorizePlatform()
        return try await deactivate(providerID, actor: principal.actor)
    }

    /// Removes a card's key (the card turns inactive).
    public func removeKey(_ providerID: String, principal: Principal) async throws -> PlatformCard {
        try principal.authorizePlatform()
        return try await removeKey(providerID, actor: principal.actor)
    }

    /// How many workspaces rely on the card (what switching it off would cut off).
    public func workspacesRelying(on providerID: String, principal: Principal) async throws -> Int {
        try principal.authorizePlatform()
        return try await workspacesRelying(on: providerID)
    }
}
