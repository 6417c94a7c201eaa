import Foundation
import Hummingbird
import KeywardenApp
import KeywardenCore
import KeywardenStore
import KeywardenVault

/// Workspace → Custody: every use of the workspace's own secrets, newest first, with its place in the workspace's hash
/// chain and a download of the whole log (`audit.read`).
extension PagesController {
    struct CustodyPage: Encodable {
        struct Row: Encodable {
            let seq: Int
            let use: String
            let key: String
            let count: Int
            let period: String
            let actor: String
            let hash: String
        }

        /// The workspace's own KMS key, its state and its form.
        struct CustomerKey: Encodable {
            let offered: Bool
            let keyARN: String?
            let since: String?
            let stateText: String
            let badgeClass: String
            let revoked: Bool
            let detail: String?
            let canEdit: Bool
            let typedARN: String
        }

        let workspaceID: String
        let customerKey: CustomerKey
        let rows: [Row]
        let total: Int
        let previousPage: Int?
        let nextPage: Int?
        let emptyText: String
    }

    func addCustodyRoutes(to router: Router<KeywardenRequestContext>) {
        addCustodyExportRoute(to: router)
        addCustomerKeyRoutes(to: router)
        router.get("workspaces/:workspace/custody") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let notice: String? = switch request.queryText("notice") {
                case "customer_key_set": "The workspace's secrets are now under your KMS key."
                case "customer_key_removed": "The workspace's secrets are back under Keywarden's master key."
                default: nil
                }
                return try await custodyPage(request, session: session, workspaceID: workspaceID, notice: notice)
            }
        }
    }

    func custodyPage(_ request: Request, session: WebSession, workspaceID: String, notice: String? = nil, error: String? = nil,
                     typedARN: String = "", status: HTTPResponse.Status = .ok) async throws -> Response {
                let pagination = try Pagination(page: try request.queryInt("page", code: "invalid_pagination"), perPage: 50)
                let (entries, total, names) = try await app.custody.page(workspaceID: workspaceID, pagination: pagination, principal: session.principal)
                let rows = entries.map { entry in
                    CustodyPage.Row(
                        seq: entry.seq, use: Self.custodyUseLabel(entry.use), key: names[entry.credentialID] ?? "\(entry.credentialID) (deleted)",
                        count: entry.count, period: entry.firstAt == entry.lastAt ? entry.firstAt : "\(entry.firstAt) – \(entry.lastAt)",
                        actor: entry.actor, hash: String(entry.hash.prefix(12))
                    )
                }
                let content = CustodyPage(
                    workspaceID: workspaceID,
                    customerKey: try await customerKeySection(session, workspaceID: workspaceID, typedARN: typedARN),
                    rows: rows, total: total,
                    previousPage: pagination.page > 1 ? pagination.page - 1 : nil,
                    nextPage: pagination.offset + entries.count < total ? pagination.page + 1 : nil,
                    emptyText: "No use of this workspace's own keys is recorded yet."
                )
                let chrome = try await chrome(session, title: "Custody", nav: "navCustody", workspaceID: workspaceID, notice: notice, error: error)
                return WebResponse.page("custody", PageView(chrome: chrome, content: content), status: status)
    }

    /// The customer-key section: the key and its state (anyone who reads the workspace's keys), the form (its owners).
    func customerKeySection(_ session: WebSession, workspaceID: String, typedARN: String = "") async throws -> CustodyPage.CustomerKey {
        let offered = app.customerKeys.isOffered
        let canEdit = session.principal.decide(.membersManage, inWorkspace: workspaceID) == .allowed
        guard session.principal.decide(.keysRead, inWorkspace: workspaceID) == .allowed,
              let status = try await app.customerKeys.status(workspaceID: workspaceID, principal: session.principal) else {
            return CustodyPage.CustomerKey(offered: offered, keyARN: nil, since: nil, stateText: "Keywarden's master key", badgeClass: "",
                                           revoked: false, detail: nil, canEdit: canEdit && offered, typedARN: typedARN)
        }
        let (text, badge) = Self.customerKeyState(status)
        return CustodyPage.CustomerKey(offered: offered, keyARN: status.keyARN, since: status.since, stateText: text, badgeClass: badge,
                                       revoked: status.isRevoked, detail: status.state == .active ? nil : status.detail, canEdit: canEdit, typedARN: typedARN)
    }

    /// What a key's card and row say while the workspace's own KMS key refuses Keywarden.
    static let customerKeyRevokedText = "Key access revoked by the customer"

    /// The workspace's customer key when it refuses Keywarden now (`nil`: none, or it lets Keywarden in).
    func revokedCustomerKey(workspaceID: String, principal: Principal) async throws -> CustomerKeyStatus? {
        guard let status = try await app.customerKeys.status(workspaceID: workspaceID, principal: principal), status.isRevoked else { return nil }
        return status
    }

    /// The toast of the keys' pages while the workspace's own KMS key refuses Keywarden.
    static func customerKeyRevokedToast(_ status: CustomerKeyStatus) -> String {
        "Key access revoked by the customer: the workspace's KMS key \(status.keyARN) refuses Keywarden, so these keys do not open; calls follow the fallback rules until access is restored."
    }

    /// A customer key's state in words, and its badge's class.
    static func customerKeyState(_ status: CustomerKeyStatus) -> (String, String) {
        switch status.state {
        case .active: return ("In use", "ok")
        case .revoked: return (customerKeyRevokedText, "bad")
        case .unavailable: return ("Cannot be reached now", "warn")
        case .unreadable: return ("Does not open the workspace's key", "bad")
        }
    }

    func addCustomerKeyRoutes(to router: Router<KeywardenRequestContext>) {
        router.post("workspaces/:workspace/customer-key") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                let typed = form["key_arn"] ?? ""
                do {
                    let body = try form.only(["key_arn"]).decode(CustomerKeyController.SetBody.self)
                    guard let keyARN = body.keyARN, !keyARN.isEmpty else { throw KeywardenError.missing("key_arn", "Give the key's ARN.") }
                    _ = try await app.customerKeys.set(workspaceID: workspaceID, keyARN: keyARN, principal: session.principal)
                } catch let error as KeywardenError where error.isAboutInput {
                    return try await custodyPage(request, session: session, workspaceID: workspaceID, error: error.message, typedARN: typed,
                                                 status: APIError(error).status)
                }
                return WebResponse.redirect("/workspaces/\(Self.pathEscape(workspaceID))/custody?notice=customer_key_set#customer-key")
            }
        }
        router.post("workspaces/:workspace/customer-key/remove") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                _ = try await WebForm.read(request, context: context, csrf: session.csrf)
                do {
                    _ = try await app.customerKeys.remove(workspaceID: workspaceID, principal: session.principal)
                } catch let error as VaultError where error.isCustomerKeyRevoked {
                    return try await custodyPage(request, session: session, workspaceID: workspaceID,
                                                 error: "The key refuses Keywarden, so the secrets under it cannot be moved off it. Restore access to the key first.",
                                                 status: .forbidden)
                }
                return WebResponse.redirect("/workspaces/\(Self.pathEscape(workspaceID))/custody?notice=customer_key_removed#customer-key")
            }
        }
    }

    func addCustodyExportRoute(to router: Router<KeywardenRequestContext>) {
        router.get("workspaces/:workspace/custody/export.jsonl") { request, context in
            try await page(request) { session in
                try await CustodyController.exportResponse(app: app, workspaceID: try context.parameters.require("workspace"), principal: session.principal)
            }
        }
    }

    static func custodyUseLabel(_ use: CustodyUse) -> String {
        switch use {
        case .gatewayCall: return "Gateway calls"
        case .test: return "Test"
        case .healthCheck: return "Health check"
        case .reveal: return "Revealed"
        case .rotation: return "Rotation"
        }
    }
}
