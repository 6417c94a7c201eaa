import Foundation
import Hummingbird
import KeywardenApp
import KeywardenCore
import KeywardenStore
import Mustache

/// What every signed-in page shows around its content: the header, the workspace switcher, a notice or an error.
struct PageChrome: Encodable, MustacheParent {
    /// A workspace in the header's switcher.
    struct WorkspaceOption: Encodable {
        let id: String
        let name: String
        let selected: Bool
    }

    let title: String
    let signedIn = true
    let csrf: String
    let who: String
    let isPlatformAdmin: Bool
    let canAudit: Bool
    /// Whether the header links to the workspace's members and tokens.
    let canManageMembers: Bool
    /// The workspace the header's links point at.
    let workspaceID: String?
    /// Its name, heading the workspace's navigation.
    var workspaceName: String?
    /// The header link shown as current (`navKeys`, `navWorkspaces`, …).
    let nav: String
    /// The workspaces a platform admin can switch to (the first ones by name; the Workspaces page lists all).
    var switcher: [WorkspaceOption] = []
    var notice: String?
    var error: String?

    /// `navX` is true for the current section only; the rest by name.
    func child(named name: String) -> Any? {
        if name.hasPrefix("nav"), name.count > 3 { return name == nav ? true : nil }
        return MustacheValue.member(name, of: self)
    }
}

/// A page: its typed content, and the chrome around it. Names resolve in the content first.
struct PageView<Content: Encodable>: Encodable, MustacheParent {
    let chrome: PageChrome
    let content: Content

    func child(named name: String) -> Any? {
        MustacheValue.member(name, of: content) ?? chrome.child(named: name)
    }
}

/// Reading a view model's stored properties by name, as the templates do.
enum MustacheValue {
    /// The value of `object`'s property `name`, with an optional unwrapped (`nil` when absent or `nil`).
    static func member(_ name: String, of object: Any) -> Any? {
        guard let child = Mirror(reflecting: object).children.first(where: { $0.label == name }) else { return nil }
        let value = Mirror(reflecting: child.value)
        guard value.displayStyle == .optional else { return child.value }
        return value.children.first?.value
    }
}

extension PagesController {
    /// The chrome of a page for this session; a platform admin's includes the workspace switcher.
    func chrome(_ session: WebSession, title: String, nav: String, workspaceID: String?, notice: String? = nil, error: String? = nil) async throws -> PageChrome {
        let principal = session.principal
        let shown = workspaceID ?? principal.workspaceID
        var chrome = PageChrome(
            title: title, csrf: session.csrf, who: principal.name, isPlatformAdmin: principal.isPlatformAdmin,
            canAudit: principal.isPlatformAdmin || principal.permissions.contains(.auditRead),
            canManageMembers: shown.map { principal.decide(.membersManage, inWorkspace: $0) == .allowed } ?? false, workspaceID: shown, nav: nav,
            notice: notice, error: error
        )
        if let shown, principal.canSee(workspace: shown) {
            chrome.workspaceName = try? await app.workspaceService.get(shown).name
        }
        if principal.isPlatformAdmin {
            let first = try await app.workspaceService.page(search: nil, pagination: try Pagination(page: 1, perPage: Self.switcherSize)).items
            chrome.switcher = first.map { .init(id: $0.workspace.id, name: $0.workspace.name, selected: $0.workspace.id == shown) }
        }
        return chrome
    }

    /// How many workspaces the header's switcher lists.
    static let switcherSize = 100
}

extension WebResponse {
    /// Renders a template with a typed page.
    static func page<Content: Encodable>(_ template: String, _ view: PageView<Content>, status: HTTPResponse.Status = .ok) -> Response {
        render(template, view, status: status, cookies: [])
    }
}
