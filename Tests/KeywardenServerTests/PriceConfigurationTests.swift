import Foundation
import KeywardenCore
import Testing
@testable import KeywardenServer

/// `KEYWARDEN_PRICES`: a file or inline JSON, checked against the catalog, every error naming the variable.
@Suite("Price configuration")
struct PriceConfigurationTests {
    static let table = #"{"prices": [{"provider": "openai", "model": "gpt-4o*", "input_per_million": 2.5, "output_per_million": 10}, {"provider": "elevenlabs", "model": "*", "per_thousand_characters": 0.3}, {"provider": "*", "model": "*", "source": "byok", "per_call": 1}]}"#

    @Test("inline JSON and a file give the same table, wired into the gateway's settings; unset is no table")
    func inlineAndFile() throws {
        let inline = try RuntimeConfiguration.server(host: "127.0.0.1", port: 0, environment: ["KEYWARDEN_PRICES": "  " + Self.table])
        #expect(inline.gateway.prices.prices.count == 3)
        #expect(inline.gateway.prices.price(provider: "openai", model: "gpt-4o-mini", source: .platform)?.perMillionInputTokens == 2_500_000)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kw-prices-\(UUID().uuidString).json")
        try Self.table.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let fromFile = try RuntimeConfiguration.server(host: "127.0.0.1", port: 0, environment: ["KEYWARDEN_PRICES": file.path])
        #expect(fromFile.gateway.prices == inline.gateway.prices)
        #expect(try RuntimeConfiguration.server(host: "127.0.0.1", port: 0, environment: [:]).gateway.prices.isEmpty)
        #expect(try RuntimeConfiguration.server(host: "127.0.0.1", port: 0, environment: ["KEYWARDEN_PRICES": ""]).gateway.prices.isEmpty)
        // KEYWARDEN_CREDITS stays the fallback beside it.
        let both = try RuntimeConfiguration.server(host: "127.0.0.1", port: 0, environment: ["KEYWARDEN_PRICES": Self.table, "KEYWARDEN_CREDITS": "*=2"])
        #expect(both.gateway.credits.milliCredits(provider: "gemini", source: .platform) == 2_000 && both.gateway.prices.prices.count == 3)
    }

    @Test("a bad table is a ConfigurationError naming KEYWARDEN_PRICES and the entry", arguments: [
        (#"[{"provider": "acme", "per_call": 1}]"#, "prices[0].provider names no provider of the catalog ('acme')"),
        (#"[{"provider": "*"}, {"provider": "openai", "per_call": -1}]"#, "prices[1].per_call"),
        (#"{"prices": [{"provider": "openai", "colour": "red"}]}"#, "prices[0] has an unknown field 'colour'"),
        (#"[{"provider": "openai", "source": "team"}]"#, "prices[0].source"),
        ("{not json", "is not valid JSON"),
        ("/nonexistent/prices.json", "names a file that cannot be read"),
    ])
    func badTables(value: String, expected: String) throws {
        let error = #expect(throws: ConfigurationError.self) {
            try RuntimeConfiguration.server(host: "127.0.0.1", port: 0, environment: ["KEYWARDEN_PRICES": value])
        }
        #expect(error?.variable == "KEYWARDEN_PRICES")
        #expect(error?.description.contains(expected) == true, "\(value): \(error?.description ?? "no error")")
    }
}
