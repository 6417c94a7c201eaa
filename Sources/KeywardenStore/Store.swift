import Foundation
import KeywardenCore
import KeywardenVault
import Logging
import SQLKit

/// Where the store lives and what it is opened with.
public struct StoreConfiguration: Sendable {
    public var dataDirectory: URL
    public var keyringSource: KeyringSource
    public var catalog: ProviderCatalog
    /// Whether workspaces may point base URLs and webhooks at loopback or private addresses
    /// (`KEYWARDEN_ALLOW_PRIVATE_TARGETS`; off by default, see ``NetworkTargetPolicy``).
    public var allowPrivateTargets: Bool
    /// The platform's built-in model for workspaces whose own provider is off or failing.
    public var managedDefault: ResolutionSnapshot.ManagedDefault?
    /// When the platform's keys stand in for a workspace's own, where neither the workspace nor its plan says
    /// (`KEYWARDEN_PLATFORM_FALLBACK`).
    public var platformFallback: PlatformFallback = .platformDefault
    /// Whether a workspace's owner may mint `gateway.use` service tokens for it (`KEYWARDEN_OWNERS_MINT_GATEWAY_TOKENS`).
    public var ownersMintGatewayTokens = true
    /// How many workspaces' resolution parts an instance keeps in memory (`KEYWARDEN_RESOLUTION_CACHE_WORKSPACES`);
    /// the others are read on their first call.
    public var resolutionCacheWorkspaces: Int = 20_000
    /// A PostgreSQL database shared by several instances (`KEYWARDEN_DATABASE_URL`); `nil`: SQLite in the data directory.
    public var postgresURL: String?
    /// How long database work may take (`KEYWARDEN_DATABASE_TIMEOUT`).
    public var databaseTimeouts = DatabaseTimeouts()
    /// How long an instance serves keys and tokens it holds without confirming they are current (`KEYWARDEN_STALE_AFTER`):
    /// a change made elsewhere is used here at most this long after it committed, even when this instance cannot reach
    /// the database.
    public var staleAfter: Duration = .seconds(10)
    /// How long an instance unseen (no heartbeat) is taken for dead, so its budget holds are given back
    /// (`KEYWARDEN_INSTANCE_DEAD_AFTER`; PostgreSQL).
    public var instanceDeadAfter: Duration = .seconds(60)
    /// The device holding the master key (`KEYWARDEN_MASTER_KEY_PKCS11_*` or `KEYWARDEN_MASTER_KEY_KMS_*`); `nil`: the keyring.
    public var masterKeyDevice: MasterKeyDevice?
    /// How workspaces' own KMS keys are reached (`KEYWARDEN_CUSTOMER_KEYS=aws-kms`); `nil`: workspaces cannot bring one.
    public var customerKeys: CustomerKeyConfiguration?
    /// How long an unwrapped workspace key is held in memory (`KEYWARDEN_WORKSPACE_KEY_CACHE_SECONDS`).
    public var scopeKeyCacheTimeToLive: Duration = Vault.defaultCacheTimeToLive
    /// How a URL a workspace saves is judged before it is stored (the server injects one that resolves names;
    /// the connect-time check in KeywardenProviders is what enforces the rule).
    public var targetCheck: any NetworkTargetCheck

    public init(dataDirectory: URL, keyringSource: KeyringSource, catalog: ProviderCatalog, allowPrivateTargets: Bool = false,
                managedDefault: ResolutionSnapshot.ManagedDefault? = nil, targetCheck: any NetworkTargetCheck = LiteralNetworkTargetCheck(),
                postgresURL: String? = nil) {
        self.postgresURL = postgresURL
        self.dataDirectory = dataDirectory
        self.keyringSource = keyringSource
        self.catalog = catalog
        self.allowPrivateTargets = allowPrivateTargets
        self.managedDefault = managedDefault
        self.targetCheck = targetCheck
    }

