import KeywardenApp
import Foundation
import KeywardenCore
import KeywardenGateway
import KeywardenStore
import KeywardenNotifications
import KeywardenProviders
import KeywardenVault

/// A configuration variable with a value Keywarden cannot use.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let variable: String
    public let problem: String

    public var description: String { "\(variable) \(problem)" }
}

/// Reads Keywarden's configuration from the command line and the environment.
public enum RuntimeConfiguration {
    /// The data directory when neither `--data` nor `KEYWARDEN_DATA` is given.
    public static let defaultDataDirectory = "./keywarden-data"
    public static let dataVariable = "KEYWARDEN_DATA"
    public static let catalogFileVariable = "KEYWARDEN_CATALOG_FILE"

    /// The data directory: `--data`, else `KEYWARDEN_DATA`, else `./keywarden-data`.
    public static func dataDirectory(option: String?, environment: [String: String]) -> URL {
        let path = option ?? environment[dataVariable].flatMap { $0.isEmpty ? nil : $0 } ?? defaultDataDirectory
        return URL(fileURLWithPath: path).standardizedFileURL
    }

    /// The catalog: the bundled one (or `KEYWARDEN_CATALOG_FILE`), with `KEYWARDEN_UPSTREAM_<ID>` overrides applied.
    public static func catalog(environment: [String: String]) throws -> ProviderCatalog {
        let file = environment[catalogFileVariable].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
        return try ProviderCatalog.load(file: file).applyingUpstreamOverrides(from: environment)
    }

