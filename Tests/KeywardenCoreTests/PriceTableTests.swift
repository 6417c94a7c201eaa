import Foundation
import Testing
@testable import KeywardenCore

/// The price table: which entry prices a call, the integer arithmetic of a cost, the estimate a budget holds, and the
/// written form's errors.
@Suite("Price table")
struct PriceTableTests {
    static let example = #"""
    {"prices": [
      {"provider": "openai", "model": "gpt-4o*", "input_per_million": 2.5, "output_per_million": 10},
      {"provider": "openai", "model": "gpt-4o-mini*", "input_per_million": 0.15, "output_per_million": 0.6},
      {"provider": "openai", "model": "gpt-4o-mini", "source": "byok", "per_call": 0},
      {"provider": "openai", "model": "gpt-4o*", "source": "managed", "per_call": 2, "input_per_million": 2.5, "output_per_million": 10},
      {"provider": "elevenlabs", "model": "*", "per_thousand_characters": 0.3},
      {"provider": "*", "model": "*", "source": "byok", "per_call": 1},
      {"provider": "*", "model": "claude*", "per_call": 3}
    ]}
    """#

    func table(_ text: String = PriceTableTests.example) throws -> PriceTable {
        try PriceTable(parsing: Data(text.utf8))
    }

    @Test("the most specific entry wins: exact provider over *, exact model over a longer prefix over a shorter one over *, a source over none")
    func specificity() throws {
        let table = try table()
        func per(_ provider: String, _ model: String?, _ source: KeySource) -> String? {
            table.price(provider: provider, model: model, source: source).map { "\($0.provider ?? "*") \($0.model) \($0.source?.rawValue ?? "*")" }
        }
        #expect(per("openai", "gpt-4o-2024-08-06", .platform) == "openai gpt-4o* *")
        #expect(per("openai", "gpt-4o-mini-2024-07-18", .platform) == "openai gpt-4o-mini* *", "the longer prefix")
        #expect(per("openai", "gpt-4o-mini", .byok) == "openai gpt-4o-mini byok", "the exact model")
        #expect(per("openai", "gpt-4o-mini-2024-07-18", .byok) == "openai gpt-4o-mini* *", "a longer model prefix beats a source")
        #expect(per("openai", "gpt-4o", .managed) == "openai gpt-4o* managed", "a source beats none at the same model")
        #expect(per("openai", "gpt-4o", .byok) == "openai gpt-4o* *", "an exact provider beats * with a source")
        #expect(per("openai", "o3", .byok) == "* * byok", "no openai entry covers o3: the * provider's")
        #expect(per("anthropic", "claude-sonnet-4-6", .byok) == "* claude* *", "a model prefix beats a source among * providers")
        #expect(per("anthropic", "claude-sonnet-4-6", .platform) == "* claude* *")
        #expect(per("openai", "o3", .platform) == nil)
        #expect(per("openai", nil, .platform) == nil, "an unknown model is covered by * only")
        #expect(per("elevenlabs", nil, .platform) == "elevenlabs * *")
        // The written order does not matter.
        let reversed = PriceTable(prices: table.prices.reversed())
        for (provider, model, source) in [("openai", "gpt-4o-mini-x", KeySource.byok), ("openai", "gpt-4o", .managed), ("anthropic", "claude-x", .byok)] {
            #expect(reversed.price(provider: provider, model: model, source: source) == table.price(provider: provider, model: model, source: source))
        }
    }

    @Test("costs are integer milli-credits, each part rounded up to a millionth and the sum up to a thousandth of a credit")
    func rounding() throws {
        let table = try table()
        let cost = { (model: String, input: Int?, output: Int?) in
            table.milliCredits(provider: "openai", model: model, source: .platform, counts: UsageCounts(inputTokens: input, outputTokens: output),
                               fallback: .standard)
        }
        // 1,000,000 in at 2.5 + 100,000 out at 10 = 2.5 + 1 = 3.5 credits.
        #expect(cost("gpt-4o", 1_000_000, 100_000) == 3_500)
        // 1,234 in at 2.5/M = 3,085 µ; 567 out at 10/M = 5,670 µ: 8,755 µ → 9 milli (rounded up).
        #expect(cost("gpt-4o", 1_234, 567) == 9)
        // One token at 0.15/M is 0.15 µ → 1 µ → 1 milli: never free, never under-billed.
        #expect(cost("gpt-4o-mini", 1, nil) == 1)
        #expect(cost("gpt-4o-mini", 0, 0) == 0)
        #expect(cost("gpt-4o-mini", nil, nil) == 0, "no counts, no request to estimate from: the per-call part only")
        // Exact thousandths are not rounded further.
        #expect(cost("gpt-4o", 400, 0) == 1, "400 × 2.5 µ = 1,000 µ = exactly 1 milli")
        #expect(cost("gpt-4o", 401, 0) == 2)
        // Characters: 1,000 at 0.3 credits per thousand = 300 milli; 1 character = 300 µ → 1 milli.
        let speech = { (characters: Int) in
            table.milliCredits(provider: "elevenlabs", model: "eleven_v3", source: .byok, counts: UsageCounts(characters: characters), fallback: .standard)
        }
        #expect(speech(1_000) == 300 && speech(1) == 1 && speech(0) == 0)
        // Per call plus tokens: managed gpt-4o, 2 credits + 1M in (2.5).
        #expect(table.milliCredits(provider: "openai", model: "gpt-4o", source: .managed, counts: UsageCounts(inputTokens: 1_000_000), fallback: .standard) == 4_500)
        #expect(PriceTable.part(3, 1, per: 2) == 2 && PriceTable.part(4, 1, per: 2) == 2 && PriceTable.part(nil, 5, per: 1) == 0)
    }

    @Test("hostile counts: Int.max saturates and is capped, negatives are 0, nothing traps")
    func hostileCounts() throws {
        let table = try table()
        let expensive = PriceTable(prices: [PriceTable.Price(provider: nil, perCall: .max, perMillionInputTokens: .max,
                                                             perMillionOutputTokens: .max, perThousandCharacters: .max)])
        for counts in [UsageCounts(inputTokens: .max, outputTokens: .max, characters: .max), UsageCounts(inputTokens: .max),
                       UsageCounts(outputTokens: Int.max / 2 + 1, characters: Int.max - 1)] {
            let cost = table.milliCredits(provider: "openai", model: "gpt-4o", source: .platform, counts: counts, fallback: .standard)
            #expect(cost > 0 && cost <= BudgetLimits.maximumMilliCredits)
            let worst = expensive.milliCredits(provider: "x", model: nil, source: .platform, counts: counts, fallback: .standard)
            #expect(worst > 0 && worst <= BudgetLimits.maximumMilliCredits)
        }
        // Int.max input at 2.5 credits/M: 9.22e18 × 2.5e6 / 1e6 µ saturates at Int.max µ, past the cap of a trillion credits.
        #expect(table.milliCredits(provider: "openai", model: "gpt-4o", source: .platform, counts: UsageCounts(inputTokens: .max), fallback: .standard)
                == BudgetLimits.maximumMilliCredits)
        // Just under the cap, the exact figure: 10^17 input tokens at 2.5 credits/M = 2.5e11 credits.
        #expect(table.milliCredits(provider: "openai", model: "gpt-4o", source: .platform, counts: UsageCounts(inputTokens: 100_000_000_000_000_000),
                                   fallback: .standard) == 250_000_000_000_000)
        for negative in [UsageCounts(inputTokens: -5, outputTokens: .min, characters: -1), UsageCounts(inputTokens: .min)] {
            #expect(table.milliCredits(provider: "openai", model: "gpt-4o", source: .platform, counts: negative, fallback: .standard) == 0)
            #expect(table.milliCredits(provider: "openai", model: "gpt-4o", source: .managed, counts: negative, fallback: .standard) == 2_000)
        }
        // Negative rates in a table built by hand cost nothing, never a refund.
        let negativeRates = PriceTable(prices: [PriceTable.Price(provider: nil, perCall: -1_000_000, perMillionInputTokens: -5)])
        #expect(negativeRates.milliCredits(provider: "x", model: nil, source: .byok, counts: UsageCounts(inputTokens: 1_000_000), fallback: .standard) == 0)
        #expect(negativeRates.estimate(provider: "x", model: nil, source: .byok, request: .init(bodyBytes: -1, maxOutputTokens: .min, characters: .min),
                                       fallback: .standard) == 0)
        #expect(table.estimate(provider: "openai", model: "gpt-4o", source: .platform, request: .init(bodyBytes: .max, maxOutputTokens: .max),
                               fallback: .standard) <= BudgetLimits.maximumMilliCredits)
    }

    @Test("a call no entry matches costs the KEYWARDEN_CREDITS figure; an empty table is exactly the old pricing")
    func fallbackToCreditPolicy() throws {
        let policy = try CreditPolicy(parsing: "*=1,openai:managed=2.5,*:byok=0.5")
        let table = try table()
        #expect(table.milliCredits(provider: "openai", model: "o3", source: .platform, counts: UsageCounts(inputTokens: 1_000_000), fallback: policy) == 1_000)
        #expect(table.milliCredits(provider: "gemini", model: "gemini-2.5-flash", source: .managed, counts: UsageCounts(), fallback: policy) == 1_000)
        #expect(table.estimate(provider: "openai", model: "o3", source: .managed, request: .init(bodyBytes: 4_000_000), fallback: policy) == 2_500)
        for source in [KeySource.byok, .platform, .managed] {
            for provider in ["openai", "anthropic"] {
                #expect(PriceTable.empty.milliCredits(provider: provider, model: "gpt-4o", source: source, counts: UsageCounts(inputTokens: 99), fallback: policy)
                        == policy.milliCredits(provider: provider, source: source))
                #expect(PriceTable.empty.estimate(provider: provider, model: "gpt-4o", source: source, request: .init(bodyBytes: 999), fallback: policy)
                        == policy.milliCredits(provider: provider, source: source))
            }
        }
        // The request is not even looked at when the fallback prices the call.
        var evaluated = false
        func size() -> PriceTable.RequestSize { evaluated = true; return .init(bodyBytes: 1) }
        _ = PriceTable.empty.estimate(provider: "openai", model: nil, source: .byok, request: size(), fallback: policy)
        _ = table.milliCredits(provider: "openai", model: "gpt-4o", source: .platform, counts: UsageCounts(inputTokens: 1, outputTokens: 1),
                               unreported: size(), fallback: policy)
        #expect(!evaluated, "nor when the answer reported every count its entry prices")
    }

    @Test("the estimate: per call + body bytes / 4 input tokens + the request's output limit (else the default) or the spoken characters")
    func estimate() throws {
        let table = try table()
        let estimate = { (source: KeySource, request: PriceTable.RequestSize) in
            table.estimate(provider: "openai", model: "gpt-4o", source: source, request: request, fallback: .standard)
        }
        // 4,000 bytes → 1,000 input tokens (2,500 µ) + max_tokens 500 (5,000 µ) = 7,500 µ → 8 milli.
        #expect(estimate(.platform, .init(bodyBytes: 4_000, maxOutputTokens: 500)) == 8)
        // No limit: 1,000 output tokens (10,000 µ) + 1 input token for 1 byte (2.5 → 3 µ) → 11 milli.
        #expect(estimate(.platform, .init(bodyBytes: 1)) == 11)
        #expect(estimate(.managed, .init(bodyBytes: 0, maxOutputTokens: 0)) == 2_000, "the per-call part alone")
        let larger = try self.table(#"{"default_output_tokens": 100000, "prices": [{"provider": "openai", "output_per_million": 10}]}"#)
        #expect(larger.defaultOutputTokens == 100_000)
        #expect(larger.estimate(provider: "openai", model: "o3", source: .byok, request: .init(bodyBytes: 0), fallback: .standard) == 1_000)
        #expect(larger.estimatedCounts(.init(bodyBytes: 7)) == UsageCounts(inputTokens: 2, outputTokens: 100_000, characters: 7))
        // Text-to-speech: the spoken characters (else the body's length).
        let speech = table.estimate(provider: "elevenlabs", model: "eleven_v3", source: .platform, request: .init(bodyBytes: 50, characters: 2_000), fallback: .standard)
        #expect(speech == 600)
        // An answer without token counts, for a request that expected them, is charged as estimated.
        let unreported = table.milliCredits(provider: "openai", model: "gpt-4o", source: .platform, counts: UsageCounts(),
                                            unreported: .init(bodyBytes: 4_000, maxOutputTokens: 500), fallback: .standard)
        #expect(unreported == 8)
        let partly = table.milliCredits(provider: "openai", model: "gpt-4o", source: .platform, counts: UsageCounts(inputTokens: 0),
                                        unreported: .init(bodyBytes: 4_000, maxOutputTokens: 500), fallback: .standard)
        #expect(partly == 5, "a count reported (even 0) is believed; the one left out (500 output tokens) is estimated")
    }

    @Test("without an output limit, the estimate holds the entry's max_output_tokens (else the default) for each choice the request asks for")
    func estimateIsAnUpperBoundPerChoice() throws {
        let table = try self.table(#"{"default_output_tokens": 1000, "prices": [{"provider": "openai", "model": "gpt-4o", "output_per_million": 10, "max_output_tokens": 16384}, {"provider": "openai", "output_per_million": 10}]}"#)
        let bounded = try #require(table.price(provider: "openai", model: "gpt-4o", source: .platform))
        #expect(bounded.maxOutputTokens == 16_384)
        #expect(table.estimatedCounts(.init(bodyBytes: 0), price: bounded).outputTokens == 16_384)
        #expect(table.estimatedCounts(.init(bodyBytes: 0, choices: 3), price: bounded).outputTokens == 49_152)
        #expect(table.estimatedCounts(.init(bodyBytes: 0, choices: 3)).outputTokens == 3_000, "no entry: the default, per choice")
        #expect(table.estimatedCounts(.init(bodyBytes: 0, maxOutputTokens: 700, choices: 3), price: bounded).outputTokens == 700,
                "a request's limit is already all choices together")
        #expect(table.estimatedCounts(.init(bodyBytes: 0, choices: 100_000), price: bounded).outputTokens == 16_384 * 128, "at most 128 choices")
        // 16,384 × 3 tokens at 10 credits per million = 0.49152 credits → 492 milli.
        #expect(table.estimate(provider: "openai", model: "gpt-4o", source: .byok, request: .init(bodyBytes: 0, choices: 3), fallback: .standard) == 492)
        // An answer that reported no counts is charged the same bound.
        #expect(table.milliCredits(provider: "openai", model: "gpt-4o", source: .byok, counts: UsageCounts(),
                                   unreported: .init(bodyBytes: 0, choices: 3), fallback: .standard) == 492)
        let huge = PriceTable.Price(provider: "x", maxOutputTokens: .max)
        #expect(huge.maxOutputTokens == PriceTable.maximumOutputTokens)
        #expect(PriceTable(prices: [huge]).estimatedCounts(.init(bodyBytes: 0, choices: 128), price: huge).outputTokens == PriceTable.maximumOutputTokens * 128)
    }

    @Test("the written form: an array or an object, numbers as JSON or decimal text, * and sources")
    func writtenForm() throws {
        let array = try table(#"[{"provider": "*", "per_call": "0.5"}, {"provider": "openai", "model": "gpt-5*", "source": "*", "input_per_million": 1e1}]"#)
        #expect(array.prices == [PriceTable.Price(provider: nil, perCall: 500_000),
                                 PriceTable.Price(provider: "openai", model: .prefix("gpt-5"), perMillionInputTokens: 10_000_000)])
        #expect(array.defaultOutputTokens == PriceTable.standardOutputTokens)
        #expect(try table(#"{"prices": []}"#).isEmpty)
        #expect(try table(#"{"prices": [{"provider": "openai", "per_call": 0.0000014}]}"#).prices[0].perCall == 2, "six decimals, a fraction of a millionth rounded up")
        #expect(PriceTable.ModelPattern("*") == .any && PriceTable.ModelPattern("gpt") == .exact("gpt") && PriceTable.ModelPattern("a*b") == nil)
    }

    @Test("bad tables are refused with the entry and the field named", arguments: [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("42", "object"),
        (#"{"price": []}"#, "unknown field 'price'"),
        (#"{"prices": {}}"#, "\"prices\" array"),
        (#"{"prices": [], "default_output_tokens": -1}"#, "default_output_tokens"),
        (#"{"prices": [], "default_output_tokens": 1.5}"#, "default_output_tokens"),
        (#"{"prices": [], "default_output_tokens": 1e12}"#, "default_output_tokens"),
        (#"[1]"#, "prices[0] must be an object"),
        (#"[{"model": "*"}]"#, "prices[0].provider"),
        (#"[{"provider": ""}]"#, "prices[0].provider"),
        (#"[{"provider": 7}]"#, "prices[0].provider"),
        (#"[{"provider": "*"}, {"provider": "openai", "modle": "x"}]"#, "prices[1] has an unknown field 'modle'"),
        (#"[{"provider": "openai", "model": ""}]"#, "prices[0].model"),
        (#"[{"provider": "openai", "model": "gpt*4o"}]"#, "prices[0].model"),
        (#"[{"provider": "openai", "model": "**"}]"#, "prices[0].model"),
        (#"[{"provider": "openai", "model": 4}]"#, "prices[0].model"),
        (#"[{"provider": "openai", "source": "owner"}]"#, "prices[0].source"),
        (#"[{"provider": "openai", "source": null}]"#, "prices[0].source"),
        (#"[{"provider": "openai", "per_call": -1}]"#, "prices[0].per_call"),
        (#"[{"provider": "openai", "input_per_million": "-0.5"}]"#, "prices[0].input_per_million"),
        (#"[{"provider": "openai", "output_per_million": 1000001}]"#, "prices[0].output_per_million"),
        (#"[{"provider": "openai", "output_per_million": 1e300}]"#, "prices[0].output_per_million"),
        (#"[{"provider": "openai", "per_thousand_characters": "inf"}]"#, "prices[0].per_thousand_characters"),
        (#"[{"provider": "openai", "per_thousand_characters": "nan"}]"#, "prices[0].per_thousand_characters"),
        (#"[{"provider": "openai", "per_call": "0x10"}]"#, "prices[0].per_call"),
        (#"[{"provider": "openai", "per_call": true}]"#, "prices[0].per_call"),
        (#"[{"provider": "openai", "per_call": null}]"#, "prices[0].per_call"),
        (#"[{"provider": "openai", "per_call": [1]}]"#, "prices[0].per_call"),
        (#"[{"provider": "openai", "max_output_tokens": 0}]"#, "prices[0].max_output_tokens"),
        (#"[{"provider": "openai", "max_output_tokens": 2.5}]"#, "prices[0].max_output_tokens"),
        (#"[{"provider": "openai", "max_output_tokens": 1e300}]"#, "prices[0].max_output_tokens"),
        (#"[{"provider": "openai", "max_output_tokens": "lots"}]"#, "prices[0].max_output_tokens"),
        (#"[{"provider": "openai", "per_call": 0.0000001}]"#, "below a millionth"),
        (#"[{"provider": "openai", "model": "gpt*"}, {"provider": "openai", "model": "gpt*", "source": "*"}]"#, "prices[1] repeats prices[0]"),
        (#"[{"provider": "openai", "per_call": 1e999}]"#, "at [0].per_call"),
    ])
    func badTables(text: String, expected: String) throws {
        let error = #expect(throws: KeywardenError.self) { try PriceTable(parsing: Data(text.utf8)) }
        #expect(error?.message.contains(expected) == true, "\(text): \(error?.message ?? "no error")")
    }

    @Test("each priced count the answer left out is estimated (speech without characters is not free); a call left early costs at least its estimate")
    func missingCountsAreEstimated() throws {
        let table = PriceTable(prices: [
            PriceTable.Price(provider: "elevenlabs", perThousandCharacters: 300_000),
            PriceTable.Price(provider: "openai", perMillionInputTokens: 1_000_000, perMillionOutputTokens: 4_000_000),
        ])
        let speech = PriceTable.RequestSize(bodyBytes: 2_000)
        #expect(table.milliCredits(provider: "elevenlabs", model: nil, source: .platform, counts: UsageCounts(), unreported: speech, fallback: .standard) == 600,
                "2,000 characters estimated from the body at 0.3 credits per thousand")
        let request = PriceTable.RequestSize(bodyBytes: 4_000, maxOutputTokens: 500)
        // Input reported, output not (a stream cut before its usage): the output is the estimate's.
        #expect(table.milliCredits(provider: "openai", model: nil, source: .platform, counts: UsageCounts(inputTokens: 1_000), unreported: request,
                                   fallback: .standard) == 1 + 2)
        // Left early: each count at least its estimate (1,000 in, 500 out), a larger report kept.
        #expect(table.milliCredits(provider: "openai", model: nil, source: .platform, counts: UsageCounts(inputTokens: 10, outputTokens: 1),
                                   unreported: request, atLeastEstimate: true, fallback: .standard) == 1 + 2)
        #expect(table.milliCredits(provider: "openai", model: nil, source: .platform, counts: UsageCounts(inputTokens: 2_000, outputTokens: 1_000),
                                   unreported: request, atLeastEstimate: true, fallback: .standard) == 2 + 4)
        // Without a request to estimate from, what was not reported costs nothing (a listing).
        #expect(table.milliCredits(provider: "openai", model: nil, source: .platform, counts: UsageCounts(), fallback: .standard) == 0)
    }

    @Test("a rate is kept to the millionth, rounded up only when a fraction of a millionth is left")
    func ratesRoundUp() throws {
        let table = try PriceTable(parsing: Data(#"[{"provider": "*", "per_call": 0.0000014, "input_per_million": 2.5, "output_per_million": 0.1}]"#.utf8))
        let price = try #require(table.prices.first)
        #expect(price.perCall == 2 && price.perMillionInputTokens == 2_500_000 && price.perMillionOutputTokens == 100_000)
    }
}
