import Foundation
import Hummingbird
import KeywardenApp
import KeywardenCore
import KeywardenStore
import KeywardenVault

/// Workspace → Members: people with a role, and the service tokens the platform's backend uses; each token's value
/// is shown once, on the answer that created it.
extension PagesController {
    /// The Members page.
    struct MembersPage: Encodable {
        struct Option: Encodable {
            let value: String
            let label: String
            let selected: Bool
        }

        struct MemberRow: Encodable {
            let id: String
            let name: String
            let role: String
            let added: String
            let lastUsed: String
            /// The roles the viewer may give this member (empty: the role is shown, not offered).
            let roleOptions: [Option]
            let canChange: Bool
            let canRemove: Bool
        }

        struct TokenRow: Encodable {
            let id: String
            let name: String
            let prefix: String
            let permissions: String
            let created: String
            let lastUsed: String
        }

        struct PermissionOption: Encodable {
            let value: String
            let checked: Bool
        }

        /// A token value shown once: a new member's sign-in token, or a service token with the SDK snippet.
        struct Revealed: Codable, Sendable {
            let title: String
            let value: String
            let snippet: String?
        }

        let workspaceID: String
        let workspaceName: String
        let members: [MemberRow]
        let tokens: [TokenRow]
        /// The roles the viewer may give a new member.
        let addRoles: [Option]
        /// The permissions the viewer may put on a service token.
        let permissions: [PermissionOption]
        let revealed: Revealed?
    }