    /// Refuses a URL a workspace gave that points inside the network (in any spelling, or by a name that
    /// resolves there), unless allowed.
    package func ensureAllowedTarget(_ url: String, field: String) async throws {
        guard !allowPrivateTargets, let refusal = await targetCheck.refusal(forURL: url) else { return }
        throw KeywardenError.invalid(
            field, "\(field) points at \(refusal.explanation); a workspace may not make Keywarden call inside its network.", code: "private_target"
        )
    }

    /// The SQLite database file in the data directory.
    public var databaseURL: URL { dataDirectory.appendingPathComponent("keywarden.sqlite") }

    /// Opens the configured database: PostgreSQL when a URL is set, else the SQLite file.
    func openEngine(logger: Logger) async throws -> any DatabaseEngine {
        if let postgresURL { return try await PostgresEngine(url: postgresURL, timeouts: databaseTimeouts, logger: logger) }
        return try await SQLiteEngine(path: databaseURL.path, timeouts: databaseTimeouts, logger: logger)
    }
}

/// What opening the store did.
public struct OpenReport: Sendable {
    /// Whether this run created the database (a first run).
    public var createdDatabase = false
    /// Whether this run generated the keyring file.
    public var createdKeyring = false
    /// The first platform-admin token, issued on a first run only; shown once, stored only as a digest.
    public var adminToken: AccessToken?
    public var seed = SeedReport()
    /// Stored secrets that no key of the keyring wrapped (a wrong master key): they read as unreadable.
    public var secretsUnderUnknownKeys = 0
}

/// Keywarden's state: the database, the vault over it, and the repositories that use both.
public final class Store: Sendable {
    public let configuration: StoreConfiguration
    public let engine: any DatabaseEngine
    public let vault: Vault
    /// `nil` when the fingerprint key does not open (wrong master key): fingerprints are then not recorded.
    public let fingerprinter: SecretFingerprinter?
    public let logger: Logger

    public let providers = ProviderStateRepository()
    public let tokens = TokenRepository()
    public let workspaces = WorkspaceRepository()
    public let plans = PlanRepository()
    public let audit = AuditLog()
    public let secrets = SealedSecretRepository()
    public var credentials: CredentialRepository { CredentialRepository(vault: vault, fingerprinter: fingerprinter) }
    public var catalog: ProviderCatalog { configuration.catalog }
    /// Events and their deliveries.
    public let events = EventRepository()
    public let bindings = BindingRepository()
    public let routes = RouteRepository()
    public let webhooks = WebhookRepository()
    public let members = MemberRepository()
    public let budgets = BudgetRepository()
    public let rateWindows = RateWindowRepository()
    public let settings = SettingsRepository()
    public let usageRows = UsageRepository()

    /// The vault context of the key that makes secret fingerprints.
    static let fingerprintKeyContext = SecretContext(scope: .platform, ownerID: "keywarden", field: "fingerprint_key")

    private init(configuration: StoreConfiguration, engine: any DatabaseEngine, vault: Vault, fingerprinter: SecretFingerprinter?, logger: Logger) {
        self.configuration = configuration
        self.engine = engine
        self.vault = vault
        self.fingerprinter = fingerprinter
        self.logger = logger
    }

