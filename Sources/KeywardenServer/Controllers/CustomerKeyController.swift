import Foundation
import Hummingbird
import KeywardenApp
import KeywardenCore

/// `GET|PUT|DELETE /api/v1/workspaces/{workspace}/customer-key`: the workspace's own KMS key (a customer-managed key)
/// and its state; setting one rotates the workspace's key under it, removing it rotates back under the master key
/// (`?abandon=true`, platform admins: away from a key revoked for good, leaving the secrets under it unreadable).
struct CustomerKeyController {
    let app: AppServices

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.get { _, context -> Response in
            let workspaceID = try context.parameters.require("workspace")
            let status = try await app.customerKeys.status(workspaceID: workspaceID, principal: try context.requirePrincipal())
            return try JSONResponse.make(StatusBody(offered: app.customerKeys.isOffered, status: status))
        }
        group.put { request, context -> Response in
            let principal = try context.requirePrincipal()
            let workspaceID = try context.parameters.require("workspace")
            // Refused before the body is read (the service checks again).
            try principal.authorize(.membersManage, inWorkspace: workspaceID)
            let body = try await request.decodeBody(SetBody.self, context: context)
            guard let keyARN = body.keyARN else { throw KeywardenError.missing("key_arn") }
            let change = try await app.customerKeys.set(workspaceID: workspaceID, keyARN: keyARN, principal: principal)
            return try JSONResponse.make(ChangeBody(offered: true, change: change))
        }
        group.delete { request, context -> Response in
            let workspaceID = try context.parameters.require("workspace")
            let change = try await app.customerKeys.remove(workspaceID: workspaceID, abandoning: try request.queryBool("abandon"),
                                                           principal: try context.requirePrincipal())
            return try JSONResponse.make(ChangeBody(offered: app.customerKeys.isOffered, change: change))
        }
    }

    struct SetBody: RequestBody {
        static let fields: Set<String> = ["key_arn"]
        let keyARN: String?

        enum CodingKeys: String, CodingKey {
            case keyARN = "key_arn"
        }
    }

    /// A customer key as the API shows it.
    struct KeyBody: Encodable {
        let keyARN: String
        let workspaceKey: String
        let since: String
        let state: String
        let code: String?
        let message: String?
        let movingSecrets: Int
        let inForce: Bool

        init(_ status: CustomerKeyStatus) {
            keyARN = status.keyARN
            workspaceKey = status.workspaceKeyID
            since = status.since
            state = status.state.rawValue
            code = status.code
            message = status.detail
            movingSecrets = status.movingSecrets
            inForce = status.inForce
        }

        enum CodingKeys: String, CodingKey {
            case keyARN = "key_arn", workspaceKey = "workspace_key", since, state, code, message
            case movingSecrets = "moving_secrets", inForce = "in_force"
        }
    }

    struct StatusBody: Encodable {
        /// Whether the platform lets workspaces bring their own KMS key.
        let offered: Bool
        let customerKey: KeyBody?

        init(offered: Bool, status: CustomerKeyStatus?) {
            self.offered = offered
            customerKey = status.map(KeyBody.init)
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(offered, forKey: .offered)
            // `null` said, not left out: a workspace whose key the master key wraps.
            try container.encode(customerKey, forKey: .customerKey)
        }

        enum CodingKeys: String, CodingKey {
            case offered, customerKey = "customer_key"
        }
    }

    struct ChangeBody: Encodable {
        let offered: Bool
        let change: CustomerKeyChange

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(offered, forKey: .offered)
            try container.encode(change.status.map(KeyBody.init), forKey: .customerKey)
            try container.encode(RotationBody(change.rotation), forKey: .rotation)
        }

        enum CodingKeys: String, CodingKey {
            case offered, customerKey = "customer_key", rotation
        }
    }

    struct RotationBody: Encodable {
        let workspaceKey: String
        let rewrapped: Int
        let unreadable: Int
        let retired: [String]

        init(_ report: WorkspaceKeyRotationReport) {
            workspaceKey = report.newKeyID
            rewrapped = report.rewrapped
            unreadable = report.unreadable
            retired = report.retired
        }

        enum CodingKeys: String, CodingKey {
            case workspaceKey = "workspace_key", rewrapped, unreadable, retired
        }
    }
}
