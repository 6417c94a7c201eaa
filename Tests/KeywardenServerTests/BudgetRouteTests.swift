import Foundation
import Testing

/// The budget routes: the platform admin sets limits, the workspace reads them; every bad input is refused by name.
@Suite("Budget routes")
struct BudgetRouteTests {
    @Test("a platform admin sets and clears limits; the workspace reads them; bad numbers and foreign callers are refused")
    func setAndRead() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Budgeted")
            let other = try await api.createWorkspace("Other")
            let path = "/api/v1/workspaces/\(ws)/budget"
            let set = try await api.patch(path, token: harness.adminToken, json: ["platform_limit_credits": 12.5, "byok_limit_credits": 3])
            #expect(set.status == 200)
            #expect(set.object("platform")["limit_credits"] as? Double == 12.5 && set.object("byok")["limit_credits"] as? Double == 3)
            #expect(set.object("platform")["spent_credits"] as? Double == 0 && (set.json["period_end"] as? String)?.hasSuffix("Z") == true)
            let owner = try await api.addMember(ws, role: "owner")
            let read = try await api.get(path, token: owner)
            #expect(read.status == 200 && read.object("platform")["limit_credits"] as? Double == 12.5)
            #expect(try await api.patch(path, token: owner, json: ["platform_limit_credits": 1_000_000]).status == 403, "only the platform sets limits")
            #expect(try await api.get("/api/v1/workspaces/\(other)/budget", token: owner).status == 404, "another workspace is not found")
            for bad: Any in [-1, 1e13, 1e300, "12", true, ["x": 1]] {
                let answer = try await api.patch(path, token: harness.adminToken, json: ["platform_limit_credits": bad])
                #expect(answer.status == 400, "\(bad) → \(answer.status)")
            }
            #expect(try await api.patch(path, token: harness.adminToken, json: ["limit": 1]).errorCode == "unknown_field")
            // A positive limit too small to count is the smallest limit (a thousandth of a credit), never 0.
            let tiny = try await api.patch(path, token: harness.adminToken, json: ["byok_limit_credits": Double.leastNonzeroMagnitude * 1e15])
            #expect(tiny.status == 200 && tiny.object("byok")["limit_credits"] as? Double == 0.001)
            _ = try await api.patch(path, token: harness.adminToken, json: ["byok_limit_credits": 3])
            let cleared = try await api.patch(path, token: harness.adminToken, json: ["platform_limit_credits": NSNull()])
            #expect(cleared.status == 200 && cleared.object("platform")["limit_credits"] is NSNull && cleared.object("byok")["limit_credits"] as? Double == 3,
                    "null clears one limit, an absent field keeps the other")
            #expect(try await api.patch("/api/v1/workspaces/ws_missing/budget", token: harness.adminToken, json: ["byok_limit_credits": 1]).status == 404)
        }
    }

    @Test("rate limits: set by the platform admin, read by the workspace; zero, negative, fractional and huge numbers refused")
    func rateLimits() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Limited")
            let path = "/api/v1/workspaces/\(ws)/rate-limits"
            let set = try await api.patch(path, token: harness.adminToken, json: ["requests_per_minute": 60, "tokens_per_minute": 100_000])
            #expect(set.status == 200 && set.json["requests_per_minute"] as? Int == 60 && set.json["tokens_per_minute"] as? Int == 100_000)
            let owner = try await api.addMember(ws, role: "owner")
            #expect(try await api.get(path, token: owner).json["requests_per_minute"] as? Int == 60)
            #expect(try await api.patch(path, token: owner, json: ["requests_per_minute": 1_000]).status == 403)
            for bad: Any in [0, -5, 1.5, 1e12, Int.max, "60", false] {
                let answer = try await api.patch(path, token: harness.adminToken, json: ["requests_per_minute": bad])
                #expect(answer.status == 400, "\(bad) → \(answer.status)")
            }
            let cleared = try await api.patch(path, token: harness.adminToken, json: ["tokens_per_minute": NSNull()])
            #expect(cleared.json["tokens_per_minute"] is NSNull && cleared.json["requests_per_minute"] as? Int == 60)
        }
    }
}