    /// Opens the store: data directory, keyring, database, migrations, fingerprint key. (Seeding the catalog and
    /// issuing the first admin token are the application's, which audits them: `AppServices.open`.)
    ///
    /// With `createIfMissing`, a missing data directory, keyring and database are created (a first run).
    /// Without it, an uninitialised directory is an error.
    public static func open(_ configuration: StoreConfiguration, createIfMissing: Bool, logger: Logger) async throws -> (Store, OpenReport) {
        var report = OpenReport()
        let directory = configuration.dataDirectory
        let isPostgres = configuration.postgresURL != nil
        let fileExists = FileManager.default.fileExists(atPath: configuration.databaseURL.path)
        guard createIfMissing || fileExists || isPostgres else {
            throw StoreError.notInitialized(path: directory.path)
        }
        let source = configuration.keyringSource
        let device = configuration.masterKeyDevice
        // The data directory is needed for the SQLite file or a keyring file kept in it; with PostgreSQL and a master key
        // from elsewhere, nothing is written there (it is not even created).
        if !isPostgres || (device == nil && source.isGenerated) {
            try prepareDataDirectory(directory)
        }

        let vault: Vault
        // Made once nothing before the vault can fail (its HTTP client is shut down by the vault's close).
        func customerKeys() -> CustomerKeys? { configuration.customerKeys.map { CustomerKeys(configuration: $0, logger: logger) } }
        if let device {
            // The master key is in the device: no keyring is made. One that exists (from before the device) is kept
            // to open data keys sealed under it, until a rotation moved them to workspace keys.
            let legacy = source.file.map { $0.exists } == false ? nil : try? LocalKeyring(source: source)
            let custodian = try await device.open(logger: logger)
            vault = Vault(custodian: custodian, legacyKeyring: legacy, customerKeys: customerKeys(), cacheTimeToLive: configuration.scopeKeyCacheTimeToLive)
            do {
                try await vault.checkCustody()
            } catch {
                await vault.close()
                throw error
            }
            logger.info("master key in a device", metadata: ["custodian": "\(custodian)", "master_key": "\(custodian.activeKeyID)"])
        } else {
            // The keyring comes before the database is written to, and is never silently replaced.
            if source.isGenerated, let file = source.file, !file.exists {
                if fileExists || isPostgres {
                    let sealed = try await countSealedSecrets(configuration, logger: logger)
                    if sealed > 0 { throw StoreError.keyringMissing(path: file.url.path, sealedSecrets: sealed) }
                }
                _ = try file.create()
                report.createdKeyring = true
                logger.info("generated a new keyring", metadata: ["path": "\(file.url.path)"])
            }
            let keyring = try LocalKeyring(source: source)
            vault = Vault(custodian: keyring, customerKeys: customerKeys(), cacheTimeToLive: configuration.scopeKeyCacheTimeToLive)
        }

        let engine = try await configuration.openEngine(logger: logger)
        do {
            if !createIfMissing {
                // No migrations table is "not initialised"; a database that cannot answer now (busy past its deadline,
                // unreachable) says so, not that it was never made.
                let applied: Int
                do {
                    applied = try await Migrator().appliedVersion(engine)
                } catch let error as StoreError {
                    switch error {
                    case .unavailable, .closed, .databaseUnavailable, .storageFull: throw error
                    default: applied = 0
                    }
                } catch {
                    applied = 0
                }
                if applied == 0 { throw StoreError.notInitialized(path: isPostgres ? "the database" : directory.path) }
            }
            let applied = try await Migrator().migrate(engine, logger: logger)
            report.createdDatabase = applied.contains(1)

            let fingerprinter = try await loadFingerprinter(engine: engine, vault: vault, logger: logger)
            let store = Store(configuration: configuration, engine: engine, vault: vault, fingerprinter: fingerprinter, logger: logger)

            let unopened = try await store.countKeysNotOpenedHere()
            report.secretsUnderUnknownKeys = unopened.secretsUnderUnknownKeys
            if vault.customerKeys == nil {
                let underCustomerKeys = unopened.customerWrappedKeys
                if underCustomerKeys > 0 {
                    logger.warning(
                        "workspaces' keys are wrapped by their own KMS keys, and this instance is not configured to reach them: their secrets do not open here; set KEYWARDEN_CUSTOMER_KEYS=aws-kms as on the other instances",
                        metadata: ["workspace_keys": "\(underCustomerKeys)"]
                    )
                }
            }
            if report.secretsUnderUnknownKeys > 0 {
                logger.warning(
                    "stored secrets are wrapped by master keys this process does not have; they will show as unreadable until the right master key is configured",
                    metadata: ["secrets": "\(report.secretsUnderUnknownKeys)", "master_key": "\(vault.custodian)"]
                )
            }
            return (store, report)
        } catch {
            await engine.close()
            await vault.close()
            throw error
        }
    }

