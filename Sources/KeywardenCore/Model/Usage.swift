import Foundation

/// What a vendor's answer says a call consumed.
public struct UsageCounts: Sendable, Equatable {
    public var inputTokens: Int?
    public var outputTokens: Int?
    /// Characters synthesised (text-to-speech vendors bill by character).
    public var characters: Int?

    public init(inputTokens: Int? = nil, outputTokens: Int? = nil, characters: Int? = nil) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.characters = characters
    }
}

/// One gateway call, as metered: who paid, for what, and how it went.
public struct UsageRecord: Sendable, Equatable {
    /// The row's id, chosen when the call ends: a batch written twice (its first write's answer lost) is written once.
    public var id: String
    public var at: Date
    public var workspaceID: String?
    public var providerID: String
    public var model: String?
    /// The key that answered (or the last one tried); `nil` when no key could be tried.
    public var credentialID: String?
    public var source: KeySource?
    public var modality: Modality
    public var consumer: String?
    /// The status the client saw.
    public var status: Int
    public var latencyMilliseconds: Int
    public var counts: UsageCounts
    /// Thousandths of a credit (integers add up exactly).
    public var milliCredits: Int
    /// How many keys were tried.
    public var attempts: Int
    /// The budget hold (shared, on PostgreSQL) this call's cost settles when its row is written; `nil` when none.
    public var holdID: String?
    /// The workspace's own keys whose secrets this call opened, in order (failed-over ones too): each is a use the
    /// workspace's custody log counts. Not stored with the row; `nil` (not tracked): the answering key alone, if the
    /// workspace's.
    public var ownKeysUsed: [String]?

    public init(id: String = Identifier.make("use"), at: Date, workspaceID: String?, providerID: String, model: String?, credentialID: String?,
                source: KeySource?, modality: Modality, consumer: String?, status: Int, latencyMilliseconds: Int, counts: UsageCounts,
                milliCredits: Int, attempts: Int, holdID: String? = nil) {
        self.id = id
        self.holdID = holdID
        self.at = at
        self.workspaceID = workspaceID
        self.providerID = providerID
        self.model = model
        self.credentialID = credentialID
        self.source = source
        self.modality = modality
        self.consumer = consumer
        self.status = status
        self.latencyMilliseconds = latencyMilliseconds
        self.counts = counts
        self.milliCredits = milliCredits
        self.attempts = attempts
    }
}

/// How many credits a successful call costs, by provider and source (seed 004 charges one credit per
/// action even when the workspace brings its own key).
///
/// Written as `provider:source=credits` entries separated by commas, `*` matching any provider or
/// source, the most specific entry winning: `*=1,openai:managed=2,*:byok=0.5`.
public struct CreditPolicy: Sendable, Equatable {
    /// (provider, source, thousandths of a credit); `nil` is the wildcard.
    public let rules: [(provider: String?, source: KeySource?, milliCredits: Int)]

    /// One credit per successful call, whoever pays.
    public static let standard = CreditPolicy(rules: [(nil, nil, 1000)])

    public init(rules: [(provider: String?, source: KeySource?, milliCredits: Int)]) {
        self.rules = rules
    }

    /// Parses the written form; an error names the entry that does not parse.
    public init(parsing text: String) throws(KeywardenError) {
        var rules: [(provider: String?, source: KeySource?, milliCredits: Int)] = []
        for entry in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            let target = parts[0].split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, let credits = UntrustedNumber.decimal(parts[1]), credits >= 0, credits < 1_000_000 else {
                throw KeywardenError.invalid("credits", "Credit rule '\(entry)' is not provider[:source]=number.")
            }
            var source: KeySource?
            if target.count == 2, target[1] != "*" {
                guard let parsed = KeySource(rawValue: target[1]) else {
                    throw KeywardenError.invalid("credits", "Credit rule '\(entry)': the source is byok, platform or managed.")
                }
                source = parsed
            }
            rules.append((target[0] == "*" ? nil : target[0], source, UntrustedNumber.integer(credits * 1000) ?? 0))
        }
        self.rules = rules
    }

    public static func == (a: CreditPolicy, b: CreditPolicy) -> Bool {
        a.rules.count == b.rules.count && zip(a.rules, b.rules).allSatisfy { $0.provider == $1.provider && $0.source == $1.source && $0.milliCredits == $1.milliCredits }
    }

    /// The thousandths of a credit a successful call of `provider` paid by `source` costs (0 when no rule matches).
    public func milliCredits(provider: String, source: KeySource) -> Int {
        var best: (score: Int, value: Int)?
        for rule in rules {
            if let p = rule.provider, p != provider { continue }
            if let s = rule.source, s != source { continue }
            let score = (rule.provider == nil ? 0 : 2) + (rule.source == nil ? 0 : 1)
            if score >= (best?.score ?? 0) { best = (score, rule.milliCredits) }
        }
        return best?.value ?? 0
    }
}
