import AsyncHTTPClient
import Foundation
import KeywardenNotifications
import KeywardenProviders
import KeywardenStore
import Logging

/// Everything the routes and background services use, built once and passed in.
public struct ServerServices: Sendable {
    public let store: Store
    public let verification: KeyVerificationService
    public let health: HealthCheckService
    public let dispatcher: NotificationDispatcher
    public let settings: ServerSettings
    let httpClient: HTTPClient

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
        return ServerServices(store: store, verification: verification, health: health, dispatcher: dispatcher, settings: settings, httpClient: client)
    }

    /// Closes the HTTP client (after every service stopped).
    public func shutdown() async {
        try? await httpClient.shutdown()
    }
}
