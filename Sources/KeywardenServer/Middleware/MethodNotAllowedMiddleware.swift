import Hummingbird
import KeywardenCore
import Synchronization

/// The registered routes, filled once the router is complete (middleware is added before routes).
final class RouteTable: Sendable {
    private let routes = Mutex<[(components: [Substring?], method: HTTPRequest.Method)]>([])

    /// Records the router's routes, and `others` (method, path) answered before it: path components (`nil` for a
    /// `{parameter}` capture or `**`) and method.
    func fill<Context>(from router: Router<Context>, adding others: [(method: String, path: String)] = []) {
        let paths = router.routes.map { ($0.path.description, $0.method) } + others.map { ($0.path, HTTPRequest.Method($0.method)) }
        let table = paths.compactMap { path, method in
            method.map { method in (path.split(separator: "/").map { $0.hasPrefix("{") || $0 == "**" ? nil : $0 }, method) }
        }
        routes.withLock { $0 = table }
    }

    /// The methods registered for a concrete path. Like the router, a literal segment wins over a
    /// capture: `/webhooks/test` is that route, not `/webhooks/{webhook}`.
    func allowedMethods(for path: String) -> [HTTPRequest.Method] {
        let parts = path.split(separator: "/")
        return routes.withLock { routes in
            let matching = routes.filter { route in
                route.components.count == parts.count && zip(route.components, parts).allSatisfy { $0 == nil || $0 == $1 }
            }
            guard let best = matching.map({ $0.components.filter { $0 != nil }.count }).max() else { return [] }
            return matching.filter { $0.components.filter { $0 != nil }.count == best }.map(\.method)
        }
    }
}

/// Answers 405 with an `Allow` header when a path exists but not for the request's method;
/// the router alone would answer 404.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    let table: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = table.allowedMethods(for: request.uri.path)
            guard !allowed.isEmpty, !allowed.contains(request.method) else { throw error }
            let names = Set(allowed.map(\.rawValue)).sorted().joined(separator: ", ")
            throw APIError(.methodNotAllowed, code: "method_not_allowed",
                           message: "\(request.method.rawValue) is not allowed here; use \(names).", headers: [.allow: names])
        }
    }
}
