import Foundation
import KeywardenTestSupport
import Testing

/// Numbers at and past the edges of `Int`, in every place a client can put one: a clear 4xx, and the server stays up.
@Suite("Numbers at the edges against the real binary", .serialized)
struct OverflowTests {
    static let hostileNumbers = ["9223372036854775807", "-9223372036854775808", "99999999999999999999", "-99999999999999999999", "-1", "0",
                                 "1e3", "NaN", "inf", "0x10", "1.5", "%201", "9223372036854775808"]
    /// The same as JSON numbers (a JSON number that does not fit is a decoding error, not a trap).
    static let hostileJSONNumbers = ["9223372036854775807", "-9223372036854775808", "99999999999999999999", "-1", "1e30", "-1e30", "1.5", "1e400"]

    @Test("every list route and every numeric field with Int.max, Int.min, 20 digits, negatives and far years: a 4xx, never a crash")
    func edges() async throws {
        let rig = try await GatewayRig(vendors: ["openai"])
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Edges")
        let key = try await rig.key(ws, secret: "sk-edges-abcdefghijkl")
        let auth = ["Authorization": "Bearer \(rig.adminToken)", "Content-Type": "application/json"]

        func expectClientError(_ method: String, _ path: String, body: String? = nil, allowOK: Bool = false,
                               sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let reply = try await TestHTTP.send(method, rig.base + path, body: body.map { Data($0.utf8) }, headers: auth)
            let acceptable = (400..<500).contains(reply.status) || (allowOK && (200..<300).contains(reply.status))
            #expect(acceptable, "\(method) \(path) \(body ?? ""): \(reply.status) \(reply.text)", sourceLocation: sourceLocation)
            if (400..<500).contains(reply.status) {
                #expect(reply.json.errorCode != nil, "\(method) \(path): an error with a stable code", sourceLocation: sourceLocation)
            }
            let health = try await TestHTTP.get(rig.base + "/healthz")
            #expect(health.status == 200, "the server answers after \(method) \(path)", sourceLocation: sourceLocation)
        }

        // Query parameters of every list route.
        for number in Self.hostileNumbers {
            let encoded = number.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? number
            for path in ["/api/v1/workspaces/\(ws)/keys?page=\(encoded)", "/api/v1/workspaces/\(ws)/keys?per_page=\(encoded)",
                         "/api/v1/audit?page=\(encoded)", "/api/v1/audit?per_page=\(encoded)",
                         "/api/v1/audit?page=\(encoded)&per_page=\(encoded)"] {
                try await expectClientError("GET", path, allowOK: number == "1e3" ? false : false)
            }
        }
        // The last page one may ask for is answered (empty), one past it is refused.
        let last = try await TestHTTP.send("GET", rig.base + "/api/v1/workspaces/\(ws)/keys?page=100000&per_page=100", headers: auth)
        #expect(last.status == 200)
        try await expectClientError("GET", "/api/v1/workspaces/\(ws)/keys?page=100001")

        // Usage date ranges with far years and impossible dates.
        for day in ["0001-01-01", "1969-12-31", "99999-01-01", "+275760-09-13T00:00:00Z", "-000001-01-01T00:00:00Z", "2026-13-01",
                    "2026-02-30T25:61:61Z", "9999-12-31T23:59:60Z", String(repeating: "9", count: 200)] {
            let encoded = day.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? day
            try await expectClientError("GET", "/api/v1/usage?from=\(encoded)")
            try await expectClientError("GET", "/api/v1/usage?to=\(encoded)")
        }
        let farRange = try await TestHTTP.send("GET", rig.base + "/api/v1/usage?from=1970-01-01&to=9999-12-30", headers: auth)
        #expect(farRange.status == 200, "\(farRange.text)")

        // JSON numbers: a key's weight, a card's display order, the SMTP port.
        for number in Self.hostileJSONNumbers {
            try await expectClientError("PATCH", "/api/v1/workspaces/\(ws)/keys/\(key)", body: #"{"weight": \#(number)}"#)
            try await expectClientError("POST", "/api/v1/workspaces/\(ws)/keys",
                                        body: #"{"provider": "openai", "description": "w", "api_key": "sk-w-\#(UUID().uuidString)", "weight": \#(number)}"#)
            try await expectClientError("PUT", "/api/v1/platform/providers/openai", body: #"{"display_order": \#(number)}"#)
            try await expectClientError("PUT", "/api/v1/platform/smtp", body: #"{"host": "smtp.example.com", "port": \#(number), "from": "a@example.com", "security": "starttls"}"#)
        }
        // An integer field of a card (Anthropic's default max tokens) at the edges.
        for number in Self.hostileNumbers {
            try await expectClientError("POST", "/api/v1/workspaces/\(ws)/keys",
                                        body: #"{"provider": "anthropic", "description": "m", "api_key": "sk-ant-\#(UUID().uuidString)", "extras": {"default_max_tokens": "\#(number)"}}"#)
        }
        #expect(rig.server.isRunning)
    }
}
