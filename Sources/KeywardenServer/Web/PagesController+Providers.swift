import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenProviders
import KeywardenStore
import KeywardenVault
import NIOCore

/// Platform → AI / API keys: the platform's provider cards.
extension PagesController {
    func addProviderRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("platform/providers") { request, _ in
            try await page(request) { session in
                // The card service authorizes the session's principal (a platform admin) on each read and change.
                var messages: [String: (String, String)] = [:]
                if let provider = request.queryText("provider"), let notice = request.queryText("notice") {
                    if notice == "tested", let card = try await app.platformCards.cards(principal: session.principal).0.first(where: { $0.provider.id == provider }) {
                        // The outcome the test recorded on the card (never text from the URL).
                        messages[provider] = card.status == .valid
                            ? ("The key works.", "ok")
                            : (card.credential?.lastError ?? "The test did not pass (\(card.status.rawValue)).", "bad")
                    } else {
                        messages[provider] = (Self.noticeText(notice, provider: app.catalog.provider(provider)?.displayName ?? provider), "ok")
                    }
                }
                return try await providersPage(session, messages: messages,
                                               filter: CardFilter(category: request.queryText("category"), search: request.queryText("search")))
            }
        }
        router.post("platform/providers/:provider") { request, context in
            try await page(request) { session in
                let provider = try context.parameters.require("provider")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                if let refused = try await saveCard(provider, form: form, session: session, always: true) { return refused }
                return WebResponse.redirect("/platform/providers?notice=saved&provider=\(provider)#\(provider)")
            }
        }
        for action in ["activate", "deactivate", "test", "remove-key"] {
            router.post("platform/providers/:provider/\(action)") { request, context in
                try await page(request) { session in
                    let provider = try context.parameters.require("provider")
                    let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                    // Refused before a typed key is read or saved (each service call checks again).
                    try session.principal.authorizePlatform()
                    // Test and Activate submit the card: a key (or extra) typed into it is saved first, not thrown away.
                    if action == "activate" || action == "test", let refused = try await saveCard(provider, form: form, session: session, always: false) { return refused }
                    do {
                        switch action {
                        case "activate": _ = try await app.platformCards.activate(provider, principal: session.principal)
                        case "deactivate": _ = try await app.platformCards.deactivate(provider, principal: session.principal)
                        case "remove-key": _ = try await app.platformCards.removeKey(provider, principal: session.principal)
                        default: _ = try await verification.testPlatformCard(provider, principal: session.principal)
                        }
                    } catch let error as KeywardenError where error.isAboutInput || error.kind == .tooManyRequests {
                        return try await providersPage(session, messages: [provider: (error.message, "bad")], status: .conflict)
                    }
                    // Back to the card (post / redirect / get: a reload sends nothing again); a test's outcome is the
                    // card's recorded status, shown on it.
                    let notice = switch action {
                    case "test": "tested"
                    case "remove-key": "key_removed"
                    default: "\(action)d"
                    }
                    return WebResponse.redirect("/platform/providers?notice=\(notice)&provider=\(provider)#\(provider)")
                }
            }
        }
    }

    /// Saves what a card's form carries; `always: false` saves only when a key or an extra was typed. The page to answer
    /// with when the save is refused (`nil`: saved, or nothing to save).
    func saveCard(_ provider: String, form: WebForm, session: WebSession, always: Bool) async throws -> Response? {
        guard app.catalog.contains(provider) else { throw KeywardenError.unknownProvider(provider) }
        do {
            // The card's form is `PUT /api/v1/platform/providers/{id}`; a non-secret setting sent back as shown is no change.
            var update = try form.decode(PlatformCardsController.SaveCardBody.self).update()
            if let credential = try await app.platformCards.card(provider, principal: session.principal).credential {
                update.extras = Self.changedExtras(update.extras, shown: try await app.visibleExtras(of: credential))
            }
            guard always || update.apiKey.map({ !$0.isBlank }) == true || update.extras.values.contains(where: { !$0.isBlank }) else { return nil }
            _ = try await app.platformCards.save(provider, update, principal: session.principal)
        } catch let error as KeywardenError where error.isAboutInput || error.kind == .tooManyRequests {
            return try await providersPage(session, messages: [provider: (error.message, "bad")], status: .unprocessableContent)
        }
        return nil
    }

    /// The platform's provider cards, with the stats strip.
    struct ProvidersPage: Encodable {
        struct Option: Encodable {
            let value: String
            let label: String
            let selected: Bool
        }

        struct Stats: Encodable {
            let providers: Int
            let active: Int
            let ready: Int
            let noKey: Int
        }

        struct KeyField: Encodable {
            let label: String
            let placeholder: String
            /// Where to get this key.
            let help: String?
        }

        struct Extra: Encodable {
            let cardID: String
            let fieldID: String
            let label: String
            let required: Bool
            let placeholder: String
            let isSet: Bool
            let help: String?
            /// A setting that is not secret, shown as saved.
            let value: String?
            let canClear: Bool
        }

        struct Card: Encodable {
            let id: String
            let name: String
            let summary: String?
            let active: Bool
            let displayOrder: Int
            let canTest: Bool
            let badge: String
            let badgeClass: String
            let keyField: KeyField?
            let extras: [Extra]
            let hasModels: Bool
            let models: [ModelOption]
            let message: String?
            let messageClass: String?
            let hint: String?
            /// Whether its key can be rotated (one is stored and the provider takes one).
            let canRotate: Bool
            /// What deactivating (or removing the key) cuts off, for the confirmation.
            let deactivateWarning: String
            let removeWarning: String
        }

        let stats: Stats
        /// The category and search the cards are filtered by, and the choices.
        let categories: [Option]
        let search: String
        let filtered: Bool
        let shownText: String
        let cards: [Card]
        /// The display order's bounds: the service's own.
        let displayOrderMin = PlatformCardService.displayOrderRange.lowerBound
        let displayOrderMax = PlatformCardService.displayOrderRange.upperBound
    }

    /// A confirmation that says how many workspaces lose the platform's key for a provider.
    static func cutOffWarning(_ question: String, provider: ProviderDefinition, relying: Int) -> String {
        let workspaces = relying == 1 ? "1 workspace has" : "\(relying) workspaces have"
        return "\(question) \(workspaces) no active \(provider.displayName) key of its own and will get no_key_available for \(provider.displayName) calls until it adds one."
    }

    func providersPage(_ session: WebSession, messages: [String: (String, String)] = [:], hints: [String: String] = [:],
                       filter: CardFilter = CardFilter(), status: HTTPResponse.Status = .ok) async throws -> Response {
        let (all, stats) = try await app.platformCards.cards(principal: session.principal)
        let cards = all.filter { filter.matches($0.provider) }
        // The settings that are not secret, shown on their cards.
        var visible: [String: [String: String]] = [:]
        for card in cards { if let credential = card.credential, !credential.extrasSet.isEmpty { visible[card.provider.id] = try await app.visibleExtras(of: credential) } }
        // What switching a card off would cut off, for each active card's confirmation.
        var relying: [String: Int] = [:]
        for card in cards where card.state.active || card.credential != nil {
            relying[card.provider.id] = try await app.platformCards.workspacesRelying(on: card.provider.id, principal: session.principal)
        }
        let content = ProvidersPage(
            stats: .init(providers: stats.providers, active: stats.active, ready: stats.ready, noKey: stats.noKey),
            categories: filter.options, search: filter.search ?? "", filtered: filter.isActive,
            shownText: filter.isActive ? "Showing \(cards.count) of \(Plural.count(all.count, "provider"))." : "",
            cards: cards.map { card in
                let provider = card.provider
                let filled = Set(card.credential?.extrasSet ?? [])
                let message = messages[provider.id]
                return ProvidersPage.Card(
                    id: provider.id, name: provider.displayName, summary: provider.summary, active: card.state.active,
                    displayOrder: card.state.displayOrder, canTest: provider.verification.available, badge: Self.badge(card),
                    badgeClass: Self.badgeClass(card.hasKey ? card.status : nil),
                    keyField: provider.keyField.map { .init(label: $0.label, placeholder: card.hasKey ? Self.savedPlaceholder : ($0.placeholder ?? ""), help: $0.help) },
                    extras: provider.extraFields.map { field in
                        let value = visible[provider.id]?[field.id]
                        return ProvidersPage.Extra(
                            cardID: provider.id, fieldID: field.id, label: field.label, required: field.required,
                            placeholder: value == nil && filled.contains(field.id) ? Self.savedPlaceholder : (field.placeholder ?? ""),
                            isSet: filled.contains(field.id) && value == nil, help: field.help, value: value,
                            canClear: filled.contains(field.id) && !field.required)
                    },
                    hasModels: !provider.models.isEmpty, models: Self.modelOptions(provider, selected: card.state.defaultModel),
                    message: message?.0, messageClass: message?.1, hint: hints[provider.id], canRotate: card.hasKey && provider.keyField != nil,
                    deactivateWarning: Self.cutOffWarning("Deactivate \(provider.displayName)?", provider: provider, relying: relying[provider.id] ?? 0),
                    removeWarning: Self.cutOffWarning("Remove \(provider.displayName)'s key? The card turns inactive.", provider: provider, relying: relying[provider.id] ?? 0))
            })
        let chrome = try await chrome(session, title: "AI & API keys", nav: "navProviders", workspaceID: nil)
        return WebResponse.page("providers", PageView(chrome: chrome, content: content), status: status)
    }
}

/// A filter of the 20-card pages: a category (All, LLM, Voice, Image, …) and a search over names and summaries.
struct CardFilter: Sendable {
    var category: String?
    var search: String?

    init(category: String? = nil, search: String? = nil) {
        self.category = category == "all" ? nil : category
        self.search = search?.trimmingCharacters(in: .whitespaces).isEmpty == false ? search : nil
    }

    var isActive: Bool { category != nil || search != nil }

    func matches(_ provider: ProviderDefinition) -> Bool {
        if let category, provider.category.rawValue != category { return false }
        guard let search = search?.lowercased() else { return true }
        return [provider.displayName, provider.id, provider.summary ?? ""].contains { $0.lowercased().contains(search) }
    }

    /// The category choices, this filter's selected.
    var options: [PagesController.ProvidersPage.Option] {
        (["all"] + ProviderCategory.allCases.map(\.rawValue)).map { value in
            .init(value: value, label: value == "all" ? "All" : PagesController.categoryLabel(value), selected: value == (category ?? "all"))
        }
    }
}
