import KeywardenCore

/// How the gateway forwards, fails over and meters.
public struct GatewaySettings: Sendable {
    /// The most keys one call tries (the first included).
    public var maxAttempts: Int
    /// How long a vendor may take to send its response head; past it the next key is tried.
    public var firstByteTimeout: Duration
    /// How long a key rests after a 429 without `Retry-After`.
    public var defaultCooldown: Duration
    /// How long a key rests after a 401 or 403 while the health check looks at it.
    public var rejectedCooldown: Duration
    /// Request bodies up to this size are kept in memory so another key can be tried; larger ones
    /// stream straight through to the first key, without failover.
    public var replayLimit: Int
    /// Credits per successful call when no price entry matches (`KEYWARDEN_CREDITS`).
    public var credits: CreditPolicy
    /// Credits by model, tokens and characters (`KEYWARDEN_PRICES`); a call no entry matches costs its `credits` figure.
    public var prices: PriceTable
    /// How often buffered usage rows are written.
    public var flushInterval: Duration
    /// The longest rest a vendor's `Retry-After` can impose on a key (a longer one is clamped).
    public var maximumCooldown: Duration
    /// Endpoints the operator allows shared keys for beyond the catalog's, by provider (`KEYWARDEN_SHARED_KEY_ENDPOINTS_<ID>`).
    public var sharedKeyEndpoints: [String: [EndpointRule]]
    /// The platform budget per month, in thousandths of a credit, of a workspace without one of its own
    /// (`KEYWARDEN_DEFAULT_BUDGET_CREDITS`); `nil`: no limit.
    public var defaultPlatformBudget: Int?
    /// Where clients reach Keywarden (`KEYWARDEN_PUBLIC_URL`, e.g. `https://ai.example.com`), for URLs handed back to
    /// them; `nil`: the request's own `Host`, over plain HTTP.
    public var publicURL: String?

    public init(maxAttempts: Int = 3, firstByteTimeout: Duration = .seconds(300), defaultCooldown: Duration = .seconds(30),
                rejectedCooldown: Duration = .seconds(60), replayLimit: Int = 4 * 1024 * 1024, credits: CreditPolicy = .standard,
                flushInterval: Duration = .milliseconds(500), maximumCooldown: Duration = .seconds(3600),
                sharedKeyEndpoints: [String: [EndpointRule]] = [:], defaultPlatformBudget: Int? = nil, prices: PriceTable = .empty,
                publicURL: String? = nil) {
        self.prices = prices
        self.publicURL = publicURL
        self.defaultPlatformBudget = defaultPlatformBudget
        self.maximumCooldown = maximumCooldown
        self.sharedKeyEndpoints = sharedKeyEndpoints
        self.maxAttempts = maxAttempts
        self.firstByteTimeout = firstByteTimeout
        self.defaultCooldown = defaultCooldown
        self.rejectedCooldown = rejectedCooldown
        self.replayLimit = replayLimit
        self.credits = credits
        self.flushInterval = flushInterval
    }
}
