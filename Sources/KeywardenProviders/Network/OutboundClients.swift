import AsyncHTTPClient

/// The two ways Keywarden calls out: directly, to targets the operator chose (the catalog's vendors, platform
/// cards, `KEYWARDEN_UPSTREAM_*`, platform webhooks), and through the ``EgressProxy`` for targets a workspace
/// shaped (its endpoint or base URL, a region in a host name, its webhooks), which are judged at connect time.
public struct OutboundClients: Sendable {
    public let direct: HTTPClient
    /// The same client settings, through the egress proxy (the direct client when private targets are allowed).
    public let guarded: HTTPClient

    public init(direct: HTTPClient, guarded: HTTPClient) {
        self.direct = direct
        self.guarded = guarded
    }

    /// One client for both (tests, and `KEYWARDEN_ALLOW_PRIVATE_TARGETS`).
    public init(only client: HTTPClient) {
        self.init(direct: client, guarded: client)
    }

    /// The client for a request: guarded when a workspace shaped its target.
    public func client(shapedByWorkspace: Bool) -> HTTPClient {
        shapedByWorkspace ? guarded : direct
    }

    /// Makes a direct client and its guarded twin from one configuration (no twin without a proxy).
    public static func make(_ configuration: HTTPClient.Configuration, proxy: EgressProxy?) -> OutboundClients {
        let direct = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        guard let proxy else { return OutboundClients(only: direct) }
        var guardedConfiguration = configuration
        guardedConfiguration.proxy = .socksServer(host: "127.0.0.1", port: proxy.port)
        return OutboundClients(direct: direct, guarded: HTTPClient(eventLoopGroupProvider: .singleton, configuration: guardedConfiguration))
    }

    /// Shuts both clients down.
    public func shutdown() async {
        try? await direct.shutdown()
        if guarded !== direct { try? await guarded.shutdown() }
    }
}
