import Foundation
import KeywardenCore
import Testing
@testable import KeywardenServer

/// Pages decode their forms into the API's own request types: the same fields, the same checks, the same messages, and
/// the service's authorization for both doors.
@Suite("Forms decoded as the API's requests")
struct FormDecodingPageTests {
    @Test("the budget form sets what PATCH …/budget and …/rate-limits set; blank clears; bad values get the API's message; an owner is refused")
    func budgetForm() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Budgeted")
            let admin = try await AdminPageTests.signIn(api, token: harness.adminToken)
            let path = "/workspaces/\(ws)/budget"
            let set = try await admin.post(path, ["platform_limit_credits": "12.5", "byok_limit_credits": "3", "period": "week",
                                                  "requests_per_minute": "60", "tokens_per_minute": ""])
            #expect(set.status == 303, "\(set.status) \(set.body)")
            var budget = try await api.get("/api/v1/workspaces/\(ws)/budget", token: harness.adminToken).json
            #expect((budget["platform"] as? [String: Any])?["limit_credits"] as? Double == 12.5)
            #expect((budget["byok"] as? [String: Any])?["limit_credits"] as? Double == 3 && budget["period"] as? String == "week")
            var rates = try await api.get("/api/v1/workspaces/\(ws)/rate-limits", token: harness.adminToken).json
            #expect(rates["requests_per_minute"] as? Int == 60 && rates["tokens_per_minute"] is NSNull)

            // Each bad value is the API's 400, named, shown on the page; nothing changes.
            let bad: [([String: String], String)] = [
                (["platform_limit_credits": "-1"], "platform_limit_credits must be a number of credits"),
                (["platform_limit_credits": "1e400"], "platform_limit_credits must be a number of credits"),
                (["byok_limit_credits": "lots"], "byok_limit_credits must be a number"),
                (["requests_per_minute": "0"], "requests_per_minute must be a whole number from 1"),
                (["requests_per_minute": "1.5"], "requests_per_minute must be a number"),
                (["requests_per_minute": "\(Int.max)0"], "requests_per_minute must be a number"),
                (["period": "fortnight"], "period"),
            ]
            for (fields, message) in bad {
                let answer = try await admin.post(path, fields)
                #expect(answer.status == 400 && answer.body.contains(message) && answer.body.contains(#"role="alert""#), "\(fields): \(answer.status)")
            }
            // A good budget beside a bad rate limit: the form is refused whole, nothing is set.
            let mixed = try await admin.post(path, ["platform_limit_credits": "99", "requests_per_minute": "0"])
            #expect(mixed.status == 400)
            budget = try await api.get("/api/v1/workspaces/\(ws)/budget", token: harness.adminToken).json
            #expect((budget["platform"] as? [String: Any])?["limit_credits"] as? Double == 12.5, "unchanged by refused forms")

