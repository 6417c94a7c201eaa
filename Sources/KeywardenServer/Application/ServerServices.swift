import AsyncHTTPClient
import Foundation
import KeywardenGateway
import KeywardenNotifications
import KeywardenProviders
import KeywardenCore
import KeywardenApp
import KeywardenStore
import Logging
import Prometheus

/// Everything the routes and background services use, built once and passed in.
public struct ServerServices: Sendable {
    public let app: AppServices
    public let verification: KeyVerificationService
    public let health: HealthCheckService
    public let dispatcher: NotificationDispatcher
    public let gateway: Gateway
    public let ledger: UsageLedger
    public let metrics: GatewayMetrics
    public let settings: ServerSettings
    /// Limits on noisy actions.
    public let limits: ServerLimits
    let outbound: OutboundClients
    let gatewayOutbound: OutboundClients
    let vendorPool: VendorConnectionPool
    let egressProxy: EgressProxy?
    /// The client connections being served, so that work for a client that left is cancelled.
    let departures = ClientDepartures()
    /// The gateway calls under way, which a graceful shutdown waits for.
    let liveCalls = LiveCalls()

    /// Builds the services over a store: the egress proxy (unless private targets are allowed), one pair of HTTP
    /// clients for verification and webhooks, and one pair for the gateway (each: direct, and through the proxy).
    public static func make(app: AppServices, settings: ServerSettings, logger: Logger) async throws -> ServerServices {
        let egressGuard = EgressGuard(allowsPrivateTargets: app.configuration.allowPrivateTargets)
        let proxy = egressGuard.allowsPrivateTargets ? nil : try await EgressProxy.start(guard: egressGuard, logger: logger)

        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(settings.verifyTimeoutSeconds))
        configuration.redirectConfiguration = .disallow
        // Bodies are read as they come: an encoding the client did not ask for is not expanded (a hostile vendor's gzip).
        configuration.decompression = .disabled
        let outbound = OutboundClients.make(configuration, proxy: proxy)
        let verifier = KeyVerifier(clients: outbound, timeout: .seconds(settings.verifyTimeoutSeconds))
        let limits = ServerLimits(settings.limits)
        let verification = KeyVerificationService(app: app, verifier: verifier, logger: logger, testLimiter: limits.keyTests)
        let health = HealthCheckService(verification: verification, app: app, settings: settings.health, logger: logger)
        let dispatcher = NotificationDispatcher(app: app, client: outbound.direct, workspaceClient: outbound.guarded,
                                                workspaceTargetRefusal: { url in await outbound.refusal(forGuardedURL: url)?.explanation },
                                                settings: settings.dispatch, logger: logger)

        // The gateway's own clients: no decompression (bodies pass through as sent), no redirects, a pool
        // sized for many concurrent calls, and an idle read timeout long enough for slow model streams.
        var gatewayConfiguration = HTTPClient.Configuration()
        let firstByte = settings.gateway.firstByteTimeout.components.seconds
        gatewayConfiguration.timeout = .init(connect: .seconds(5), read: .seconds(max(firstByte, 60) + 1))
        gatewayConfiguration.redirectConfiguration = .disallow
        gatewayConfiguration.decompression = .disabled
        gatewayConfiguration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 512)
        // No tracer: without one bootstrapped, the default is a no-op tracer that still builds a span and its
        // attributes per call (~2 % of a call's CPU in the gateway cost benchmark's profile).
        gatewayConfiguration.tracing.tracer = nil
        let gatewayOutbound = OutboundClients.make(gatewayConfiguration, proxy: proxy)
        // The vendors the catalog and the operator name go over pooled keep-alive connections on NIO's loops, with
        // the same timeouts; targets a workspace shaped keep going through the egress proxy above.
        var poolConfiguration = VendorConnectionPool.Configuration()
        poolConfiguration.connectTimeout = .seconds(5)
        poolConfiguration.readTimeout = .seconds(max(firstByte, 60) + 1)
        let vendorPool = try VendorConnectionPool(configuration: poolConfiguration)
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry())
        let ledger = UsageLedger(app: app, interval: settings.gateway.flushInterval, metrics: metrics, logger: logger,
                                 finalFlushWindow: settings.shutdownBound / 2)
        let gateway = Gateway(app: app, transport: PooledVendorTransport(clients: gatewayOutbound, pool: vendorPool), settings: settings.gateway,
                              health: health, ledger: ledger, metrics: metrics, logger: logger)
        return ServerServices(app: app, verification: verification, health: health, dispatcher: dispatcher, gateway: gateway, ledger: ledger,
                              metrics: metrics, settings: settings, limits: limits, outbound: outbound, gatewayOutbound: gatewayOutbound,
                              vendorPool: vendorPool, egressProxy: proxy)
    }

    /// Writes buffered usage and closes the HTTP clients and the proxy (after every service stopped).
    public func shutdown() async {
        await ledger.flush()
        await outbound.shutdown()
        await gatewayOutbound.shutdown()
        await vendorPool.shutdown()
        await egressProxy?.shutdown()
    }
}

/// How many noisy actions may run per minute.
public struct NoisyActionLimits: Sendable {
    /// Key tests (the Test button, save-and-verify) per workspace, and for the platform.
    public var keyTestsPerMinute = 30
    /// Webhook test events per workspace, and for the platform.
    public var webhookTestsPerMinute = 5
    /// Sign-in attempts per client address.
    public var signInsPerMinute = 10

    public init(keyTestsPerMinute: Int = 30, webhookTestsPerMinute: Int = 5, signInsPerMinute: Int = 10) {
        self.keyTestsPerMinute = keyTestsPerMinute
        self.webhookTestsPerMinute = webhookTestsPerMinute
        self.signInsPerMinute = signInsPerMinute
    }
}

/// The limiters of noisy actions: over a limit, a 429 with `Retry-After`, never a queue.
public struct ServerLimits: Sendable {
    public let keyTests: RateLimiter
    public let webhookTests: RateLimiter
    public let signIns: RateLimiter

    public init(_ limits: NoisyActionLimits = NoisyActionLimits()) {
        keyTests = RateLimiter(.init(limit: limits.keyTestsPerMinute, per: .seconds(60)))
        webhookTests = RateLimiter(.init(limit: limits.webhookTestsPerMinute, per: .seconds(60)))
        signIns = RateLimiter(.init(limit: limits.signInsPerMinute, per: .seconds(60)))
    }
}
