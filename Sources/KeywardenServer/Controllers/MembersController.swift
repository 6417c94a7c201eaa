import Hummingbird
import KeywardenCore
import KeywardenVault
import KeywardenApp
import KeywardenStore

/// A workspace's members: added with a role and a token shown once, listed, given another role, removed (tokens
/// revoked at once). The acting member's own role bounds what they may grant or change (`role_not_allowed`), and a
/// workspace keeps an owner (`last_owner`).
struct MembersController {
    let app: AppServices

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.post { request, context -> Response in
            let id = try context.parameters.require("workspace")
            let (member, token) = try await request.decodeBody(AddBody.self, context: context)
                .add(in: app.workspaceService, workspaceID: id, principal: try context.requirePrincipal())
            return try JSONResponse.make(AddedBody(member: MemberBody(member), token: token.value), status: .created)
        }
        group.get { _, context -> Response in
            let id = try context.parameters.require("workspace")
            return try JSONResponse.make(["items": try await app.workspaceService.listMembers(workspaceID: id, principal: try context.requirePrincipal()).map(MemberBody.init)])
        }
        group.patch(":member") { request, context -> Response in
            let id = try context.parameters.require("workspace")
            let body = try await request.decodeBody(RoleBody.self, context: context)
            let member = try await app.workspaceService.changeMemberRole(
                workspaceID: id, memberID: try context.parameters.require("member"), role: try Self.role(body.role), principal: try context.requirePrincipal()
            )
            return try JSONResponse.make(MemberBody(member))
        }
        group.delete(":member") { _, context -> Response in
            let id = try context.parameters.require("workspace")
            try await app.workspaceService.removeMember(workspaceID: id, memberID: try context.parameters.require("member"), principal: try context.requirePrincipal())
            return try JSONResponse.make(MessageOnlyBody(message: "Member removed; their tokens no longer work."))
        }
    }

    /// A role named in a body: required, one of the four.
    static func role(_ text: String?) throws(KeywardenError) -> MemberRole {
        guard let text else { throw .missing("role") }
        guard let role = MemberRole(rawValue: text) else { throw .invalid("role", "role must be one of owner, admin, member, viewer.") }
        return role
    }

    struct RoleBody: RequestBody {
        static let fields: Set<String> = ["role"]
        let role: String?
    }

    struct AddBody: RequestBody {
        static let fields: Set<String> = ["name", "role"]
        let name: String?
        let role: String?

        /// Adds the member it describes; their sign-in token, shown once.
        func add(in service: WorkspaceService, workspaceID: String, principal: Principal) async throws -> (Member, AccessToken) {
            guard let name else { throw KeywardenError.missing("name") }
            return try await service.addMember(workspaceID: workspaceID, name: name, role: try MembersController.role(role), principal: principal)
        }
    }

    struct AddedBody: Encodable {
        let member: MemberBody
        /// Shown once; only its digest is stored.
        let token: String
    }
}
