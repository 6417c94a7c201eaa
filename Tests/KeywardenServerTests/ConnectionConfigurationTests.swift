import Testing
@testable import KeywardenServer

/// The client connection's limits as `KEYWARDEN_…` variables set them; a value out of range is an error naming its variable.
@Suite("Connection configuration")
struct ConnectionConfigurationTests {
    static func limits(_ environment: [String: String]) throws -> ClientConnectionLimits {
        try RuntimeConfiguration.server(host: "127.0.0.1", port: 0, environment: environment).connections
    }

    @Test("KEYWARDEN_SEND_TIMEOUT: 60 s unset, seconds (fractions too) when set, at least 1")
    func sendTimeout() throws {
        #expect(try Self.limits([:]).sendTimeout == .seconds(60))
        #expect(try Self.limits(["KEYWARDEN_SEND_TIMEOUT": ""]).sendTimeout == .seconds(60))
        #expect(try Self.limits(["KEYWARDEN_SEND_TIMEOUT": "2"]).sendTimeout == .seconds(2))
        #expect(try Self.limits(["KEYWARDEN_SEND_TIMEOUT": "1.5"]).sendTimeout == .milliseconds(1500))
        for bad in ["0.5", "0", "-1", "soon", "inf", "nan", "1e999"] {
            let error = #expect(throws: ConfigurationError.self) { try Self.limits(["KEYWARDEN_SEND_TIMEOUT": bad]) }
            #expect(error?.variable == "KEYWARDEN_SEND_TIMEOUT", "\(bad)")
        }
        // The other limits are unchanged by it.
        let limits = try Self.limits(["KEYWARDEN_SEND_TIMEOUT": "5", "KEYWARDEN_BODY_TIMEOUT": "7"])
        #expect(limits.sendTimeout == .seconds(5) && limits.bodyTimeout == .seconds(7) && limits.idleTimeout == .seconds(75))
    }
}