            // Blank is no limit (the API's null).
            #expect(try await admin.post(path, ["platform_limit_credits": "", "byok_limit_credits": "", "period": "",
                                                "requests_per_minute": "", "tokens_per_minute": ""]).status == 303)
            budget = try await api.get("/api/v1/workspaces/\(ws)/budget", token: harness.adminToken).json
            #expect((budget["platform"] as? [String: Any])?["limit_credits"] is NSNull && budget["period"] as? String == "month")
            rates = try await api.get("/api/v1/workspaces/\(ws)/rate-limits", token: harness.adminToken).json
            #expect(rates["requests_per_minute"] is NSNull)

            // A workspace owner holding the form is refused by the service, not shown a page.
            let owner = try await AdminPageTests.signIn(api, token: try await api.addMember(ws, role: "owner"))
            for fields in [["byok_limit_credits": "1000"], ["byok_limit_credits": "bad"], [:]] {
                #expect(try await owner.post(path, fields).status == 403, "\(fields)")
            }
            budget = try await api.get("/api/v1/workspaces/\(ws)/budget", token: harness.adminToken).json
            #expect((budget["byok"] as? [String: Any])?["limit_credits"] is NSNull)
        }
    }

    @Test("the new-workspace form's checkboxes are true when ticked and false when not; a workspace member posting it or the plan form is refused, shown no list")
    func workspaceAndPlanForms() async throws {
        try await APIHarness.run { harness, api in
            let admin = try await AdminPageTests.signIn(api, token: harness.adminToken)
            // A browser sends the hidden `false`, then the ticked box's `true` (the last value of a name wins).
            let ticked = try await admin.post("/workspaces", ["name": "Ticked", "byok_allowed": "true", "exclusive": "true"])
            let unticked = try await admin.post("/workspaces", ["name": "Unticked", "byok_allowed": "false", "exclusive": "false"])
            #expect(ticked.status == 303 && unticked.status == 303)
            let list = try await api.get("/api/v1/workspaces?search=ticked", token: harness.adminToken).json["items"] as? [[String: Any]] ?? []
            let byName = Dictionary(list.map { ($0["name"] as? String ?? "", $0) }) { $1 }
            #expect(byName["Ticked"]?["byok_allowed"] as? Bool == true && byName["Ticked"]?["exclusive"] as? Bool == true)
            #expect(byName["Unticked"]?["byok_allowed"] as? Bool == false && byName["Unticked"]?["exclusive"] as? Bool == false)
            // A form stuffed with 1,500 fields (near the body limit) and one of the wrong type is answered at once, naming no field.
            let stuffed = try await admin.post("/workspaces", pairs: (0..<1_500).map { ("byok_allowed[k\($0)]", "1") } + [("name", "Stuffed"), ("exclusive", "x")])
            #expect(stuffed.status == 400 && !stuffed.body.contains("Stuffed</"), "\(stuffed.status) \(stuffed.body.components(separatedBy: "role=\"alert\"").last?.prefix(200) ?? "")")
            let badBox = try await admin.post("/workspaces", ["name": "Odd", "byok_allowed": "maybe"])
            #expect(badBox.status == 400 && badBox.body.contains("byok_allowed must be true or false."), "\(badBox.status) \(badBox.body.components(separatedBy: "role=\"alert\"").last?.prefix(200) ?? "")")

            let ws = try await api.createWorkspace("Members only")
            let owner = try await AdminPageTests.signIn(api, token: try await api.addMember(ws, role: "owner"))
            for (path, fields) in [("/workspaces", ["name": "Sneaky"]), ("/workspaces", ["name": ""]),
                                   ("/platform/plans", ["plan_name": "free"]), ("/platform/plans", ["plan_name": "Bad Name"]),
                                   ("/workspaces/\(ws)/plan", ["plan": ""]), ("/workspaces/\(ws)/rename", ["name": ""])] {
                let refused = try await owner.post(path, fields)
                #expect(refused.status == 403 && !refused.body.contains("Ticked"), "\(path) \(fields): \(refused.status) \(refused.body.prefix(300))")
            }
            let plans = try await api.get("/api/v1/platform/plans", token: harness.adminToken).json["items"] as? [Any]
            #expect(plans?.isEmpty == true, "no plan was made by the refused form")
        }
    }

    @Test("the webhook form is POST …/webhooks: its events a list, an unknown one the API's message; the SMTP form is PUT …/smtp; a reader may not add one")
    func webhookAndSMTPForms() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Hooked")
            let admin = try await AdminPageTests.signIn(api, token: harness.adminToken)
            let path = "/workspaces/\(ws)/settings/webhooks"
            let added = try await admin.post(path, pairs: [("url", "https://hooks.example.com/a"), ("description", "Ops"),
                                                           ("events[]", "key.invalid"), ("events[]", "budget.threshold")])
            #expect(added.status == 303, "\(added.status) \(added.body.components(separatedBy: "role=\"alert\"").last?.prefix(200) ?? "")")
            let hooks = try await api.get("/api/v1/workspaces/\(ws)/webhooks", token: harness.adminToken).json["items"] as? [[String: Any]] ?? []
            #expect(hooks.count == 1 && (hooks.first?["events"] as? [String]).map(Set.init) == ["key.invalid", "budget.threshold"], "\(hooks)")
            let unknown = try await admin.post(path, pairs: [("url", "https://hooks.example.com/b"), ("events[]", "key.stolen")])
            #expect(unknown.status == 400 && unknown.body.contains("Unknown event &#39;key.stolen&#39;") || unknown.body.contains("Unknown event &#x27;key.stolen&#x27;")
                    || unknown.body.contains("Unknown event 'key.stolen'"), "\(unknown.status)")
            let missing = try await admin.post(path, pairs: [("description", "no address")])
            #expect(missing.status == 400 && missing.body.contains("url is required."))
            let reader = try await AdminPageTests.signIn(api, token: try await api.addMember(ws, role: "viewer"))
            #expect(try await reader.post(path, pairs: [("url", "https://hooks.example.com/c")]).status == 403)
            #expect(try await reader.post(path, pairs: [("events[]", "nonsense")]).status == 403, "refused before the form is read")
            #expect((try await api.get("/api/v1/workspaces/\(ws)/webhooks", token: harness.adminToken).json["items"] as? [Any])?.count == 1)

            let smtp = "/platform/notifications/smtp"
            #expect(try await admin.post(smtp, ["host": "smtp.example.com", "port": "2525", "security": "none", "from": "k@example.com",
                                                "password": "smtp-canary-991"]).status == 303)
            var saved = try await api.get("/api/v1/platform/smtp", token: harness.adminToken)
            #expect(saved.json["port"] as? Int == 2525 && saved.json["has_password"] as? Bool == true && !saved.text.contains("smtp-canary-991"))
            // A blank password keeps the kept one; a blank port is the security's usual one.
            #expect(try await admin.post(smtp, ["host": "smtp.example.com", "port": "", "security": "tls", "from": "k@example.com", "password": ""]).status == 303)
            saved = try await api.get("/api/v1/platform/smtp", token: harness.adminToken)
            #expect(saved.json["port"] as? Int == 465 && saved.json["has_password"] as? Bool == true)
            for (fields, message) in [(["host": "h", "from": "f@example.com", "port": "0"], "port is a number from 1 to 65535."),
                                      (["host": "h", "from": "f@example.com", "port": "abc"], "port must be a number."),
                                      (["host": "h", "from": "f@example.com", "security": "ssl3"], "security must be one of starttls, tls, none."),
                                      (["from": "f@example.com"], "host is required.")] {
                let answer = try await admin.post(smtp, fields)
                #expect(answer.status == 400 && answer.body.contains(message), "\(fields): \(answer.status)")
            }
        }
    }

    @Test("?verify=true on the keys API needs keys.test: a token without it is refused before anything is saved")
    func verifyOnSaveNeedsKeysTest() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("No tests")
            let token = try await api.serviceToken(ws, permissions: ["keys.create", "keys.read", "keys.update"])
            let refused = try await api.post("/api/v1/workspaces/\(ws)/keys?verify=true", token: token,
                                             json: ["provider": "openai", "description": "Untested", "api_key": "sk-untested-0001"])
            #expect(refused.status == 403, "\(refused.status) \(refused.text)")
            let keys = try await api.get("/api/v1/workspaces/\(ws)/keys", token: harness.adminToken).json["items"] as? [Any]
            #expect(keys?.isEmpty == true, "nothing was saved")
            let saved = try await api.post("/api/v1/workspaces/\(ws)/keys", token: token,
                                           json: ["provider": "openai", "description": "Untested", "api_key": "sk-untested-0001"])
            #expect(saved.status == 201)
        }
    }

    @Test("the API refuses a caller before reading the body: a member creating a workspace or a webhook, another workspace's token patching it")
    func refusedBeforeTheBodyIsRead() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Mine")
            let other = try await api.createWorkspace("Theirs")
            let viewer = try await api.addMember(ws, role: "viewer")
            let malformed: [String: Any] = ["name": 42, "byok_allowed": "maybe", "url": 7]
            #expect(try await api.post("/api/v1/workspaces", token: viewer, json: malformed).status == 403)
            #expect(try await api.post("/api/v1/workspaces/\(ws)/webhooks", token: viewer, json: malformed).status == 403)
            #expect(try await api.post("/api/v1/platform/webhooks", token: viewer, json: malformed).status == 403)
            #expect(try await api.patch("/api/v1/workspaces/\(other)", token: viewer, json: malformed).status == 404)
            // The same bodies from the platform admin are the named 400s.
            #expect(try await api.post("/api/v1/workspaces", token: harness.adminToken, json: malformed).status == 400)
            #expect(try await api.patch("/api/v1/workspaces/\(other)", token: harness.adminToken, json: malformed).status == 400)
        }
    }
}
