import Foundation

/// What a successful call costs, by model: credits per call, per million input and output tokens and per thousand
/// characters (text-to-speech), optionally per source (`byok`, `platform`, `managed`).
///
/// **Which entry prices a call.** Of the entries that match (provider, model, source), the most specific wins, compared
/// in this order: an exact provider beats `*`; then an exact model beats any prefix, and a longer prefix (`gpt-4o-mini*`)
/// beats a shorter one (`gpt-4o*`), which beats `*`; then an entry with a source beats one without. Two entries equal in
/// all three are refused when the table is read. A call that no entry matches costs its ``CreditPolicy`` figure
/// (`KEYWARDEN_CREDITS`), so a deployment without prices is priced as before.
///
/// **Arithmetic.** Rates are kept as whole millionths of a credit (a rate is read to six decimals, rounded to the
/// nearest). Each part (per call, input, output, characters) is computed exactly in 128 bits and rounded **up** to a
/// millionth of a credit, the parts are added, and the sum is rounded **up** to a thousandth of a credit (the ledger's
/// unit), so the platform never under-bills (by at most a thousandth of a credit and four millionths per call). A negative count is
/// read as 0; any count up to `Int.max` is priced without trapping, saturating, and a call never costs more than
/// ``BudgetLimits/maximumMilliCredits``.
///
/// **Estimates.** Before a call, the budget holds its estimate (see ``estimate(provider:model:source:request:fallback:)``),
/// settled with the metered cost when the call ends.
public struct PriceTable: Sendable, Equatable {
    /// Which models an entry covers.
    public enum ModelPattern: Sendable, Hashable, CustomStringConvertible {
        /// This model only.
        case exact(String)
        /// Models whose name starts with the text (written `gpt-4o*`); the empty prefix (`*`) is every model.
        case prefix(String)

        /// Every model (`*`).
        public static let any = ModelPattern.prefix("")

        /// `*`, `gpt-4o*` or `gpt-4o`; `nil` when a `*` stands anywhere but at the end, or the text is empty.
        public init?(_ text: String) {
            guard !text.isEmpty else { return nil }
            if text.hasSuffix("*") {
                let prefix = String(text.dropLast())
                guard !prefix.contains("*") else { return nil }
                self = .prefix(prefix)
            } else {
                guard !text.contains("*") else { return nil }
                self = .exact(text)
            }
        }

        /// Whether it covers `model` (a call whose model is unknown is covered by `*` only).
        public func matches(_ model: String?) -> Bool {
            switch self {
            case .exact(let name): return model == name
            case .prefix(let prefix): return prefix.isEmpty || (model?.hasPrefix(prefix) ?? false)
            }
        }

        /// Higher is more specific: exact above every prefix, a prefix by its length.
        var rank: Int {
            switch self {
            case .exact: return .max
            case .prefix(let prefix): return prefix.utf8.count
            }
        }

        public var description: String {
            switch self {
            case .exact(let name): return name
            case .prefix(let prefix): return prefix + "*"
            }
        }
    }

    /// One entry of the table; every rate in millionths of a credit.
    public struct Price: Sendable, Equatable {
        /// `nil`: every provider (`*`).
        public var provider: String?
        public var model: ModelPattern
        /// `nil`: whoever pays.
        public var source: KeySource?
        public var perCall: Int
        public var perMillionInputTokens: Int
        public var perMillionOutputTokens: Int
        public var perThousandCharacters: Int
        /// The most output tokens the model writes per choice (`max_output_tokens`): what an estimate assumes for a request
        /// that sets no limit, so the hold is an upper bound. `nil`: the table's ``PriceTable/defaultOutputTokens``.
        public var maxOutputTokens: Int?

        public init(provider: String?, model: ModelPattern = .any, source: KeySource? = nil, perCall: Int = 0,
                    perMillionInputTokens: Int = 0, perMillionOutputTokens: Int = 0, perThousandCharacters: Int = 0,
                    maxOutputTokens: Int? = nil) {
            self.provider = provider
            self.model = model
            self.source = source
            self.perCall = perCall
            self.perMillionInputTokens = perMillionInputTokens
            self.perMillionOutputTokens = perMillionOutputTokens
            self.perThousandCharacters = perThousandCharacters
            self.maxOutputTokens = maxOutputTokens.map { min(max(0, $0), PriceTable.maximumOutputTokens) }
        }

