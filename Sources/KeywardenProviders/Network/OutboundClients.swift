import AsyncHTTPClient
import Foundation
import KeywardenCore
import Synchronization

/// The two ways Keywarden calls out: directly, to targets the operator chose (the catalog's vendors, platform
/// cards, `KEYWARDEN_UPSTREAM_*`, platform webhooks), and through the ``EgressProxy`` for targets a workspace
/// shaped (its endpoint or base URL, a region in a host name, its webhooks), which are judged at connect time.
public struct OutboundClients: Sendable {
    public let direct: HTTPClient
    /// The same client settings, through the egress proxy (the direct client when private targets are allowed).
    public let guarded: HTTPClient
    /// A quick verdict on a guarded target before a connection is asked for, so a refused target is a clear error at
    /// once (the proxy's refusal alone looks like a failed connection, which a client retries until its timeout).
    /// The proxy still judges every connection: this is for the answer, not the rule.
    let precheck: EgressPrecheck?

    public init(direct: HTTPClient, guarded: HTTPClient, precheck: EgressPrecheck? = nil) {
        self.direct = direct
        self.guarded = guarded
        self.precheck = precheck
    }

    /// One client for both (tests, and `KEYWARDEN_ALLOW_PRIVATE_TARGETS`).
    public init(only client: HTTPClient) {
        self.init(direct: client, guarded: client)
    }

    /// Why a guarded request to `url` will be refused, or `nil` (always `nil` without a proxy).
    public func refusal(forGuardedURL url: String) async -> NetworkTargetPolicy.Refusal? {
        await precheck?.refusal(forURL: url)
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
        return OutboundClients(direct: direct, guarded: HTTPClient(eventLoopGroupProvider: .singleton, configuration: guardedConfiguration),
                               precheck: EgressPrecheck(guard: proxy.egressGuard))
    }

    /// Shuts both clients down.
    public func shutdown() async {
        try? await direct.shutdown()
        if guarded !== direct { try? await guarded.shutdown() }
    }
}

/// Recent verdicts on guarded targets (by host and port, a few seconds each), so a call does not resolve its
/// target twice; bounded in size.
public final class EgressPrecheck: Sendable {
    let egressGuard: EgressGuard
    private let verdicts = Mutex<[String: (refusal: NetworkTargetPolicy.Refusal?, until: ContinuousClock.Instant)]>([:])
    static let lifetime: Duration = .seconds(5)
    static let capacity = 10_000

    public init(guard egressGuard: EgressGuard) {
        self.egressGuard = egressGuard
    }

    public func refusal(forURL url: String) async -> NetworkTargetPolicy.Refusal? {
        guard let components = URLComponents(string: url), let host = components.host else { return .reserved }
        let trimmed = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let port = components.port ?? (components.scheme?.lowercased() == "https" ? 443 : 80)
        let key = "\(trimmed.lowercased()):\(port)"
        let now = ContinuousClock.now
        if let cached = verdicts.withLock({ $0[key] }), cached.until > now { return cached.refusal }
        let refusal: NetworkTargetPolicy.Refusal?
        switch await egressGuard.check(host: trimmed, port: port) {
        case .refused(let reason, _): refusal = reason
        case .allowed, .unresolvable: refusal = nil
        }
        verdicts.withLock { verdicts in
            if verdicts.count >= Self.capacity { verdicts.removeAll(keepingCapacity: true) }
            verdicts[key] = (refusal, now + Self.lifetime)
        }
        return refusal
    }
}
