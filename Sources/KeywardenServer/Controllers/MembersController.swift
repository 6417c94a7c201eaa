import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenStore

/// A workspace's members: added with a role and a token shown once, listed, removed (tokens revoked at once).
struct MembersController {
    let app: AppServices

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.post { request, context -> Response in
            let id = try context.parameters.require("workspace")
            let principal = try Access.require(.membersManage, in: id, context)
            let body = try await request.decodeBody(AddBody.self, context: context)
            guard let name = body.name else { throw KeywardenError.missing("name") }
            guard let roleText = body.role else { throw KeywardenError.missing("role") }
            guard let role = MemberRole(rawValue: roleText) else {
                throw KeywardenError.invalid("role", "role must be one of owner, admin, member, viewer.")
            }
            let (member, token) = try await app.workspaceService.addMember(workspaceID: id, name: name, role: role, actor: principal.actor)
            return try JSONResponse.make(AddedBody(member: MemberBody(member), token: token.value), status: .created)
        }
        group.get { _, context -> Response in
            let id = try context.parameters.require("workspace")
            _ = try Access.requireVisible(id, context)
            return try JSONResponse.make(["items": try await app.workspaceService.listMembers(workspaceID: id).map(MemberBody.init)])
        }
        group.delete(":member") { _, context -> Response in
            let id = try context.parameters.require("workspace")
            let principal = try Access.require(.membersManage, in: id, context)
            try await app.workspaceService.removeMember(workspaceID: id, memberID: try context.parameters.require("member"), actor: principal.actor)
            return try JSONResponse.make(MessageOnlyBody(message: "Member removed; their tokens no longer work."))
        }
    }

    struct AddBody: RequestBody {
        static let fields: Set<String> = ["name", "role"]
        let name: String?
        let role: String?
    }

    struct AddedBody: Encodable {
        let member: MemberBody
        /// Shown once; only its digest is stored.
        let token: String
    }
}