    /// Secrets no master key of this process opens (format-1 data keys under master keys the keyring lacks, and data
    /// keys under scope keys wrapped by master keys the custodian lacks), and the workspace keys wrapped by customers'
    /// own KMS keys (which a process opens only when configured to reach them): one read of the scope keys for both.
    func countKeysNotOpenedHere() async throws -> (secretsUnderUnknownKeys: Int, customerWrappedKeys: Int) {
        let keyring = Set(vault.localKeyring?.keyring.keys.map(\.id) ?? [])
        // A device's keys, and the keyring's (kept beside a device, it opens the keys it wrapped before).
        let known = Set([vault.custodian.activeKeyID] + vault.custodian.decryptOnlyKeyIDs).union(keyring)
        return try await engine.read { db in
            let scopeKeys = try await db.select().columns("id", "master_key_id").from(ScopeKeyRepository.table).all()
            var lost = Set<String>()
            var customerWrapped = 0
            // A key under a workspace's own KMS key opens or not by its customer's decision: not counted as lost.
            for row in scopeKeys {
                let wrappingKey = try row.decode(column: "master_key_id", as: String.self)
                if wrappingKey.hasPrefix(CustomerKeys.prefix) {
                    customerWrapped += 1
                    continue
                }
                guard !known.contains(wrappingKey) else { continue }
                lost.insert(try row.decode(column: "id", as: String.self))
            }
            let secrets = try await self.secrets.countByWrappingKey(on: db).filter { id, _ in
                id.hasPrefix("wk-") ? lost.contains(id) : !keyring.contains(id)
            }.values.reduce(0, +)
            return (secrets, customerWrapped)
        }
    }

    /// Where the vault finds scope keys outside a transaction (each read on a pooled connection).
    public var scopeKeys: ScopeKeyRepository.Directory { ScopeKeyRepository().directory(engine: engine) }

    /// Whether the database answers (for `/readyz`).
    public func ping() async -> Bool {
        await engine.ping()
    }

    /// Closes the database and the master key's device.
    public func close() async {
        await engine.close()
        await vault.close()
    }

    // MARK: Opening steps

    static func prepareDataDirectory(_ url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw StoreError.dataDirectoryNotWritable(path: url.path, reason: "cannot create it")
        }
        let probe = url.appendingPathComponent(".keywarden-write-check-\(getpid())")
        guard FileManager.default.createFile(atPath: probe.path, contents: Data()) else {
            throw StoreError.dataDirectoryNotWritable(path: url.path, reason: "cannot create a file in it")
        }
        try? FileManager.default.removeItem(at: probe)
    }

    /// Sealed secrets already in the database (0 when it has no schema yet), to refuse making a new keyring for them.
    static func countSealedSecrets(_ configuration: StoreConfiguration, logger: Logger) async throws -> Int {
        let engine = try await configuration.openEngine(logger: logger)
        // A database without the table (a first run) has nothing sealed; any other failure is an error, not a zero.
        let count: Int
        do {
            count = try await engine.tableExists(SealedSecretRepository.table) ? try await engine.read { db in
                let row = try await db.select().column(SQLFunction("count", args: SQLLiteral.all), as: "n")
                    .from(SealedSecretRepository.table).first()
                return try row?.decode(column: "n", as: Int.self) ?? 0
            } : 0
        } catch {
            await engine.close()
            throw error
        }
        await engine.close()
        return count
    }

    static func loadFingerprinter(engine: any DatabaseEngine, vault: Vault, logger: Logger) async throws -> SecretFingerprinter? {
        let context = fingerprintKeyContext
        let repository = SealedSecretRepository()
        let key: Secret? = try await engine.transaction { db in
            if let sealed = try await repository.get(context, on: db) {
                do {
                    return try await vault.open(sealed, in: context, on: db)
                } catch VaultError.unreadable {
                    return nil
                }
            }
            let key = SecretFingerprinter.generateKey()
            try await repository.put(try await vault.seal(key, in: context, on: db), for: context, on: db)
            return key
        }
        guard let key else {
            logger.warning("the fingerprint key does not open with this keyring; new secrets get no fingerprint until the right master key is configured")
            return nil
        }
        return SecretFingerprinter(key: key)
    }
}
