import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import KeywardenCore
import KeywardenApp
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
    /// The key lifecycle sweep: grace periods, expiry and rotation-due notices.
    public var lifecycle: KeyLifecycleSettings
    /// The longest a graceful shutdown may take before the process exits (`KEYWARDEN_SHUTDOWN_TIMEOUT`).
    public var shutdownBound: Duration = .seconds(10)
    /// What a client connection may hold: the time to its first request head and to the next after an answer, and how
    /// many may be open at once.
    public var connections = ClientConnectionLimits()

    public init(host: String = "127.0.0.1", port: Int = 8080, metricsToken: Secret? = nil, verifyTimeoutSeconds: Int64 = 10,
                health: HealthCheckSettings = .init(), healthChecksEnabled: Bool = true, dispatch: DispatchSettings = .init(),
                gateway: GatewaySettings = .init(), limits: NoisyActionLimits = .init(), lifecycle: KeyLifecycleSettings = .init()) {
        self.limits = limits
        self.lifecycle = lifecycle
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
    public var clientAddress: String? { remoteAddress?.ipAddress }
    private let remoteAddress: SocketAddress?
    /// The connection the request arrived on (to learn whether its client leaves: ``ClientDepartures``).
    let connectionID: ObjectIdentifier

    /// Management bodies are small: anything larger is refused with 413 before it is read.
    public static let maximumBodySize = 64 * 1024

    public var maxUploadSize: Int { Self.maximumBodySize }

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.principal = nil
        self.remoteAddress = source.channel.remoteAddress
        self.connectionID = ObjectIdentifier(source.channel)
    }

    /// The authenticated principal; routes behind the auth middleware always have one.
    public func requirePrincipal() throws -> Principal {
        guard let principal else { throw KeywardenError(.unauthenticated, code: "unauthorized", message: "Authentication is required.") }
        return principal
    }
}

/// Builds the router: middleware, then every controller.
public func buildRouter(_ services: ServerServices) -> Router<KeywardenRequestContext> {
    let app = services.app
    let router = Router(context: KeywardenRequestContext.self)
    router.add(middleware: RequestLogMiddleware())
    router.add(middleware: ErrorMiddleware())
    // Middleware comes before routes; the table it reads is filled once they are all registered.
    let routeTable = RouteTable()
    router.add(middleware: MethodNotAllowedMiddleware(table: routeTable))
    HealthController(app: app).addRoutes(to: router)
    MetricsController(registry: services.metrics.registry, token: services.settings.metricsToken).addRoutes(to: router)
    CatalogController(catalog: app.catalog).addRoutes(to: router)
    OpenAPIController().addRoutes(to: router)

    let api = router.group("api/v1").add(middleware: AuthenticationMiddleware(app: app))
    MeController().addRoutes(to: api)
    PlatformCardsController(app: app, verification: services.verification).addRoutes(to: api.group("platform/providers"))
    TokensController(app: app).addPlatformRoutes(to: api.group("platform/tokens"))
    PlansController(app: app).addRoutes(to: api.group("platform/plans"))
    WorkspacesController(app: app).addRoutes(to: api.group("workspaces"))
    MembersController(app: app).addRoutes(to: api.group("workspaces/:workspace/members"))
    BudgetController(app: app, defaultPlatformBudget: services.settings.gateway.defaultPlatformBudget).addRoutes(to: api.group("workspaces/:workspace/budget"))
    BudgetController(app: app, defaultPlatformBudget: services.settings.gateway.defaultPlatformBudget)
        .addRateLimitRoutes(to: api.group("workspaces/:workspace/rate-limits"))
    TokensController(app: app).addWorkspaceRoutes(to: api.group("workspaces/:workspace/tokens"))
    KeysController(app: app, verification: services.verification).addRoutes(to: api.group("workspaces/:workspace/keys"))
    KeyRotationController(app: app, verification: services.verification).addWorkspaceRoutes(to: api.group("workspaces/:workspace/keys/:key"))
    KeyRotationController(app: app, verification: services.verification).addPlatformRoutes(to: api.group("platform/providers/:provider"))
    WebhooksController(app: app, testLimiter: services.limits.webhookTests).addWorkspaceRoutes(to: api.group("workspaces/:workspace/webhooks"))
    WebhooksController(app: app, testLimiter: services.limits.webhookTests).addPlatformRoutes(to: api.group("platform/webhooks"))
    NotificationSettingsController(app: app).addRoutes(to: api.group("platform"))
    EventsController(app: app).addRoutes(to: api.group("events"))
    ResolutionController(app: app).addRoutes(to: api)
    RoutesController(app: app).addRoutes(to: api)
    RequestLogController(app: app).addRoutes(to: api)
    AuditController(app: app).addRoutes(to: api.group("audit"))
    CustodyController(app: app).addRoutes(to: api.group("workspaces/:workspace/custody"))
    CustomerKeyController(app: app).addRoutes(to: api.group("workspaces/:workspace/customer-key"))
    PagesController(app: app, verification: services.verification, keys: KeysController(app: app, verification: services.verification),
                    cooldowns: services.gateway.cooldowns, signInLimiter: services.limits.signIns, testLimiter: services.limits.webhookTests,
                    defaultPlatformBudget: services.settings.gateway.defaultPlatformBudget)
        .addRoutes(to: router)
    UsageController(app: app).addRoutes(to: api.group("usage"))
    UsageController(app: app).addExportRoute(to: api.group("usage"))
    // Gateway calls are answered before the router (``GatewayChannelHandler``); another method on a face's path is the
    // router's to refuse, naming the methods the face takes.
    routeTable.fill(from: router, adding: gatewayFaces(app.catalog, router: router).operations)
    return router
}