        /// Whether the entry charges for tokens (so an answer without token counts is estimated, not free).
        public var pricesTokens: Bool { perMillionInputTokens > 0 || perMillionOutputTokens > 0 }

        /// The cost of a call with `counts`, in thousandths of a credit (see ``PriceTable`` for the rounding).
        public func milliCredits(for counts: UsageCounts) -> Int {
            let micro = PriceTable.part(1, perCall, per: 1)
                .saturatingAdding(PriceTable.part(counts.inputTokens, perMillionInputTokens, per: 1_000_000))
                .saturatingAdding(PriceTable.part(counts.outputTokens, perMillionOutputTokens, per: 1_000_000))
                .saturatingAdding(PriceTable.part(counts.characters, perThousandCharacters, per: 1_000))
            return min(PriceTable.part(micro, 1, per: 1_000), BudgetLimits.maximumMilliCredits)
        }
    }

    /// What is known of a call before it is sent, to estimate its cost.
    public struct RequestSize: Sendable, Equatable {
        /// The request body's length in bytes.
        public var bodyBytes: Int
        /// The most output tokens the request allows (`max_tokens`, `max_completion_tokens`, …), all its choices
        /// together, when it says.
        public var maxOutputTokens: Int?
        /// The choices the request asks for (`n`, Gemini's `candidateCount`): each may write up to the limit.
        public var choices: Int
        /// The characters a text-to-speech request speaks.
        public var characters: Int?

        public init(bodyBytes: Int, maxOutputTokens: Int? = nil, choices: Int = 1, characters: Int? = nil) {
            self.bodyBytes = bodyBytes
            self.maxOutputTokens = maxOutputTokens
            self.choices = min(max(1, choices), PriceTable.maximumChoices)
            self.characters = characters
        }
    }

    /// The entries, in the order written.
    public let prices: [Price]
    /// The output tokens an estimate assumes when the request sets no limit.
    public let defaultOutputTokens: Int
    /// Entries by exact provider, then those for every provider: each list most specific first, so the first match wins.
    private let byProvider: [String: [Price]]
    private let anyProvider: [Price]

    /// No prices: every call costs its ``CreditPolicy`` figure.
    public static let empty = PriceTable(prices: [])
    /// Output tokens assumed by an estimate when the request sets no limit.
    public static let standardOutputTokens = 1_000
    /// The largest rate accepted, in credits.
    public static let maximumCredits = 1_000_000.0
    /// The largest default of output tokens accepted.
    public static let maximumOutputTokens = 100_000_000
    /// The most choices an estimate multiplies by (OpenAI allows `n` up to 128).
    public static let maximumChoices = 128

    /// Indexes `prices` (the most specific entry first within each provider); counts and rates below 0 are read as 0.
    public init(prices: [Price], defaultOutputTokens: Int = PriceTable.standardOutputTokens) {
        self.prices = prices
        self.defaultOutputTokens = min(max(0, defaultOutputTokens), Self.maximumOutputTokens)
        let ordered = prices.enumerated().sorted { a, b in
            let (x, y) = (a.element, b.element)
            if x.model.rank != y.model.rank { return x.model.rank > y.model.rank }
            if (x.source != nil) != (y.source != nil) { return x.source != nil }
            return a.offset < b.offset
        }.map(\.element)
        var byProvider: [String: [Price]] = [:]
        for price in ordered {
            if let provider = price.provider { byProvider[provider, default: []].append(price) }
        }
        self.byProvider = byProvider
        anyProvider = ordered.filter { $0.provider == nil }
    }

    public static func == (a: PriceTable, b: PriceTable) -> Bool {
        a.prices == b.prices && a.defaultOutputTokens == b.defaultOutputTokens
    }

    public var isEmpty: Bool { prices.isEmpty }