    /// The server's settings: address from the command line, the rest from `KEYWARDEN_*` variables.
    /// A variable that is set but not a valid number is an error naming it.
    public static func server(host: String, port: Int, environment: [String: String]) throws -> ServerSettings {
        // Every number through the checked helpers: `inf`, `nan`, `1e999` or 30 digits are errors naming the variable, never a trap.
        let maximumSeconds = 365.0 * 86_400
        func seconds(_ name: String, default value: Double, minimum: Double = 0) throws -> Double {
            guard let text = environment[name], !text.isEmpty else { return value }
            guard let number = UntrustedNumber.decimal(text), number >= minimum, number <= maximumSeconds else {
                throw ConfigurationError(variable: name, problem: "must be a number of seconds from \(minimum) to \(Int(maximumSeconds)), got '\(text)'")
            }
            return number
        }
        func integer(_ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
            guard let text = environment[name], !text.isEmpty else { return value }
            guard let number = UntrustedNumber.integer(text), range.contains(number) else {
                throw ConfigurationError(variable: name, problem: "must be a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
            }
            return number
        }
        func duration(_ seconds: Double) -> Duration { UntrustedNumber.duration(seconds: seconds) ?? .seconds(0) }

        let interval = try seconds("KEYWARDEN_HEALTH_INTERVAL", default: 6 * 3600)
        let quotaRecheck = try seconds("KEYWARDEN_QUOTA_RECHECK", default: 15 * 60)
        let health = HealthCheckSettings(
            interval: duration(max(interval, 1)),
            concurrency: try integer("KEYWARDEN_HEALTH_CONCURRENCY", default: 4, range: 1...64),
            tick: duration(try seconds("KEYWARDEN_HEALTH_TICK", default: 30, minimum: 0.05)),
            quotaRecheck: quotaRecheck > 0 ? duration(max(quotaRecheck, 1)) : nil, periodic: interval > 0
        )
        let dispatch = DispatchSettings(
            pollInterval: duration(try seconds("KEYWARDEN_NOTIFY_POLL", default: 1, minimum: 0.05)),
            retryBase: duration(try seconds("KEYWARDEN_WEBHOOK_RETRY_BASE", default: 10, minimum: 0.01)),
            maximumAttempts: try integer("KEYWARDEN_WEBHOOK_MAX_ATTEMPTS", default: 10, range: 1...100),
            smtpCAFile: environment["KEYWARDEN_SMTP_CA_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        )
        var credits = CreditPolicy.standard
        if let text = environment["KEYWARDEN_CREDITS"], !text.isEmpty {
            do { credits = try CreditPolicy(parsing: text) } catch {
                throw ConfigurationError(variable: "KEYWARDEN_CREDITS", problem: error.message)
            }
            for rule in credits.rules {
                if let provider = rule.provider, !(try catalog(environment: environment)).contains(provider) {
                    throw ConfigurationError(variable: "KEYWARDEN_CREDITS", problem: "names no provider of the catalog ('\(provider)')")
                }
            }
        }
        let prices = try prices(environment: environment)
        let gateway = GatewaySettings(
            maxAttempts: try integer("KEYWARDEN_GATEWAY_MAX_ATTEMPTS", default: 3, range: 1...10),
            firstByteTimeout: duration(try seconds("KEYWARDEN_GATEWAY_TIMEOUT", default: 300, minimum: 0.1)),
            defaultCooldown: duration(try seconds("KEYWARDEN_GATEWAY_COOLDOWN", default: 30, minimum: 0)),
            rejectedCooldown: duration(try seconds("KEYWARDEN_GATEWAY_REJECTED_COOLDOWN", default: 60, minimum: 0)),
            replayLimit: try integer("KEYWARDEN_GATEWAY_REPLAY_LIMIT", default: 4 * 1024 * 1024, range: 0...(256 * 1024 * 1024)),
            credits: credits,
            flushInterval: duration(try seconds("KEYWARDEN_USAGE_FLUSH", default: 0.5, minimum: 0.01)),
            maximumCooldown: duration(try seconds("KEYWARDEN_GATEWAY_MAX_COOLDOWN", default: 3600, minimum: 1)),
            sharedKeyEndpoints: try sharedKeyEndpoints(environment: environment),
            defaultPlatformBudget: try budgetCredits(environment["KEYWARDEN_DEFAULT_BUDGET_CREDITS"]),
            prices: prices,
            publicURL: try publicURL(environment["KEYWARDEN_PUBLIC_URL"])
        )
        let metricsToken = environment["KEYWARDEN_METRICS_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        if let metricsToken, metricsToken.utf8.count < 16 || !metricsToken.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            throw ConfigurationError(variable: "KEYWARDEN_METRICS_TOKEN", problem: "must be at least 16 printable characters without spaces")
        }
        var settings = ServerSettings(
            host: host, port: port, metricsToken: metricsToken.map(Secret.init),
            verifyTimeoutSeconds: Int64(try integer("KEYWARDEN_VERIFY_TIMEOUT", default: 10, range: 1...300)),
            health: health, healthChecksEnabled: interval > 0 || quotaRecheck > 0, dispatch: dispatch, gateway: gateway,
            lifecycle: KeyLifecycleSettings(
                tick: duration(try seconds("KEYWARDEN_LIFECYCLE_TICK", default: 60, minimum: 0.05)),
                expiryNoticeDays: try integer("KEYWARDEN_KEY_EXPIRY_NOTICE_DAYS", default: 14, range: 0...365)
            )
        )
        settings.shutdownBound = duration(try seconds("KEYWARDEN_SHUTDOWN_TIMEOUT", default: 10, minimum: 1))
        settings.connections = ClientConnectionLimits(
            headTimeout: duration(try seconds("KEYWARDEN_HEAD_TIMEOUT", default: 30, minimum: 1)),
            idleTimeout: duration(try seconds("KEYWARDEN_IDLE_TIMEOUT", default: 75, minimum: 1)),
            maximumConnections: try integer("KEYWARDEN_MAX_CONNECTIONS", default: 4_096, range: 1...1_000_000),
            bodyTimeout: duration(try seconds("KEYWARDEN_BODY_TIMEOUT", default: 60, minimum: 1)),
            sendTimeout: duration(try seconds("KEYWARDEN_SEND_TIMEOUT", default: 60, minimum: 1))
        )
        return settings
    }

    static let pricesVariable = "KEYWARDEN_PRICES"

    /// `KEYWARDEN_PRICES`: the price table, as the path of a JSON file or the JSON itself (text starting with `{` or `[`);
    /// every provider it names must be one of the catalog's. Unset: no prices (`KEYWARDEN_CREDITS` prices every call).
    /// `KEYWARDEN_PUBLIC_URL`: an http(s) URL with a host, no query or fragment; its trailing slashes dropped.
    static func publicURL(_ text: String?) throws -> String? {
        guard var text, !text.isEmpty else { return nil }
        while text.hasSuffix("/") { text.removeLast() }
        guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host?.isEmpty == false,
              url.query == nil, url.fragment == nil, url.user == nil, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw ConfigurationError(variable: "KEYWARDEN_PUBLIC_URL", problem: "must be an http(s) URL such as https://ai.example.com, got '\(text)'")
        }
        return text
    }

    static func prices(environment: [String: String]) throws -> PriceTable {
        guard let value = environment[pricesVariable], !value.trimmingSpacesAndTabs.isEmpty else { return .empty }
        let text = value.trimmingSpacesAndTabs
        let data: Data
        if text.hasPrefix("{") || text.hasPrefix("[") {
            data = Data(text.utf8)
        } else {
            do { data = try Data(contentsOf: URL(fileURLWithPath: text)) } catch {
                throw ConfigurationError(variable: pricesVariable, problem: "names a file that cannot be read ('\(text)'); give a JSON file's path or the JSON itself")
            }
        }
        let table: PriceTable
        do { table = try PriceTable(parsing: data) } catch {
            throw ConfigurationError(variable: pricesVariable, problem: error.message)
        }
        let catalog = try catalog(environment: environment)
        for (index, price) in table.prices.enumerated() {
            if let provider = price.provider, !catalog.contains(provider) {
                throw ConfigurationError(variable: pricesVariable, problem: "prices[\(index)].provider names no provider of the catalog ('\(provider)')")
            }
        }
        return table
    }

    static let sharedKeyEndpointsPrefix = "KEYWARDEN_SHARED_KEY_ENDPOINTS_"

    /// `KEYWARDEN_SHARED_KEY_ENDPOINTS_<ID>`: endpoints the operator allows the platform's keys for, beyond the catalog's
    /// inference endpoints (`POST /v1/files,GET /v1/files/*`, or `*` for every endpoint).
    /// A number of credits (`100`, `2.5`) as thousandths of a credit; `nil` for none.
    static func budgetCredits(_ text: String?) throws -> Int? {
        guard let text, !text.isEmpty else { return nil }
        guard let credits = UntrustedNumber.decimal(text), credits >= 0,
              let milli = UntrustedNumber.integer(credits * 1000), milli <= BudgetLimits.maximumMilliCredits else {
            throw ConfigurationError(variable: "KEYWARDEN_DEFAULT_BUDGET_CREDITS", problem: "is not a number of credits from 0 to \(BudgetLimits.maximumMilliCredits / 1000)")
        }
        return milli
    }

    static func sharedKeyEndpoints(environment: [String: String]) throws -> [String: [EndpointRule]] {
        let catalog = try catalog(environment: environment)
        var byVariable: [String: String] = [:]
        for provider in catalog.providers {
            byVariable[sharedKeyEndpointsPrefix + provider.id.uppercased().replacingOccurrences(of: "-", with: "_")] = provider.id
        }
        var result: [String: [EndpointRule]] = [:]
        for (name, value) in environment where name.hasPrefix(sharedKeyEndpointsPrefix) && !value.isEmpty {
            guard let provider = byVariable[name] else { throw ConfigurationError(variable: name, problem: "names no provider of the catalog") }
            result[provider] = try value.split(separator: ",").map { text in
                let trimmed = text.trimmingSpacesAndTabs
                guard let rule = EndpointRule(trimmed) else {
                    throw ConfigurationError(variable: name, problem: "'\(trimmed)' is not 'METHOD /path' (with * inside a segment) or '*'")
                }
                return rule
            }
        }
        return result
    }

    /// Everything the store needs.
    public static func store(dataOption: String?, databaseOption: String? = nil, environment: [String: String]) throws -> StoreConfiguration {
        let directory = dataDirectory(option: dataOption, environment: environment)
        let postgresURL = databaseOption ?? environment["KEYWARDEN_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
        if let postgresURL {
            do { _ = try PostgresLocation(postgresURL) } catch {
                throw ConfigurationError(variable: "KEYWARDEN_DATABASE_URL", problem: "must be postgres://user:password@host:port/database (sslmode disable, prefer, require, verify-ca or verify-full)")
            }
        }
        let allowPrivate = ["1", "true", "yes"].contains((environment["KEYWARDEN_ALLOW_PRIVATE_TARGETS"] ?? "").lowercased())
        let catalog = try catalog(environment: environment)
        var managed: ResolutionSnapshot.ManagedDefault?
        switch (environment["KEYWARDEN_MANAGED_PROVIDER"].flatMap { $0.isEmpty ? nil : $0 }, environment["KEYWARDEN_MANAGED_MODEL"].flatMap { $0.isEmpty ? nil : $0 }) {
        case (nil, nil):
            break
        case (let provider?, let model?):
            guard catalog.contains(provider) else {
                throw ConfigurationError(variable: "KEYWARDEN_MANAGED_PROVIDER", problem: "names no provider of the catalog ('\(provider)')")
            }
            managed = .init(providerID: provider, model: model)
        default:
            throw ConfigurationError(variable: "KEYWARDEN_MANAGED_PROVIDER", problem: "and KEYWARDEN_MANAGED_MODEL must be set together")
        }
        var configuration = StoreConfiguration(
            dataDirectory: directory,
            keyringSource: KeyringSource.resolve(environment: environment, dataDirectory: directory),
            catalog: catalog,
            allowPrivateTargets: allowPrivate,
            managedDefault: managed,
            targetCheck: EgressGuard(allowsPrivateTargets: allowPrivate),
            postgresURL: postgresURL
        )
        if let text = environment["KEYWARDEN_OWNERS_MINT_GATEWAY_TOKENS"], !text.isEmpty {
            switch text.lowercased() {
            case "true", "1", "yes", "on": configuration.ownersMintGatewayTokens = true
            case "false", "0", "no", "off": configuration.ownersMintGatewayTokens = false
            default: throw ConfigurationError(variable: "KEYWARDEN_OWNERS_MINT_GATEWAY_TOKENS", problem: "must be true or false, got '\(text)'")
            }
        }
        if let text = environment["KEYWARDEN_PLATFORM_FALLBACK"], !text.isEmpty {
            guard let fallback = PlatformFallback(rawValue: text) else {
                throw ConfigurationError(variable: "KEYWARDEN_PLATFORM_FALLBACK", problem: "must be never, on_failure or on_failure_or_budget, got '\(text)'")
            }
            configuration.platformFallback = fallback
        }
        if let text = environment["KEYWARDEN_RESOLUTION_CACHE_WORKSPACES"], !text.isEmpty {
            guard let number = UntrustedNumber.integer(text), (1...10_000_000).contains(number) else {
                throw ConfigurationError(variable: "KEYWARDEN_RESOLUTION_CACHE_WORKSPACES", problem: "must be a whole number from 1 to 10000000, got '\(text)'")
            }
            configuration.resolutionCacheWorkspaces = number
        }
        if let timeout = try storeSeconds("KEYWARDEN_DATABASE_TIMEOUT", range: 1...300, environment: environment) {
            configuration.databaseTimeouts = DatabaseTimeouts(operation: timeout)
        }
        if let bound = try storeSeconds("KEYWARDEN_STALE_AFTER", range: 1...3600, environment: environment) {
            configuration.staleAfter = bound
        }
        if let dead = try storeSeconds("KEYWARDEN_INSTANCE_DEAD_AFTER", range: 5...86_400, environment: environment) {
            configuration.instanceDeadAfter = dead
        }
        if let held = try storeSeconds("KEYWARDEN_WORKSPACE_KEY_CACHE_SECONDS", range: 1...86_400, environment: environment) {
            configuration.scopeKeyCacheTimeToLive = held
        }
        do {
            configuration.masterKeyDevice = try MasterKeyDevice.fromEnvironment(environment)
            configuration.customerKeys = try CustomerKeyConfiguration.fromEnvironment(environment)
        } catch PKCS11Error.configuration(let setting, let problem) {
            throw ConfigurationError(variable: setting, problem: problem)
        } catch KMSError.configuration(let setting, let problem) {
            throw ConfigurationError(variable: setting, problem: problem)
        }
        return configuration
    }

    /// A number of seconds within `range` from a variable, through the checked parser; `nil` when unset.
    static func storeSeconds(_ name: String, range: ClosedRange<Double>, environment: [String: String]) throws -> Duration? {
        guard let text = environment[name], !text.isEmpty else { return nil }
        guard let number = UntrustedNumber.decimal(text), range.contains(number), let duration = UntrustedNumber.duration(seconds: number) else {
            throw ConfigurationError(variable: name, problem: "must be a number of seconds from \(Int(range.lowerBound)) to \(Int(range.upperBound)), got '\(text)'")
        }
        return duration
    }
}