/// The data plane's faces beside `router`: a catalog provider whose id is a top-level segment of the router's (`api`,
/// `login`) is not a native face, so the router's literal routes win, as they did when the faces were routes.
func gatewayFaces(_ catalog: ProviderCatalog, router: Router<KeywardenRequestContext>) -> GatewayFaces {
    let reserved = Set(router.routes.compactMap { $0.path.description.split(separator: "/").first.map(String.init) }.filter { !$0.hasPrefix("{") })
    return GatewayFaces(catalog: catalog, reserving: reserved)
}

/// Builds the application: the router, the listening address, and `onListening` called with the bound port.
public func buildApplication(
    _ services: ServerServices, logger: Logger,
    onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }
) -> some ApplicationProtocol {
    let settings = services.settings
    let open = ConnectionAdmission.Count(maximum: settings.connections.maximumConnections)
    let limits = settings.connections
    let departures = services.departures
    let realtime = RealtimeController(app: services.app, gateway: services.gateway)
    let router = buildRouter(services)
    let plane = GatewayDataPlane(app: services.app, gateway: services.gateway, faces: gatewayFaces(services.app.catalog, router: router),
                                 replayLimit: settings.gateway.replayLimit, departures: departures, calls: services.liveCalls, logger: logger)
    // HTTP/1.1, with WebSocket upgrades for the providers' realtime endpoints; every connection admitted (counted, its
    // first head timed) before either is chosen.
    let server = HTTPServerBuilder { responder in
        AdmittedChannel(
            inner: HTTP1WebSocketUpgradeChannel(
                responder: responder,
                configuration: .init(http1: .init(additionalChannelHandlers: [ClientConnectionGuard(limits: limits, departures: departures),
                                                                              GatewayChannelHandler(plane: plane, sendTimeout: limits.sendTimeout)]),
                                     ws: .init(maxFrameSize: Gateway.maximumRealtimeMessage)),
                shouldUpgrade: { head, _, logger in await realtime.shouldUpgrade(head, logger: logger) }
            ),
            admission: { ConnectionAdmission(count: open, headTimeout: limits.headTimeout) }
        )
    }
    return Application(
        router: router,
        server: server,
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
    let app: AppServices

    func run() async throws {
        try? await gracefulShutdown()
        await app.close()
    }
}

/// Ends the process when a graceful shutdown takes longer than its bound, whatever is still in flight (a request
/// waiting on a vendor, a flush waiting on the database): an orchestrator's SIGTERM is obeyed in bounded time.
///
/// It is the group's last service, so it is the first told of the shutdown; it arms a timer on a thread of its own
/// (independent of the tasks it guards) and returns.
struct ShutdownWatchdog: Service {
    let bound: Duration
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        let (bound, logger) = (self.bound, self.logger)
        let thread = Thread {
            Thread.sleep(forTimeInterval: Double(bound.components.seconds) + Double(bound.components.attoseconds) / 1e18)
            logger.critical("shutdown did not finish in time; exiting with work in flight", metadata: ["bound_seconds": "\(bound.components.seconds)"])
            exit(1)
        }
        thread.start()
    }
}

/// Runs the server until SIGTERM or SIGINT, then shuts down gracefully: the server stops
/// accepting, finishes in-flight requests, and the database closes last. The whole shutdown takes at most
/// ``ServerSettings/shutdownBound``: in-flight work is cancelled past 80 % of it, and the process exits at it.
public func runServer(
    app: AppServices, settings: ServerSettings, logger: Logger,
    onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }
) async throws {
    var settings = settings
    // Open connections take descriptors: the soft limit is raised to the hard one, and the connection limit kept below it.
    let descriptors = DescriptorLimit.raiseToHard()
    if let cap = DescriptorLimit.connectionCap(limit: descriptors, wanted: settings.connections.maximumConnections) {
        logger.warning("server: fewer file descriptors than KEYWARDEN_MAX_CONNECTIONS needs; client connections capped", metadata: [
            "descriptors": "\(descriptors ?? 0)", "max_connections": "\(cap)", "asked": "\(settings.connections.maximumConnections)",
        ])
        settings.connections.maximumConnections = cap
    }
    let services = try await ServerServices.make(app: app, settings: settings, logger: logger)
    // The platform's part of resolution is loaded before listening; workspaces load on their first call.
    try await app.followChanges()
    let server = buildApplication(services, logger: logger, onListening: onListening)
    // Services shut down in reverse order: the HTTP server first, then the background work, the store last.
    // The usage ledger stops after the server, so the calls it finished are written before the store closes.
    var members: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: StoreShutdownService(app: app)), .init(service: services.dispatcher)]
    if settings.healthChecksEnabled { members.append(.init(service: services.health)) }
    members.append(.init(service: KeyLifecycleSweep(app: app, settings: settings.lifecycle, logger: logger)))
    members.append(.init(service: MemoryTrimmer(calls: services.liveCalls, interval: .seconds(5), logger: logger)))
    members.append(.init(service: services.ledger))
    // The calls' effects stop after the server (its last calls' effects are carried out) and before the ledger; the
    // data plane's calls under way are waited for between the two.
    members.append(.init(service: services.gateway.effects))
    members.append(.init(service: DataPlaneDrain(calls: services.liveCalls)))
    members.append(.init(service: server))
    members.append(.init(service: ShutdownWatchdog(bound: settings.shutdownBound, logger: logger)))
    var configuration = ServiceGroupConfiguration(services: members, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    configuration.maximumGracefulShutdownDuration = settings.shutdownBound * 0.8
    let group = ServiceGroup(configuration: configuration)
    do {
        try await group.run()
    } catch {
        await services.shutdown()
        throw error
    }
    await services.shutdown()
}