    /// The entry that prices a call (the most specific match), or `nil` when none matches.
    public func price(provider: String, model: String?, source: KeySource) -> Price? {
        if let list = byProvider[provider], let found = Self.first(in: list, model: model, source: source) { return found }
        return Self.first(in: anyProvider, model: model, source: source)
    }

    private static func first(in list: [Price], model: String?, source: KeySource) -> Price? {
        for price in list where (price.source == nil || price.source == source) && price.model.matches(model) { return price }
        return nil
    }

    /// What a successful call costs, in thousandths of a credit: the matching entry's price of the counts the vendor
    /// reported, or `fallback`'s per-call figure when no entry matches.
    ///
    /// - Parameters:
    ///   - unreported: the call's request, when its answer was expected to report usage: each count the entry prices
    ///     that the answer did not report (a stream without usage, a speech request Keywarden could not read) is
    ///     estimated from it as for the hold, so such a call is not free. `nil`: unreported counts cost nothing.
    ///     Evaluated only in that case.
    ///   - atLeastEstimate: each priced count is at least its estimate (a call the client left before its end, whose
    ///     final counts never came).
    public func milliCredits(provider: String, model: String?, source: KeySource, counts: UsageCounts,
                             unreported: @autoclosure () -> RequestSize? = nil, atLeastEstimate: Bool = false, fallback: CreditPolicy) -> Int {
        guard !prices.isEmpty, let price = price(provider: provider, model: model, source: source) else {
            return fallback.milliCredits(provider: provider, source: source)
        }
        var counts = counts
        let missing = (price.perMillionInputTokens > 0 && counts.inputTokens == nil) || (price.perMillionOutputTokens > 0 && counts.outputTokens == nil)
            || (price.perThousandCharacters > 0 && counts.characters == nil)
        if missing || atLeastEstimate, let unreported = unreported() {
            let estimated = estimatedCounts(unreported, price: price)
            func fill(_ field: WritableKeyPath<UsageCounts, Int?>) {
                guard let guess = estimated[keyPath: field] else { return }
                counts[keyPath: field] = atLeastEstimate ? max(counts[keyPath: field] ?? 0, guess) : (counts[keyPath: field] ?? guess)
            }
            fill(\.inputTokens)
            fill(\.outputTokens)
            fill(\.characters)
        }
        return price.milliCredits(for: counts)
    }

    /// The cost held in the budget before a call, in thousandths of a credit: the matching entry's price of
    /// an input of `bodyBytes / 4` tokens (rounded up; a body's JSON and markup count, so this errs high), an output of
    /// the request's own limit (`max_tokens` and the like) or else ``defaultOutputTokens``, and the characters a
    /// text-to-speech request speaks (else the body's length); `fallback`'s per-call figure when no entry matches
    /// (`request` is then not evaluated).
    public func estimate(provider: String, model: String?, source: KeySource, request: @autoclosure () -> RequestSize,
                         fallback: CreditPolicy) -> Int {
        guard !prices.isEmpty, let price = price(provider: provider, model: model, source: source) else {
            return fallback.milliCredits(provider: provider, source: source)
        }
        return price.milliCredits(for: estimatedCounts(request(), price: price))
    }

    /// The counts an estimate prices: input `bodyBytes / 4` tokens (rounded up); output the request's limit, or else
    /// the entry's `max_output_tokens` (or ``defaultOutputTokens``) for each choice; characters those spoken or else
    /// `bodyBytes`.
    public func estimatedCounts(_ request: RequestSize, price: Price? = nil) -> UsageCounts {
        let bytes = max(0, request.bodyBytes)
        let perChoice = price?.maxOutputTokens ?? defaultOutputTokens
        let unlimited = perChoice.multipliedReportingOverflow(by: request.choices)
        return UsageCounts(inputTokens: bytes / 4 + (bytes % 4 == 0 ? 0 : 1),
                           outputTokens: request.maxOutputTokens.map { max(0, $0) } ?? (unlimited.overflow ? .max : unlimited.partialValue),
                           characters: request.characters.map { max(0, $0) } ?? bytes)
    }

