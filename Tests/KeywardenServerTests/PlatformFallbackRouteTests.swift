import Foundation
import KeywardenTestSupport
import Testing

/// `platform_fallback` on the API: a platform admin sets it on a workspace and on a plan (audited); a workspace's own
/// owner may not (the platform's money); values are checked.
@Suite("Platform fallback on the API")
struct PlatformFallbackRouteTests {
    @Test("set, cleared and audited by a platform admin; refused to the workspace's owner and for an unknown value; plans carry it too")
    func setByAdminOnly() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Payer")
            let owner = try await api.addMember(ws, role: "owner")
            let set = try await api.patch("/api/v1/workspaces/\(ws)", token: harness.adminToken, json: ["platform_fallback": "never"])
            #expect(set.status == 200 && set.json["platform_fallback"] as? String == "never", "\(set.text)")
            let refused = try await api.patch("/api/v1/workspaces/\(ws)", token: owner, json: ["platform_fallback": "on_failure_or_budget"])
            #expect(refused.status == 403 && refused.errorField == "platform_fallback", "\(refused.text)")
            for bad: Any in ["sometimes", 1, true, ["never"]] {
                let answer = try await api.patch("/api/v1/workspaces/\(ws)", token: harness.adminToken, json: ["platform_fallback": bad])
                #expect(answer.status == 400, "\(bad): \(answer.status) \(answer.text)")
            }
            let cleared = try await api.patch("/api/v1/workspaces/\(ws)", token: harness.adminToken, json: ["platform_fallback": NSNull()])
            #expect(cleared.status == 200 && cleared.json["platform_fallback"] == nil)
            let audit = try await api.get("/api/v1/audit?workspace=\(ws)&per_page=50", token: harness.adminToken)
            #expect(audit.text.contains("platform_fallback") && audit.text.contains("never"), "\(audit.text.prefix(800))")
            let plan = try await api.call(.put, "/api/v1/platform/plans/strict", token: harness.adminToken, json: ["platform_fallback": "never"])
            #expect(plan.status == 200 && plan.json["platform_fallback"] as? String == "never", "\(plan.text)")
            let badPlan = try await api.call(.put, "/api/v1/platform/plans/strict", token: harness.adminToken, json: ["platform_fallback": "always"])
            #expect(badPlan.status == 400)
        }
    }
}
