import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp

/// Workspace → Key chain: for each provider, every key a call may try, in order — its own primary, fallbacks and pool,
/// the platform's keys, the managed default — with each key's state and any rest in force, and which would serve now:
/// "why did this call go there" answered on one page.
extension PagesController {
    struct ChainPage: Encodable {
        struct Step: Encodable {
            let position: Int
            let name: String
            let paidBy: String
            let role: String
            let status: String
            let statusClass: String
            /// Why a call passes over it now, if it does ("turned off", "resting 42 s: rate limited").
            let skipped: String?
            /// Its place among the keys a call would try now (1: serves first).
            let tried: Int?
        }

        struct Provider: Encodable {
            let id: String
            let name: String
            let summary: String
            let summaryClass: String
            let steps: [Step]
        }

        let workspaceName: String
        let fallback: FallbackLine
        let providers: [Provider]
        let emptyText: String
    }

    func addChainRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("workspaces/:workspace/chain") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let view = try await app.resolution.view(for: workspaceID, principal: session.principal)
                let workspace = try await app.workspaceService.get(workspaceID, principal: session.principal)
                let own = view.keys(ofWorkspace: workspaceID)
                let managed = view.platform.managedDefault
                let showsPlatformKeys = session.principal.isPlatformAdmin
                let shown = app.catalog.providers.filter { provider in
                    own.contains { $0.providerID == provider.id } || !view.platformKeys(for: provider.id).isEmpty || managed?.providerID == provider.id
                }
                var providers: [ChainPage.Provider] = []
                for provider in shown {
                    // Each key's rest read once: for the resolution below and for its row.
                    var rests: [String: (remaining: Duration, rateLimited: Bool)] = [:]
                    for key in own.filter({ $0.providerID == provider.id }) + view.platformKeys(for: provider.id) {
                        rests[key.id] = cooldowns?.rest(of: key.id, for: workspaceID)
                    }
                    let resting = Set(rests.keys)
                    let query = ResolutionQuery(workspaceID: workspaceID, providerID: provider.id, modality: provider.modalities.first ?? .chat)
                    let outcome = try await app.resolution.resolve(query, coolingDown: resting)
                    let candidates = (try? outcome.get()) ?? []
                    // Each key once, where it first comes (a rotated key's old secret is the same key's second slot).
                    var order: [String] = []
                    for candidate in candidates where !order.contains(candidate.credentialID) { order.append(candidate.credentialID) }
                    func step(_ key: Credential, _ position: Int, paidBy: String, name: String) -> ChainPage.Step {
                        let rest = rests[key.id]
                        let skipped: String? = if !key.active { "turned off" }
                            else if !key.status.isUsable { "not usable: " + key.status.rawValue.replacingOccurrences(of: "_", with: " ") }
                            else if let rest { "resting \(Int(rest.remaining.components.seconds) + 1) s more: " + (rest.rateLimited ? "the vendor's rate limit" : "a refusal being checked") }
                            else if !order.contains(key.id) { "not tried for this workspace (its plan or its platform fallback setting)" }
                            else { nil }
                        return .init(position: position, name: name, paidBy: paidBy, role: key.scope.workspaceID == nil ? "platform" : key.role.rawValue,
                                     status: key.status.rawValue.replacingOccurrences(of: "_", with: " "), statusClass: Self.badgeClass(key.status),
                                     skipped: skipped, tried: order.firstIndex(of: key.id).map { $0 + 1 })
                    }
                    var steps: [ChainPage.Step] = []
                    for key in own where key.providerID == provider.id {
                        steps.append(step(key, steps.count + 1, paidBy: "Own key", name: key.description))
                    }
                    for key in view.platformKeys(for: provider.id) {
                        steps.append(step(key, steps.count + 1, paidBy: "Platform", name: showsPlatformKeys ? key.description : "Platform key"))
                    }
                    if let managed, managed.providerID == provider.id {
                        // The managed default of a provider the platform has keys for is served by those keys.
                        let serves = candidates.contains { $0.source == .managed || $0.source == .platform }
                        steps.append(.init(position: steps.count + 1, name: "Managed default (\(managed.model))", paidBy: "Platform (managed)", role: "managed",
                                           status: serves ? "ready" : "not ready", statusClass: serves ? "ok" : "", skipped: serves ? nil : "no usable platform key for it",
                                           tried: nil))
                    }
                    let first = candidates.first
                    let summary: String
                    let summaryClass: String
                    switch outcome {
                    case .success where first != nil:
                        let whose = first.map { $0.source == .byok ? "its own key" : $0.source == .managed ? "the managed default" : "the platform's key" } ?? ""
                        let name = first.flatMap { view.credential($0.credentialID) }.map { $0.scope.workspaceID == nil && !showsPlatformKeys ? "" : " “\($0.description)”" } ?? ""
                        summary = "A call now goes to \(whose)\(name)" + (order.count > 1 ? ", then \(Plural.count(order.count - 1, "more key")) if it fails." : ".")
                        summaryClass = first?.source == .byok ? "ok" : "warn"
                    case .failure(let failure):
                        summary = "No key can serve a call now: \(failure.description)"
                        summaryClass = "bad"
                    default:
                        summary = "No key can serve a call now."
                        summaryClass = "bad"
                    }
                    providers.append(.init(id: provider.id, name: provider.displayName, summary: summary, summaryClass: summaryClass, steps: steps))
                }
                let content = ChainPage(workspaceName: workspace.name, fallback: try await fallbackLine(workspace), providers: providers,
                                        emptyText: "No provider has a key for this workspace yet: add one on Bring your own key, or ask the platform to set its cards.")
                let chrome = try await chrome(session, title: "Key chain", nav: "navChain", workspaceID: workspaceID)
                return WebResponse.page("chain", PageView(chrome: chrome, content: content))
            }
        }
    }
}