    /// `count × rate / unit`, rounded up, exact in 128 bits; a negative or absent count or rate is 0; saturates at `Int.max`.
    static func part(_ count: Int?, _ rate: Int, per unit: Int) -> Int {
        guard let count, count > 0, rate > 0, unit > 0 else { return 0 }
        let product = UInt128(count) * UInt128(rate)  // < 2^126: no overflow
        let (quotient, remainder) = product.quotientAndRemainder(dividingBy: UInt128(unit))
        let rounded = remainder == 0 ? quotient : quotient + 1
        return rounded > UInt128(Int.max) ? .max : Int(rounded)
    }
}

// MARK: Reading the written form

extension PriceTable {
    /// Reads the JSON form: `{"prices": [entry…], "default_output_tokens": 1000}` or just `[entry…]`, where an entry is
    /// `{"provider": "openai", "model": "gpt-4o*", "source": "byok", "per_call": 1, "input_per_million": 2.5,
    /// "output_per_million": 10, "per_thousand_characters": 0.3, "max_output_tokens": 16384}` (`provider` required, may be `*`; `model` `*` when left
    /// out; `source` any when left out or `*`; rates in credits, 0 when left out; numbers as JSON numbers or decimal text).
    ///
    /// An error names the entry (`prices[2]`) and the field; unknown fields, a bad source or model pattern, negative,
    /// non-finite or absurdly large numbers (over a million credits), a positive rate under a millionth of a credit, and
    /// two entries for the same provider, model and source are refused. Providers are not checked against a catalog here.
    public init(parsing data: Data) throws(KeywardenError) {
        let document: ConfigJSON
        do { document = try JSONDecoder().decode(ConfigJSON.self, from: data) } catch {
            throw KeywardenError.invalid("prices", "is not valid JSON (\(Self.reason(error))).")
        }
        var entries: [ConfigJSON]
        var defaultOutput = Self.standardOutputTokens
        switch document {
        case .array(let list):
            entries = list
        case .object(let members):
            for name in members.keys.sorted() where !["prices", "default_output_tokens"].contains(name) {
                throw KeywardenError.invalid("prices", "has an unknown field '\(name)' (prices, default_output_tokens).")
            }
            guard case .array(let list)? = members["prices"] else {
                throw KeywardenError.invalid("prices", "needs a \"prices\" array of entries.")
            }
            entries = list
            if let value = members["default_output_tokens"] {
                guard let number = Self.number(value), let whole = UntrustedNumber.integer(number, rounding: .up),
                      (0...Self.maximumOutputTokens).contains(whole), Double(whole) == number else {
                    throw KeywardenError.invalid("prices", "default_output_tokens must be a whole number from 0 to \(Self.maximumOutputTokens).")
                }
                defaultOutput = whole
            }
        default:
            throw KeywardenError.invalid("prices", "must be a JSON object {\"prices\": [...]} or an array of entries.")
        }
        var prices: [Price] = []
        var seen: [String: Int] = [:]
        for (index, entry) in entries.enumerated() {
            let price = try Self.entry(entry, at: "prices[\(index)]")
            let identity = "\(price.provider ?? "*")\u{0}\(price.model)\u{0}\(price.source?.rawValue ?? "*")"
            if let earlier = seen[identity] {
                throw KeywardenError.invalid("prices", "prices[\(index)] repeats prices[\(earlier)] (the same provider, model and source).")
            }
            seen[identity] = index
            prices.append(price)
        }
        self.init(prices: prices, defaultOutputTokens: defaultOutput)
    }

    static let fields = ["provider", "model", "source", "per_call", "input_per_million", "output_per_million", "per_thousand_characters",
                         "max_output_tokens"]

