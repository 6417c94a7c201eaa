import AsyncHTTPClient
import Foundation
import KeywardenGateway
import KeywardenNotifications
import KeywardenProviders
import KeywardenStore
import Logging
import Prometheus

/// Everything the routes and background services use, built once and passed in.
public struct ServerServices: Sendable {
    public let store: Store
    public let verification: KeyVerificationService
    public let health: HealthCheckService
    public let dispatcher: NotificationDispatcher
    public let gateway: Gateway
    public let ledger: UsageLedger
    public let metrics: GatewayMetrics
    public let settings: ServerSettings
    let httpClient: HTTPClient
    let gatewayClient: HTTPClient

    /// Builds the services over a store, with one HTTP client for vendors and webhooks.
    public static func make(store: Store, settings: ServerSettings, logger: Logger) -> ServerServices {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(settings.verifyTimeoutSeconds))
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .enabled(limit: .ratio(20))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let verifier = KeyVerifier(client: client, timeout: .seconds(Int64(settings.verifyTimeoutSeconds)))
        let verification = KeyVerificationService(store: store, verifier: verifier, logger: logger)
        let health = HealthCheckService(verification: verification, store: store, settings: settings.health, logger: logger)
        let dispatcher = NotificationDispatcher(store: store, client: client, settings: settings.dispatch, logger: logger)

        // The gateway's own client: no decompression (bodies pass through as sent), no redirects, a pool
        // sized for many concurrent calls, and an idle read timeout long enough for slow model streams.
        var gatewayConfiguration = HTTPClient.Configuration()
        let firstByte = settings.gateway.firstByteTimeout.components.seconds
        gatewayConfiguration.timeout = .init(connect: .seconds(5), read: .seconds(max(firstByte, 60) + 1))
        gatewayConfiguration.redirectConfiguration = .disallow
        gatewayConfiguration.decompression = .disabled
        gatewayConfiguration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 512)
        let gatewayClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: gatewayConfiguration)
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry())
        let ledger = UsageLedger(store: store, interval: settings.gateway.flushInterval, metrics: metrics, logger: logger)
        let gateway = Gateway(store: store, client: gatewayClient, settings: settings.gateway, health: health, ledger: ledger, metrics: metrics, logger: logger)
        return ServerServices(store: store, verification: verification, health: health, dispatcher: dispatcher, gateway: gateway, ledger: ledger,
                              metrics: metrics, settings: settings, httpClient: client, gatewayClient: gatewayClient)
    }

    /// Writes buffered usage and closes the HTTP clients (after every service stopped).
    public func shutdown() async {
        await ledger.flush()
        try? await httpClient.shutdown()
        try? await gatewayClient.shutdown()
    }
}
