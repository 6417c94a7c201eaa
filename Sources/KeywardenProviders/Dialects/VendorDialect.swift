import KeywardenCore

/// One vendor wire shape: how its answers report usage, how its errors name a throttle, which request members limit
/// its output. A catalog entry names its dialect (``DialectID``); the gateway and the verifier ask the dialect, never
/// the provider's id.
///
/// Readers that judge a vendor's answer for money or safety (usage, throttles, output limits) read with every dialect
/// at once (``Dialects/all``): a provider with an OpenAI-compatible endpoint answers in two shapes, and a hostile
/// answer in a shape not its own must not pass unread.
protocol VendorDialect: Sendable {
    /// The dialect's id in the catalog.
    var id: DialectID { get }
    /// The members of an answer (or stream event) whose values ``readUsage(_:into:)`` reads.
    var answerMembers: [String] { get }
    /// Reads the usage one answer (or one event's data) reports.
    func readUsage(_ answer: JSONObject, into tally: inout UsageTally)
    /// The request members that cap the output tokens per choice: at the top level, or inside ``generationConfigMembers``
    /// when the dialect has such an object.
    var outputLimitMembers: [String] { get }
    /// The request members that ask for several choices.
    var choiceMembers: [String] { get }
    /// An object of the request that holds generation settings (Gemini's `generationConfig`), under each spelling.
    var generationConfigMembers: [String] { get }
    /// Error codes meaning the account's quota or credit is spent.
    var quotaCodes: Set<String> { get }
    /// Error codes meaning a passing rate limit.
    var rateLimitCodes: Set<String> { get }
    /// Error codes meaning the vendor is overloaded (nothing is wrong with the key).
    var overloadCodes: Set<String> { get }
}

extension VendorDialect {
    var answerMembers: [String] { [] }
    func readUsage(_ answer: JSONObject, into tally: inout UsageTally) {}
    var outputLimitMembers: [String] { [] }
    var choiceMembers: [String] { [] }
    var generationConfigMembers: [String] { [] }
    var quotaCodes: Set<String> { [] }
    var rateLimitCodes: Set<String> { [] }
    var overloadCodes: Set<String> { [] }
}

/// The dialects Keywarden knows, one value each.
enum Dialects {
    static let openAI = OpenAIDialect()
    static let anthropic = AnthropicDialect()
    static let gemini = GeminiDialect()
    static let elevenLabs = ElevenLabsDialect()
    static let googleCloud = GoogleCloudDialect()
    static let azure = AzureDialect()

    /// Every dialect, in the order their readings are applied.
    static let all: [any VendorDialect] = [openAI, anthropic, gemini, elevenLabs, googleCloud, azure]

    /// The dialect of this id (`nil` for ``DialectID/generic``, which has nothing of its own).
    static func dialect(_ id: DialectID) -> (any VendorDialect)? {
        all.first { $0.id == id }
    }

    /// The names every dialect's usage reading needs from an answer.
    static let answerMembers: [String] = unique(all.flatMap(\.answerMembers))
    /// Every dialect's throttle codes (lowercased).
    static let quotaCodes: Set<String> = Set(all.flatMap(\.quotaCodes).map { $0.lowercased() })
    static let rateLimitCodes: Set<String> = Set(all.flatMap(\.rateLimitCodes).map { $0.lowercased() })
    static let overloadCodes: Set<String> = Set(all.flatMap(\.overloadCodes).map { $0.lowercased() })

    private static func unique(_ names: [String]) -> [String] {
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }
}

/// What usage readings have found so far: each figure keeps the largest value seen (streams repeat running totals), and
/// a count past ``maximumCount`` or below zero is a lie and ignored.
struct UsageTally: Sendable, Equatable {
    var counts = UsageCounts()
    /// The model the vendor says answered, when it says one.
    var model: String?

    /// The largest count a vendor's answer is believed for (a trillion tokens).
    static let maximumCount = 1_000_000_000_000

    mutating func raise(_ field: WritableKeyPath<UsageCounts, Int?>, _ value: Int?) {
        guard let value, (0...Self.maximumCount).contains(value) else { return }
        counts[keyPath: field] = max(counts[keyPath: field] ?? 0, value)
    }

    /// Sets the model the answer names (an empty name says nothing).
    mutating func name(_ model: String?) {
        if let model, !model.isEmpty { self.model = model }
    }
}
