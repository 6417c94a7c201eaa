import Hummingbird
import KeywardenCore

/// `GET /api/v1/me`: who the presented token is and what it may do.
struct MeController {
    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.get("me") { _, context -> Response in
            let principal = try context.requirePrincipal()
            return try JSONResponse.make(MeBody(
                tokenID: principal.tokenID, kind: principal.kind.rawValue, name: principal.name,
                workspaceID: principal.workspaceID, role: principal.role?.rawValue,
                permissions: principal.isPlatformAdmin ? Permission.allCases.filter { $0 != .keysReveal }.map(\.rawValue) : principal.permissions.map(\.rawValue).sorted()
            ))
        }
    }

    struct MeBody: Encodable {
        let tokenID: String
        let kind: String
        let name: String
        let workspaceID: String?
        let role: String?
        let permissions: [String]
    }
}