    func addMemberRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("workspaces/:workspace/members") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let flash = await flash(request, session: session)
                return try await membersPage(request, session: session, workspaceID: workspaceID,
                                             notice: flash?.notice ?? request.queryText("notice").map(Self.membersNotice), revealed: flash?.revealed)
            }
        }
        router.post("workspaces/:workspace/members") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                do {
                    let (member, token) = try await form.decode(MembersController.AddBody.self)
                        .add(in: app.workspaceService, workspaceID: workspaceID, principal: session.principal)
                    // Post / redirect / get: a reload of the page that shows the token adds no second member.
                    return try await redirect("/workspaces/\(workspaceID)/members#revealed", flash: WebFlash(
                        notice: "\(member.name) added as \(member.role.rawValue).",
                        revealed: .init(title: "\(member.name)'s sign-in token", value: token.value, snippet: nil)), session: session, request: request)
                } catch let error as KeywardenError where error.isAboutInput {
                    return try await membersPage(request, session: session, workspaceID: workspaceID, error: error.message, status: APIError(error).status)
                }
            }
        }
        router.post("workspaces/:workspace/members/:member/role") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let memberID = try context.parameters.require("member")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                do {
                    _ = try await app.workspaceService.changeMemberRole(
                        workspaceID: workspaceID, memberID: memberID, role: try MembersController.role(form.decode(MembersController.RoleBody.self).role),
                        principal: session.principal)
                } catch let error as KeywardenError where error.isAboutInput {
                    return try await membersPage(request, session: session, workspaceID: workspaceID, error: error.message, status: APIError(error).status)
                }
                return WebResponse.redirect("/workspaces/\(workspaceID)/members?notice=role")
            }
        }
        router.post("workspaces/:workspace/members/:member/remove") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let memberID = try context.parameters.require("member")
                _ = try await WebForm.read(request, context: context, csrf: session.csrf)
                do {
                    try await app.workspaceService.removeMember(workspaceID: workspaceID, memberID: memberID, principal: session.principal)
                } catch let error as KeywardenError where error.isAboutInput {
                    return try await membersPage(request, session: session, workspaceID: workspaceID, error: error.message, status: APIError(error).status)
                }
                return WebResponse.redirect("/workspaces/\(workspaceID)/members?notice=removed")
            }
        }
        router.post("workspaces/:workspace/tokens") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                do {
                    let (record, token) = try await form.decode(TokensController.CreateBody.self)
                        .create(in: app.workspaceService, workspaceID: workspaceID, principal: session.principal)
                    // Post / redirect / get: a reload of the page that shows the token mints no second one.
                    return try await redirect("/workspaces/\(workspaceID)/members#revealed", flash: WebFlash(
                        notice: "Service token “\(record.name)” created.",
                        revealed: .init(title: "The token for \(record.name)", value: token.value,
                                        snippet: Self.sdkSnippet(origin: Self.origin(of: request), token: token.value))), session: session, request: request)
                } catch let error as KeywardenError where error.isAboutInput {
                    return try await membersPage(request, session: session, workspaceID: workspaceID, error: error.message, status: APIError(error).status)
                }
            }
        }
        router.post("workspaces/:workspace/tokens/:token/revoke") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                _ = try await WebForm.read(request, context: context, csrf: session.csrf)
                try await app.workspaceService.revokeToken(workspaceID: workspaceID, tokenID: try context.parameters.require("token"), principal: session.principal)
                return WebResponse.redirect("/workspaces/\(workspaceID)/members?notice=revoked")
            }
        }
    }

    func membersPage(_ request: Request, session: WebSession, workspaceID: String, notice: String? = nil, error: String? = nil,
                     revealed: MembersPage.Revealed? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        // The tokens first: members.manage, or none of the page.
        let tokens = try await app.workspaceService.listTokens(workspaceID: workspaceID, principal: session.principal)
        let members = try await app.workspaceService.listMembers(workspaceID: workspaceID, principal: session.principal)
        let workspace = try await app.workspaceService.get(workspaceID, principal: session.principal)
        let acting = session.principal.actingRole
        // A member's last use is their newest token's.
        var lastUse: [String: String] = [:]
        for token in tokens where token.kind == .member {
            guard let member = token.memberID, let used = token.lastUsedAt else { continue }
            if used > lastUse[member] ?? "" { lastUse[member] = used }
        }
        let grantable = MemberRole.allCases.filter { acting?.mayGrant($0) ?? true }
        let rows = members.map { member -> MembersPage.MemberRow in
            let mayManage = acting?.mayGrant(member.role) ?? true
            return MembersPage.MemberRow(
                id: member.id, name: member.name, role: member.role.rawValue, added: Self.day(member.createdAt),
                lastUsed: lastUse[member.id].map(Self.minute) ?? "never",
                roleOptions: mayManage ? grantable.map { .init(value: $0.rawValue, label: $0.rawValue, selected: $0 == member.role) } : [],
                canChange: mayManage, canRemove: mayManage)
        }
        let tokenRows = tokens.filter { $0.kind == .service }.map { token in
            MembersPage.TokenRow(id: token.id, name: token.name, prefix: token.displayPrefix,
                                 permissions: token.permissions.map(\.rawValue).sorted().joined(separator: ", "),
                                 created: Self.day(token.createdAt), lastUsed: token.lastUsedAt.map(Self.minute) ?? "never")
        }
        let offered = app.workspaceService.grantablePermissions(actingPermissions: session.principal.actingPermissions, forWorkspace: true)
        let permissions = Permission.allCases.filter(offered.contains).map {
            MembersPage.PermissionOption(value: $0.rawValue, checked: $0 == .gatewayUse)
        }
        let content = MembersPage(
            workspaceID: workspaceID, workspaceName: workspace.name, members: rows, tokens: tokenRows,
            addRoles: grantable.map { .init(value: $0.rawValue, label: $0.rawValue, selected: $0 == .member) },
            permissions: permissions, revealed: revealed)
        let chrome = try await chrome(session, title: "Members", nav: "navMembers", workspaceID: workspaceID, notice: notice, error: error)
        return WebResponse.page("members", PageView(chrome: chrome, content: content), status: status)
    }

    /// Where the browser reached Keywarden (`https://keys.example.com`), for the SDK snippet.
    static func origin(of request: Request) -> String {
        let host = request.head.authority ?? "localhost"
        return (WebResponse.isSecure(request) ? "https://" : "http://") + host
    }

    /// The two lines a backend needs to send its calls through Keywarden with the OpenAI SDK.
    static func sdkSnippet(origin: String, token: String) -> String {
        "client = OpenAI(base_url=\"\(origin)/v1\",\n                api_key=\"\(token)\")"
    }

    static func day(_ timestamp: String) -> String { String(timestamp.prefix(10)) }

    static func minute(_ timestamp: String) -> String {
        String(timestamp.prefix(16)).replacingOccurrences(of: "T", with: " ") + " UTC"
    }

    static func membersNotice(_ code: String) -> String {
        ["created": "Workspace created. Add its members and the token its backend will use.", "role": "Role changed.",
         "removed": "Member removed; their tokens no longer work.", "revoked": "Token revoked; it no longer works."][code] ?? "Done."
    }
}