    static func entry(_ value: ConfigJSON, at path: String) throws(KeywardenError) -> Price {
        guard case .object(let members) = value else { throw KeywardenError.invalid("prices", "\(path) must be an object.") }
        for name in members.keys.sorted() where !fields.contains(name) {
            throw KeywardenError.invalid("prices", "\(path) has an unknown field '\(name)' (\(fields.joined(separator: ", "))).")
        }
        guard case .string(let provider)? = members["provider"], !provider.isEmpty, !provider.contains(where: { $0.isWhitespace }) else {
            throw KeywardenError.invalid("prices", "\(path).provider must name a provider of the catalog, or be \"*\".")
        }
        var model = ModelPattern.any
        if let value = members["model"] {
            guard case .string(let text) = value, let pattern = ModelPattern(text) else {
                throw KeywardenError.invalid("prices", "\(path).model must be a model name, a prefix ending in * (gpt-4o*), or \"*\".")
            }
            model = pattern
        }
        var source: KeySource?
        if let value = members["source"] {
            guard case .string(let text) = value, text == "*" || KeySource(rawValue: text) != nil else {
                throw KeywardenError.invalid("prices", "\(path).source must be byok, platform, managed or \"*\".")
            }
            source = KeySource(rawValue: text)
        }
        func rate(_ name: String) throws(KeywardenError) -> Int {
            guard let value = members[name] else { return 0 }
            guard let number = Self.number(value), number >= 0, number <= maximumCredits,
                  let micro = UntrustedNumber.integer(Self.millionthsRoundedUp(number)) else {
                throw KeywardenError.invalid("prices", "\(path).\(name) must be a number of credits from 0 to \(Int(maximumCredits)).")
            }
            guard number == 0 || number * 1_000_000 >= 1 - 1e-9, micro > 0 || number == 0 else {
                throw KeywardenError.invalid("prices", "\(path).\(name) is below a millionth of a credit; write 0 for free.")
            }
            return micro
        }
        var maxOutput: Int?
        if let value = members["max_output_tokens"] {
            guard let number = Self.number(value), let whole = UntrustedNumber.integer(number, rounding: .up),
                  (1...Self.maximumOutputTokens).contains(whole), Double(whole) == number else {
                throw KeywardenError.invalid("prices", "\(path).max_output_tokens must be a whole number from 1 to \(Self.maximumOutputTokens).")
            }
            maxOutput = whole
        }
        return Price(provider: provider == "*" ? nil : provider, model: model, source: source, perCall: try rate("per_call"),
                     perMillionInputTokens: try rate("input_per_million"), perMillionOutputTokens: try rate("output_per_million"),
                     perThousandCharacters: try rate("per_thousand_characters"), maxOutputTokens: maxOutput)
    }

    /// `credits × 1,000,000`, rounded up when a fraction of a millionth is left (never under-billed), but not for the
    /// binary noise of a decimal (`2.5 × 1e6` is 2,500,000, not 2,500,001).
    static func millionthsRoundedUp(_ credits: Double) -> Double {
        let scaled = credits * 1_000_000
        let nearest = scaled.rounded()
        return scaled - nearest > 1e-6 ? nearest + 1 : nearest
    }

    /// A JSON number, or a decimal number written as text (through ``UntrustedNumber``); `nil` for anything else.
    static func number(_ value: ConfigJSON) -> Double? {
        switch value {
        case .number(let number): return number.isFinite ? number : nil
        case .string(let text): return UntrustedNumber.decimal(text)
        default: return nil
        }
    }

    static func reason(_ error: any Error) -> String {
        let context: DecodingError.Context
        switch error {
        case DecodingError.dataCorrupted(let found), DecodingError.typeMismatch(_, let found), DecodingError.valueNotFound(_, let found),
             DecodingError.keyNotFound(_, let found):
            context = found
        default:
            return String("\(error)".prefix(200))
        }
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return (path.isEmpty ? "" : "at \(path): ") + String(context.debugDescription.prefix(200))
    }
}

/// A JSON document read for configuration: booleans kept apart from numbers (a `true` is not a price of 1).
enum ConfigJSON: Decodable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([ConfigJSON])
    case object([String: ConfigJSON])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else {
            // An error inside an array or an object is the one to report (with its path), not "not an array".
            let depth = decoder.codingPath.count
            do {
                self = .array(try container.decode([ConfigJSON].self))
            } catch DecodingError.typeMismatch(_, let context) where context.codingPath.count == depth {
                do {
                    self = .object(try container.decode([String: ConfigJSON].self))
                } catch DecodingError.typeMismatch(_, let context) where context.codingPath.count == depth {
                    throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                            debugDescription: "a number too large for a Double, or not a JSON value"))
                }
            }
        }
    }
}
