import Foundation
import Hummingbird
import KeywardenApp
import KeywardenCore
import KeywardenStore

/// Workspace → Bring your own key (seed 004): one card per provider with its key's toggle, settings and Remove; in
/// exclusive mode the toggles say that one custom provider serves at a time. The keys table stays for several keys
/// per provider (seed 003).
extension PagesController {
    /// The Bring-your-own-key page.
    struct ByokPage: Encodable {
        struct Card: Encodable {
            let providerID: String
            let name: String
            let summary: String
            /// The key the card's controls act on: the provider's first in chain order.
            let keyID: String?
            let hint: String
            let status: String
            let badgeClass: String
            let active: Bool
            let model: String?
            /// How many keys the workspace has for the provider; more than one is managed in the keys table.
            let keyCount: Int
            let several: Bool
            let toggleAction: String
            let toggleLabel: String
            /// In exclusive mode, activating this card turns another provider off (`switch=1`).
            let switches: Bool
            let exclusiveNote: String?
            let removeWarning: String
        }

        let workspaceID: String
        let workspaceName: String
        let byokAllowed: Bool
        let exclusive: Bool
        let canEdit: Bool
        let cards: [Card]
        /// The toast when the workspace's own KMS key refuses Keywarden.
        let customerKeyRevoked: String?
        /// Who pays when the workspace's own keys cannot: the setting that holds, in plain words.
        let fallback: FallbackLine
        /// Only a platform admin changes it (the platform's money).
        let canSetFallback: Bool
        /// The category and search the cards are filtered by.
        let categories: [ProvidersPage.Option]
        let search: String
        let filtered: Bool
        let shownText: String
    }

    func addByokRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("workspaces/:workspace/byok") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                return try await byokPage(session, workspaceID: workspaceID, notice: request.queryText("notice").map {
                    $0 == "fallback_set" ? Self.workspaceNotice($0) : Self.noticeText($0, provider: "API key")
                }, filter: CardFilter(category: request.queryText("category"), search: request.queryText("search")))
            }
        }
    }

    func byokPage(_ session: WebSession, workspaceID: String, notice: String? = nil, error: String? = nil,
                  filter: CardFilter = CardFilter(), status: HTTPResponse.Status = .ok) async throws -> Response {
        // Every key of the workspace, in chain order (primaries first), from the state resolution reads (`keys.read`).
        let keys = try await app.resolution.view(for: workspaceID, principal: session.principal).keys(ofWorkspace: workspaceID)
        let workspace = try await app.workspaceService.get(workspaceID, principal: session.principal)
        let canEdit = session.principal.decide(.keysUpdate, inWorkspace: workspaceID) == .allowed
        let byProvider = Dictionary(grouping: keys, by: \.providerID)
        let activeProviders = Set(keys.filter(\.active).map(\.providerID))
        let revoked = try await revokedCustomerKey(workspaceID: workspaceID, principal: session.principal)
        let offered = app.catalog.providers.filter { $0.keyField != nil }
        let cards = offered.filter(filter.matches).map { provider -> ByokPage.Card in
            let own = byProvider[provider.id] ?? []
            let first = own.first
            let active = own.contains(where: \.active)
            let others = activeProviders.subtracting([provider.id]).compactMap { app.catalog.provider($0)?.displayName }.sorted()
            let switches = workspace.exclusive && !active && !others.isEmpty
            var status = first.map { $0.hint.isEmpty ? "No key" : $0.status.rawValue.replacingOccurrences(of: "_", with: " ") } ?? "Not set"
            var badgeClass = Self.badgeClass(first.flatMap { $0.hint.isEmpty ? nil : $0.status })
            if revoked != nil, let first, !first.hint.isEmpty { (status, badgeClass) = (Self.customerKeyRevokedText, "bad") }
            return ByokPage.Card(
                providerID: provider.id, name: provider.displayName, summary: provider.summary ?? "", keyID: first?.id,
                hint: first.map { $0.hint.isEmpty ? "No key" : $0.hint } ?? "", status: status,
                badgeClass: badgeClass, active: active,
                model: first?.defaultModel.map { provider.model($0)?.label ?? $0 }, keyCount: own.count, several: own.count > 1,
                toggleAction: active ? "deactivate" : "activate",
                toggleLabel: active ? "Turn off" : switches ? "Switch to \(provider.displayName)" : "Turn on",
                switches: switches,
                exclusiveNote: switches ? "Exclusive mode: only one custom provider at a time; turning this on turns off \(others.joined(separator: ", "))." : nil,
                removeWarning: "Remove your \(provider.displayName) key? Calls fall back to the platform's key, if it has one."
            )
        }
        let content = ByokPage(workspaceID: workspaceID, workspaceName: workspace.name, byokAllowed: workspace.byokAllowed,
                               exclusive: workspace.exclusive, canEdit: canEdit, cards: cards, customerKeyRevoked: revoked.map(Self.customerKeyRevokedToast),
                               fallback: try await fallbackLine(workspace), canSetFallback: session.principal.isPlatformAdmin,
                               categories: filter.options, search: filter.search ?? "", filtered: filter.isActive,
                               shownText: filter.isActive ? "Showing \(cards.count) of \(Plural.count(offered.count, "provider"))." : "")
        let chrome = try await chrome(session, title: "Bring your own key", nav: "navByok", workspaceID: workspaceID, notice: notice, error: error)
        return WebResponse.page("byok", PageView(chrome: chrome, content: content), status: status)
    }
}
