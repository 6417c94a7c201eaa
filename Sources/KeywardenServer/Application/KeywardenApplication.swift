import Foundation
import Hummingbird
import KeywardenCore
import KeywardenGateway
import KeywardenNotifications
import KeywardenProviders
import KeywardenStore
import Logging
import NIOCore
import ServiceLifecycle

/// Where the HTTP server listens and how its background services behave.
public struct ServerSettings: Sendable {
    public var host: String
    /// 0 asks the system for a free port; the chosen one is reported through `onListening`.
    public var port: Int
    /// When set, `/metrics` answers only a request that carries it as a bearer token (`KEYWARDEN_METRICS_TOKEN`).
    public var metricsToken: Secret?
    /// The deadline of a verification call.
    public var verifyTimeoutSeconds: Int64
    public var health: HealthCheckSettings
    /// Whether the periodic health checks run (on-demand checks always do).
    public var healthChecksEnabled: Bool
    public var dispatch: DispatchSettings
    public var gateway: GatewaySettings
    /// How many noisy actions (Test, webhook test events, sign-in attempts) may run per minute.
    public var limits: NoisyActionLimits

    public init(host: String = "127.0.0.1", port: Int = 8080, metricsToken: Secret? = nil, verifyTimeoutSeconds: Int64 = 10,
                health: HealthCheckSettings = .init(), healthChecksEnabled: Bool = true, dispatch: DispatchSettings = .init(),
                gateway: GatewaySettings = .init(), limits: NoisyActionLimits = .init()) {
        self.limits = limits
        self.host = host
        self.port = port
        self.metricsToken = metricsToken
        self.verifyTimeoutSeconds = verifyTimeoutSeconds
        self.health = health
        self.healthChecksEnabled = healthChecksEnabled
        self.dispatch = dispatch
        self.gateway = gateway
    }
}

/// The request context of every route: the authenticated principal, once the auth middleware ran.
public struct KeywardenRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Who is calling; set by ``AuthenticationMiddleware`` on authenticated routes.
    public var principal: Principal?
    /// The peer's address (for per-client limits such as sign-in attempts); `nil` when unknown.
    public let clientAddress: String?

    /// Management bodies are small: anything larger is refused with 413 before it is read.
    public static let maximumBodySize = 64 * 1024

    public var maxUploadSize: Int { Self.maximumBodySize }

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.principal = nil
        self.clientAddress = source.channel.remoteAddress?.ipAddress
    }

    /// The authenticated principal; routes behind the auth middleware always have one.
    public func requirePrincipal() throws -> Principal {
        guard let principal else { throw KeywardenError(.unauthenticated, code: "unauthorized", message: "Authentication is required.") }
        return principal
    }
}

/// Builds the router: middleware, then every controller.
public func buildRouter(_ services: ServerServices) -> Router<KeywardenRequestContext> {
    let store = services.store
    let router = Router(context: KeywardenRequestContext.self)
    router.add(middleware: RequestLogMiddleware())
    router.add(middleware: ErrorMiddleware())
    // Middleware comes before routes; the table it reads is filled once they are all registered.
    let routeTable = RouteTable()
    router.add(middleware: MethodNotAllowedMiddleware(table: routeTable))
    HealthController(store: store).addRoutes(to: router)
    MetricsController(registry: services.metrics.registry, token: services.settings.metricsToken).addRoutes(to: router)
    GatewayController(store: store, gateway: services.gateway, replayLimit: services.settings.gateway.replayLimit).addRoutes(to: router)
    CatalogController(catalog: store.catalog).addRoutes(to: router)
    OpenAPIController().addRoutes(to: router)

    let api = router.group("api/v1").add(middleware: AuthenticationMiddleware(store: store))
    MeController().addRoutes(to: api)
    PlatformCardsController(store: store, verification: services.verification).addRoutes(to: api.group("platform/providers"))
    TokensController(store: store).addPlatformRoutes(to: api.group("platform/tokens"))
    WorkspacesController(store: store).addRoutes(to: api.group("workspaces"))
    MembersController(store: store).addRoutes(to: api.group("workspaces/:workspace/members"))
    TokensController(store: store).addWorkspaceRoutes(to: api.group("workspaces/:workspace/tokens"))
    KeysController(store: store, verification: services.verification).addRoutes(to: api.group("workspaces/:workspace/keys"))
    WebhooksController(store: store, testLimiter: services.limits.webhookTests).addWorkspaceRoutes(to: api.group("workspaces/:workspace/webhooks"))
    WebhooksController(store: store, testLimiter: services.limits.webhookTests).addPlatformRoutes(to: api.group("platform/webhooks"))
    NotificationSettingsController(store: store).addRoutes(to: api.group("platform"))
    EventsController(store: store).addRoutes(to: api.group("events"))
    ResolutionController(store: store).addRoutes(to: api)
    AuditController(store: store).addRoutes(to: api.group("audit"))
    PagesController(store: store, verification: services.verification, keys: KeysController(store: store, verification: services.verification),
                    signInLimiter: services.limits.signIns)
        .addRoutes(to: router)
    UsageController(store: store).addRoutes(to: api.group("usage"))
    routeTable.fill(from: router)
    return router
}

/// Builds the application: the router, the listening address, and `onListening` called with the bound port.
public func buildApplication(
    _ services: ServerServices, logger: Logger,
    onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }
) -> some ApplicationProtocol {
    let settings = services.settings
    return Application(
        router: buildRouter(services),
        configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "Keywarden"),
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? settings.port
            onListening(settings.host, port)
        },
        logger: logger
    )
}

/// Closes the store when the service group shuts down, after the server has stopped.
struct StoreShutdownService: Service {
    let store: Store

    func run() async throws {
        try? await gracefulShutdown()
        await store.close()
    }
}

/// Runs the server until SIGTERM or SIGINT, then shuts down gracefully: the server stops
/// accepting, finishes in-flight requests, and the database closes last.
public func runServer(
    store: Store, settings: ServerSettings, logger: Logger,
    onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }
) async throws {
    let services = try await ServerServices.make(store: store, settings: settings, logger: logger)
    let app = buildApplication(services, logger: logger, onListening: onListening)
    // Services shut down in reverse order: the application first, then the background work, the store last.
    // The usage ledger stops after the application, so the calls it finished are written before the store closes.
    var members: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: StoreShutdownService(store: store)), .init(service: services.dispatcher)]
    if settings.healthChecksEnabled { members.append(.init(service: services.health)) }
    members.append(.init(service: services.ledger))
    members.append(.init(service: app))
    let group = ServiceGroup(configuration: .init(services: members, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    do {
        try await group.run()
    } catch {
        await services.shutdown()
        throw error
    }
    await services.shutdown()
}
