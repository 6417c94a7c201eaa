import KeywardenCore

/// Which requests are gateway calls, and on which face: the data plane answers these; every other request goes on to
/// the router (the management API and the pages).
///
/// The native face is `/{provider}/…` for every catalog provider with a base URL, for every method a vendor's API
/// answers (HEAD and OPTIONS included); the unified faces (`/v1/chat/completions`, `/v1/messages`, `/v1/responses`)
/// take POST. Another method on a face's path is the router's to refuse (405, with the methods the face takes).
public struct GatewayFaces: Sendable {
    /// A gateway call's face, and the path prefix it owns (stripped before the vendor's path).
    public struct Route: Sendable, Equatable {
        /// The face, its unified provider still to be read from `X-Keywarden-Provider`.
        public enum Kind: Sendable, Equatable {
            case native(providerID: String)
            case chatCompletions
            case messages
            case responses
        }

        public let kind: Kind
        /// The part of the path that is Keywarden's (`/openai`), empty on a unified face.
        public let prefix: String

        /// The face, with the provider the caller named on a unified face.
        public func face(namedProvider: String?) -> GatewayCall.Face {
            switch kind {
            case .native(let providerID): return .native(providerID: providerID)
            case .chatCompletions: return .chatCompletions(providerID: namedProvider)
            case .messages: return .messages(providerID: namedProvider)
            case .responses: return .responses(providerID: namedProvider)
            }
        }
    }

    /// Every method the native face passes on.
    public static let nativeMethods = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
    /// The unified faces' paths.
    public static let unified: [(path: String, kind: Route.Kind)] = [
        ("/v1/chat/completions", .chatCompletions), ("/v1/messages", .messages), ("/v1/responses", .responses),
    ]

    /// The providers the native face serves, by id.
    private let providers: Set<String>

    /// The faces of `catalog`'s providers, but for ids in `reserved` (the router's own top-level segments, which win).
    public init(catalog: ProviderCatalog, reserving reserved: Set<String> = []) {
        providers = Set(catalog.providers.filter { $0.baseURL != nil && !reserved.contains($0.id) }.map(\.id))
    }

    /// The route of a request with this method and path (its query, if any, after `?`), or `nil` when it is not a
    /// gateway call.
    public func route(method: String, path: Substring) -> Route? {
        let plain = path.firstIndex(of: "?").map { path[..<$0] } ?? path
        guard plain.first == "/" else { return nil }
        let afterSlash = plain.dropFirst()
        let first = afterSlash.firstIndex(of: "/").map { afterSlash[..<$0] } ?? afterSlash
        if first == "v1", method == "POST" {
            // As the router read them: a trailing slash is the same path.
            let unslashed = plain.count > 1 && plain.last == "/" ? plain.dropLast() : plain
            guard let face = Self.unified.first(where: { $0.path == unslashed }) else { return nil }
            return Route(kind: face.kind, prefix: "")
        }
        // `/{provider}/…`: the provider's segment followed by the vendor's path (at least its `/`).
        guard first.endIndex < afterSlash.endIndex, providers.contains(String(first)), Self.nativeMethods.contains(method) else { return nil }
        return Route(kind: .native(providerID: String(first)), prefix: "/" + first)
    }

    /// The operations the faces serve, as `(method, path)` with the router's `{provider}` and `**` spelling: for the
    /// method-not-allowed table and the OpenAPI document's check.
    public var operations: [(method: String, path: String)] {
        providers.sorted().flatMap { id in Self.nativeMethods.map { ($0, "/\(id)/**") } } + Self.unified.map { ("POST", $0.path) }
    }
}
