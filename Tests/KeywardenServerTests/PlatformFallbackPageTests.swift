import Foundation
import KeywardenCore
import Testing
@testable import KeywardenServer

/// Who pays when a workspace's own keys cannot, on the pages: the setting that holds in plain words (with where it comes
/// from) on the BYOK and usage pages, and a platform admin's form that sets it; no one else may.
@Suite("Platform fallback on the pages")
struct PlatformFallbackPageTests {
    /// A page's text with the apostrophes the templates escape put back, so the plain words can be looked for.
    static func text(_ html: String) -> String {
        html.replacingOccurrences(of: "&#39;", with: "'").replacingOccurrences(of: "&#x27;", with: "'")
    }

    @Test("a platform admin sets never through the form: the pages say so in plain words, 'set for this workspace', audited; plan clears it")
    func adminSetsNever() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Fallback Co")
            let admin = try await AdminPageTests.signIn(api, token: harness.adminToken)
            let before = try await admin.get("/workspaces/\(ws)/byok")
            #expect(before.status == 200)
            #expect(Self.text(before.body).contains(PlatformFallback.onFailure.explanation) && Self.text(before.body).contains("(the platform's default)"),
                    "\(before.body)")
            #expect(before.body.contains(#"action="/workspaces/\#(ws)/platform-fallback""#) && before.body.contains(#"<option value="" selected>"#))

            // A forged form changes nothing.
            for forged in ["", admin.csrf + "x"] {
                #expect(try await admin.post("/workspaces/\(ws)/platform-fallback", ["platform_fallback": "never", "back": "byok"], csrf: forged).status == 403)
            }
            #expect(try await api.get("/api/v1/workspaces/\(ws)", token: harness.adminToken).json["platform_fallback"] as? String == nil)

            let set = try await admin.post("/workspaces/\(ws)/platform-fallback", ["platform_fallback": "never", "back": "byok"])
            #expect(set.status == 303, "\(set.status) \(set.body)")
            let location = try #require(set.location)
            #expect(location.hasPrefix("/workspaces/\(ws)/byok?notice=fallback_set"))
            let after = try await admin.get(location)
            let page = Self.text(after.body)
            #expect(after.status == 200 && page.contains(PlatformFallback.never.explanation) && page.contains("(set for this workspace)"), "\(after.body)")
            #expect(page.contains("Saved: when the platform's keys stand in"), "the flash notice")
            #expect(after.body.contains(#"<option value="never" selected>Never</option>"#))
            #expect(try await api.get("/api/v1/workspaces/\(ws)", token: harness.adminToken).json["platform_fallback"] as? String == "never")
            let audit = try await api.get("/api/v1/audit?workspace=\(ws)&per_page=50", token: harness.adminToken)
            #expect(audit.text.contains("workspace.updated") && audit.text.contains("platform_fallback"), "\(audit.text.prefix(800))")

            // The usage page says the same, near the own-keys budget.
            let usage = Self.text(try await admin.get("/workspaces/\(ws)/usage").body)
            #expect(usage.contains(PlatformFallback.never.explanation) && usage.contains("(set for this workspace)"))

            // On the Workspaces page the row's select has it; that form comes back to the Workspaces page.
            let list = try await admin.get("/workspaces")
            #expect(list.body.contains(#"id="fallback-\#(ws)""#) && list.body.contains(#"<option value="never" selected>Never</option>"#))
            let fromList = try await admin.post("/workspaces/\(ws)/platform-fallback", ["platform_fallback": "on_failure_or_budget"])
            #expect(fromList.status == 303 && fromList.location?.hasPrefix("/workspaces?notice=fallback_set") == true)
            #expect(try await api.get("/api/v1/workspaces/\(ws)", token: harness.adminToken).json["platform_fallback"] as? String == "on_failure_or_budget")

            // "plan" returns to the plan's setting, and the page names the plan.
            #expect(try await api.put("/api/v1/platform/plans/strict", token: harness.adminToken, json: ["platform_fallback": "never"]).status == 200)
            #expect(try await admin.post("/workspaces/\(ws)/plan", ["plan": "strict"]).status == 303)
            let cleared = try await admin.post("/workspaces/\(ws)/platform-fallback", ["platform_fallback": "", "back": "byok"])
            #expect(cleared.status == 303)
            #expect(try await api.get("/api/v1/workspaces/\(ws)", token: harness.adminToken).json["platform_fallback"] as? String == nil)
            let planned = Self.text(try await admin.get("/workspaces/\(ws)/byok").body)
            #expect(planned.contains(PlatformFallback.never.explanation) && planned.contains("(from plan strict)"), "\(planned)")
            #expect(planned.contains("Plan's setting (Never, from plan strict)"))
        }
    }

    @Test("an invalid value comes back on the page as an error and changes nothing")
    func invalidValue() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Typo")
            let admin = try await AdminPageTests.signIn(api, token: harness.adminToken)
            for fields in [["platform_fallback": "sometimes", "back": "byok"], [:]] {
                let answer = try await admin.post("/workspaces/\(ws)/platform-fallback", fields)
                #expect(answer.status == 400, "\(fields): \(answer.status)")
                #expect(Self.text(answer.body).contains("never, on_failure or on_failure_or_budget."), "\(answer.body)")
                #expect(answer.body.contains(#"role="alert""#))
            }
            #expect(try await api.get("/api/v1/workspaces/\(ws)", token: harness.adminToken).json["platform_fallback"] as? String == nil)
            let unknown = try await admin.post("/workspaces/ws_nope/platform-fallback", ["platform_fallback": "never"])
            #expect(unknown.status == 404)
        }
    }

    @Test("a workspace owner sees the line but no form, and is refused (403) when posting it anyway")
    func ownerSeesButCannotSet() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Owned")
            let owner = try await AdminPageTests.signIn(api, token: try await api.addMember(ws, role: "owner"))
            let byok = try await owner.get("/workspaces/\(ws)/byok")
            let page = Self.text(byok.body)
            #expect(byok.status == 200 && page.contains(PlatformFallback.onFailure.explanation) && page.contains("(the platform's default)"))
            #expect(!byok.body.contains("/platform-fallback\"") && !byok.body.contains(#"name="platform_fallback""#), "no form for the owner")
            let usage = Self.text(try await owner.get("/workspaces/\(ws)/usage").body)
            #expect(usage.contains(PlatformFallback.onFailure.explanation))
            for value in ["never", "on_failure_or_budget", ""] {
                let refused = try await owner.post("/workspaces/\(ws)/platform-fallback", ["platform_fallback": value, "back": "byok"])
                #expect(refused.status == 403, "\(value): \(refused.status)")
            }
            #expect(try await api.get("/api/v1/workspaces/\(ws)", token: harness.adminToken).json["platform_fallback"] as? String == nil)
        }
    }

    @Test("the plan form sets a plan's fallback; a form without the field keeps it; blank is the platform's default")
    func planForm() async throws {
        try await APIHarness.run { harness, api in
            let admin = try await AdminPageTests.signIn(api, token: harness.adminToken)
            let form = try await admin.get("/workspaces")
            #expect(form.body.contains(#"<select id="plan-fallback" name="platform_fallback">"#))
            #expect(try await admin.post("/platform/plans", ["plan_name": "team", "requests_per_minute": "60", "platform_fallback": "never"]).status == 303)
            var plan = try await api.get("/api/v1/platform/plans/team", token: harness.adminToken)
            #expect(plan.json["platform_fallback"] as? String == "never" && plan.json["requests_per_minute"] as? Int == 60, "\(plan.text)")
            let table = Self.text(try await admin.get("/workspaces").body)
            #expect(table.contains(#"<td data-label="Platform's keys stand in">Never</td>"#))
            #expect(try await admin.post("/platform/plans", ["plan_name": "team", "requests_per_minute": "90"]).status == 303)
            plan = try await api.get("/api/v1/platform/plans/team", token: harness.adminToken)
            #expect(plan.json["platform_fallback"] as? String == "never" && plan.json["requests_per_minute"] as? Int == 90, "kept: \(plan.text)")
            #expect(try await admin.post("/platform/plans", ["plan_name": "team", "requests_per_minute": "90", "platform_fallback": ""]).status == 303)
            plan = try await api.get("/api/v1/platform/plans/team", token: harness.adminToken)
            #expect(plan.json["platform_fallback"] as? String == nil, "\(plan.text)")
            let bad = try await admin.post("/platform/plans", ["plan_name": "team", "platform_fallback": "always"])
            #expect(bad.status == 400 && Self.text(bad.body).contains("platform_fallback is never, on_failure or on_failure_or_budget."))
        }
    }
}
