import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenProviders
import KeywardenStore
import KeywardenVault
import NIOCore

/// The audit log.
extension PagesController {
    /// The audit log page.
    struct AuditPage: Encodable {
        struct Change: Encodable {
            let field: String
            let before: String
            let after: String
        }

        struct Fact: Encodable {
            let name: String
            let value: String
        }

        struct Entry: Encodable {
            let seq: Int
            let at: String
            let actor: String
            let actorLink: String
            let action: String
            let actionLink: String
            let target: String
            let targetLink: String?
            let workspace: String?
            let changes: [Change]
            let facts: [Fact]
            let fingerprint: String?
        }

        struct Chain: Encodable {
            let intact: Bool
            let text: String
        }

        let action: String
        let actor: String
        let targetType: String
        let targetID: String
        let filtered: Bool
        let entries: [Entry]
        let paging: Paging
        /// Shown when asked (`?verify=1`): the chain walked from its first entry, as `keywarden audit verify` does.
        let chain: Chain?
        let verifyLink: String
        let emptyText: String
    }

    func addAuditRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("audit") { request, _ in
            try await page(request) { session in
                let principal = session.principal
                let pagination = try Pagination(page: try request.queryInt("page", code: "invalid_pagination"), perPage: 25)
                let asked = AuditFilter(workspaceID: request.queryText("workspace"), action: request.queryText("action"), actor: request.queryText("actor"),
                                        targetType: request.queryText("target_type"), targetID: request.queryText("target_id"))
                let (_, entries, total) = try await app.auditQuery.page(asked, pagination: pagination, principal: principal)
                let named = try await app.auditQuery.named(entries)
                let kept = ["workspace", "action", "actor", "target_type", "target_id"].compactMap { name in
                    request.queryText(name).map { "\(name)=\(Self.queryEscape($0))" }
                }
                func link(_ extra: [String]) -> String { "/audit" + ((kept + extra).isEmpty ? "" : "?" + (kept + extra).joined(separator: "&")) }
                func only(_ name: String, _ value: String) -> String { "/audit?\(name)=\(Self.queryEscape(value))" }
                // Only the platform's whole chain can be walked: a workspace's entries are links of the one chain.
                var chain: AuditPage.Chain?
                if request.queryText("verify") == "1", principal.isPlatformAdmin {
                    let verification = try await app.auditQuery.verifyChain()
                    chain = verification.firstBroken.map { broken in
                        .init(intact: false, text: "The chain is broken at entry \(broken.seq): \(broken.reason). \(verification.entries) entries before it check out.")
                    } ?? .init(intact: true, text: "The chain is intact: all \(Plural.count(verification.entries, "entry", plural: "entries")) follow from the first.")
                }
                let filtered = !kept.isEmpty
                let content = AuditPage(
                    action: request.queryText("action") ?? "", actor: request.queryText("actor") ?? "",
                    targetType: request.queryText("target_type") ?? "", targetID: request.queryText("target_id") ?? "", filtered: filtered,
                    entries: named.map { item in
                        let entry = item.entry
                        let targetText = item.targetName ?? [entry.targetType, entry.targetID ?? ""].joined(separator: " ").trimmingCharacters(in: .whitespaces)
                        return .init(
                            seq: entry.seq, at: String(entry.at.prefix(19)).replacingOccurrences(of: "T", with: " "),
                            actor: item.actorName, actorLink: only("actor", entry.actor), action: entry.action, actionLink: only("action", entry.action),
                            target: targetText,
                            targetLink: entry.targetID.map { "/audit?target_type=\(Self.queryEscape(entry.targetType))&target_id=\(Self.queryEscape($0))" },
                            workspace: principal.isPlatformAdmin ? item.workspaceName : nil,
                            changes: item.changes.map { .init(field: $0.field, before: $0.before, after: $0.after) },
                            facts: item.facts.map { .init(name: $0.name, value: $0.value) }, fingerprint: entry.secretFingerprint)
                    },
                    paging: Paging(page: pagination.page, perPage: pagination.perPage, total: total) { page in link(["page=\(page)"]) },
                    chain: chain, verifyLink: principal.isPlatformAdmin ? link(["verify=1"]) : "",
                    emptyText: filtered ? "No entries match these filters." : "No entries yet: every change to a key, a setting, a member or the master key is written here.")
                let chrome = try await chrome(session, title: "Audit log", nav: "navAudit", workspaceID: principal.workspaceID)
                return WebResponse.page("audit", PageView(chrome: chrome, content: content))
            }
        }
    }
}
