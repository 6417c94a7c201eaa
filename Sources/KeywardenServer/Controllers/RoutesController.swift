import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp

/// Chat routes: a workspace's (`/api/v1/workspaces/{id}/routes`) and the platform's (`/api/v1/platform/routes`). The
/// service authorizes the caller; this decodes and encodes.
struct RoutesController {
    let app: AppServices

    func addRoutes(to api: RouterGroup<KeywardenRequestContext>) {
        let owners: [(path: String, owner: @Sendable (Parameters) throws -> RouteService.Owner)] = [
            ("workspaces/:workspace/routes", { .workspace(try $0.require("workspace")) }),
            ("platform/routes", { _ in .platform }),
        ]
        for (path, owner) in owners {
            api.get(RouterPath(path)) { _, context -> Response in
                let routes = try await app.routes.list(try owner(context.parameters), principal: try context.requirePrincipal())
                return try JSONResponse.make(["items": routes.map(RouteItem.init)])
            }
            api.put(RouterPath(path + "/:name")) { request, context -> Response in
                let body = try await request.decodeBody(RouteBody.self, context: context)
                guard let steps = body.steps else { throw KeywardenError.missing("steps", "Give the route's steps: [{\"provider\", \"model\"}, …].") }
                let route = try await app.routes.set(try owner(context.parameters), name: try context.parameters.require("name"),
                                                     steps: steps.map { ChatRoute.Step(provider: $0.provider, model: $0.model) },
                                                     principal: try context.requirePrincipal())
                return try JSONResponse.make(MessageBody(message: "Route saved.", item: RouteItem(route), itemKey: "route"))
            }
            api.delete(RouterPath(path + "/:name")) { _, context -> Response in
                try await app.routes.delete(try owner(context.parameters), name: try context.parameters.require("name"), principal: try context.requirePrincipal())
                return try JSONResponse.make(MessageOnlyBody(message: "Route removed."))
            }
        }
    }

    struct RouteBody: RequestBody {
        static let fields: Set<String> = ["steps"]
        let steps: [Step]?

        /// One step: `provider` and `model`, nothing else (an unknown member is `unknown_field`, as at the top level).
        struct Step: Decodable {
            let provider: String
            let model: String

            private struct Name: CodingKey {
                let stringValue: String
                var intValue: Int? { nil }
                init?(stringValue: String) { self.stringValue = stringValue }
                init?(intValue: Int) { nil }
            }

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: Name.self)
                if let unknown = container.allKeys.map(\.stringValue).filter({ $0 != "provider" && $0 != "model" }).sorted().first {
                    throw KeywardenError.invalid("steps", "A step has only provider and model; '\(unknown)' is not one of its fields.", code: "unknown_field")
                }
                guard let provider = Name(stringValue: "provider"), let model = Name(stringValue: "model") else { throw KeywardenError.missing("steps") }
                self.provider = try container.decode(String.self, forKey: provider)
                self.model = try container.decode(String.self, forKey: model)
            }
        }
    }

    struct RouteItem: Encodable {
        let name: String
        let scope: String
        let steps: [ChatRoute.Step]

        init(_ route: ChatRoute) {
            name = route.name
            scope = route.workspaceID == nil ? "platform" : "workspace"
            steps = route.steps
        }
    }
}
