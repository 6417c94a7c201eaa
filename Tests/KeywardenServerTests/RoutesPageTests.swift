import Foundation
import Testing
@testable import KeywardenServer

/// The Chat routes pages (a workspace's and the platform's) over HTTP: listing, saving and deleting through the same
/// service as the API, with CSRF on every form, validation errors on the page, and each role's view.
@Suite("Admin pages: chat routes")
struct RoutesPageTests {
    typealias Browser = AdminPageTests.Browser

    /// The steps of a route as the API lists them (`provider/model`), or `nil` when there is no such route.
    static func apiSteps(_ api: API, token: String, _ path: String, route: String) async throws -> [String]? {
        let items = try await api.get(path, token: token).json["items"] as? [[String: Any]] ?? []
        guard let item = items.first(where: { $0["name"] as? String == route }) else { return nil }
        return (item["steps"] as? [[String: Any]] ?? []).map { "\($0["provider"] as? String ?? "")/\($0["model"] as? String ?? "")" }
    }

    @Test("an admin creates a workspace route from the form, sees it listed and edits it; bad steps come back as the page's error; delete removes it")
    func workspaceRoutes() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Routed")
            let admin = try await AdminPageTests.signIn(api, token: harness.adminToken)
            let base = "/workspaces/\(ws)/routes"

            let empty = try await admin.get(base)
            #expect(empty.status == 200 && empty.body.contains("No routes yet."))
            #expect(empty.body.contains(#"href="/workspaces/\#(ws)/routes" aria-current="page""#), "the workspace's nav links to the page")
            #expect(empty.body.contains(#"name="step4_provider""#) && !empty.body.contains(#"name="step5_provider""#), "four step rows")
            #expect(empty.body.contains(#"<option value="anthropic" >Anthropic</option>"#) && empty.body.contains(#"<datalist id="route-models-anthropic">"#))
            #expect(empty.body.contains(#"<option value="claude-opus-4-7""#), "the curated models are offered")
            #expect(!empty.body.contains(#"<option value="elevenlabs""#), "only chat providers are offered")

            // A forged form changes nothing.
            let forged = try await admin.post(base, ["name": "support", "step1_provider": "openai", "step1_model": "gpt-5.4-mini"], csrf: admin.csrf + "x")
            #expect(forged.status == 403)
            #expect(try await Self.apiSteps(api, token: harness.adminToken, "/api/v1/workspaces/\(ws)/routes", route: "support") == nil)

            let saved = try await admin.post(base, ["name": "support", "step1_provider": "anthropic", "step1_model": "claude-opus-4-7",
                                                    "step2_provider": "openai", "step2_model": "gpt-5.4-mini", "step3_provider": "", "step3_model": ""])
            #expect(saved.status == 303 && saved.location == "\(base)?notice=saved&route=support", "\(saved.status) \(saved.body)")
            #expect(try await Self.apiSteps(api, token: harness.adminToken, "/api/v1/workspaces/\(ws)/routes", route: "support")
                    == ["anthropic/claude-opus-4-7", "openai/gpt-5.4-mini"], "empty rows are ignored")
            let listed = try await admin.get(try #require(saved.location))
            #expect(listed.body.contains("Route “support” saved."))
            #expect(listed.body.contains("anthropic / claude-opus-4-7 → openai / gpt-5.4-mini"))
            #expect(listed.body.contains(#"action="/workspaces/\#(ws)/routes/support/delete" data-confirm="Delete the route “support”"#), "deletion asks first")

            // The edit link fills the form with the route.
            let editing = try await admin.get("\(base)?edit=support")
            #expect(editing.body.contains(#"value="support""#) && editing.body.contains(#"<option value="anthropic" selected>"#)
                    && editing.body.contains(#"list="route-models-openai" value="gpt-5.4-mini""#))

            // Validation errors are shown on the page, with what was submitted, and save nothing.
            let unknown = try await admin.post(base, ["name": "broken", "step1_provider": "nosuch", "step1_model": "some-model"])
            #expect(unknown.status == 400 && unknown.body.contains(#"role="alert">There is no provider &#39;nosuch&#39;."#), "\(unknown.status)")
            #expect(unknown.body.contains(#"value="broken""#) && unknown.body.contains(#"value="some-model""#))
            let notChat = try await admin.post(base, ["name": "speech", "step1_provider": "elevenlabs", "step1_model": "eleven"])
            #expect(notChat.status == 400 && notChat.body.contains("has no chat API a route can use"))
            let noSteps = try await admin.post(base, ["name": "hollow"])
            #expect(noSteps.status == 400 && noSteps.body.contains("A route has 1 to 8 steps."))
            let badName = try await admin.post(base, ["name": "Bad Name", "step1_provider": "openai", "step1_model": "gpt-5.4-mini"])
            #expect(badName.status == 400 && badName.body.contains("A route&#39;s name is 1 to 64 lowercase letters"))
            let routes = try await api.get("/api/v1/workspaces/\(ws)/routes", token: harness.adminToken).json["items"] as? [Any]
            #expect(routes?.count == 1)

            // Saving under the same name replaces the route.
            let replaced = try await admin.post(base, ["name": "support", "step1_provider": "gemini", "step1_model": "gemini-2.5-flash"])
            #expect(replaced.status == 303)
            #expect(try await Self.apiSteps(api, token: harness.adminToken, "/api/v1/workspaces/\(ws)/routes", route: "support") == ["gemini/gemini-2.5-flash"])

            #expect(try await admin.post("\(base)/support/delete", [:], csrf: "").status == 403)
            let deleted = try await admin.post("\(base)/support/delete", [:])
            #expect(deleted.status == 303 && deleted.location == "\(base)?notice=deleted&route=support")
            let after = try await admin.get(try #require(deleted.location))
            #expect(after.body.contains("Route “support” deleted.") && after.body.contains("No routes yet."))
            #expect(try await Self.apiSteps(api, token: harness.adminToken, "/api/v1/workspaces/\(ws)/routes", route: "support") == nil)

            // Both changes are audited with the signed-in admin as the actor.
            let audit = try await api.get("/api/v1/audit?workspace=\(ws)", token: harness.adminToken)
            #expect(audit.text.contains("route.set") && audit.text.contains("route.removed"), "\(audit.status)")
        }
    }

    @Test("a viewer sees the routes but no form; the service refuses their posts; another workspace is not found")
    func viewerAndStranger() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Watched")
            let other = try await api.createWorkspace("Elsewhere")
            let put = try await api.put("/api/v1/workspaces/\(ws)/routes/support", token: harness.adminToken,
                                        json: ["steps": [["provider": "anthropic", "model": "claude-opus-4-7"], ["provider": "openai", "model": "gpt-5.4-mini"]]])
            #expect(put.status == 200, "\(put.text)")
            let viewer = try await AdminPageTests.signIn(api, token: try await api.addMember(ws, role: "viewer"))
            let page = try await viewer.get("/workspaces/\(ws)/routes")
            #expect(page.status == 200 && page.body.contains("anthropic / claude-opus-4-7 → openai / gpt-5.4-mini"))
            #expect(!page.body.contains(#"name="step1_provider""#) && !page.body.contains("/delete") && !page.body.contains("?edit="))
            #expect(!page.body.contains(#"href="/platform/routes""#), "a workspace's people get no platform link")
            let refused = try await viewer.post("/workspaces/\(ws)/routes", ["name": "sneaky", "step1_provider": "openai", "step1_model": "gpt-5.4-mini"])
            #expect(refused.status == 403, "\(refused.status)")
            #expect(try await viewer.post("/workspaces/\(ws)/routes/support/delete", [:]).status == 403)
            #expect(try await Self.apiSteps(api, token: harness.adminToken, "/api/v1/workspaces/\(ws)/routes", route: "support")?.count == 2)
            #expect(try await Self.apiSteps(api, token: harness.adminToken, "/api/v1/workspaces/\(ws)/routes", route: "sneaky") == nil)

            #expect(try await viewer.get("/workspaces/\(other)/routes").status == 404, "another workspace is not found, not forbidden")
            #expect(try await viewer.get("/platform/routes").status == 403)
            let owner = try await AdminPageTests.signIn(api, token: try await api.addMember(ws, role: "owner"))
            #expect(try await owner.get("/platform/routes").status == 403)
            #expect(try await owner.post("/platform/routes", ["name": "x", "step1_provider": "openai", "step1_model": "gpt-5.4-mini"]).status == 403)
            #expect(try await owner.post("/workspaces/\(other)/routes", ["name": "x", "step1_provider": "openai", "step1_model": "gpt-5.4-mini"]).status == 404)
            #expect(try await owner.get("/workspaces/\(ws)/routes").body.contains(#"name="step1_provider""#), "an owner may edit")
        }
    }

    @Test("the platform's routes have their own page beside the provider cards: create, list, delete")
    func platformRoutes() async throws {
        try await APIHarness.run { harness, api in
            let admin = try await AdminPageTests.signIn(api, token: harness.adminToken)
            let cards = try await admin.get("/platform/providers")
            #expect(cards.body.contains(#"<a href="/platform/routes" >Routes</a>"#), "the platform's nav links to it")
            let page = try await admin.get("/platform/routes")
            #expect(page.status == 200 && page.body.contains("Chat routes <span class=\"muted\">· Platform</span>") && page.body.contains("No routes yet."))
            let saved = try await admin.post("/platform/routes", ["name": "default", "step1_provider": "openai", "step1_model": "gpt-5.4-mini",
                                                                  "step2_provider": "anthropic", "step2_model": "claude-opus-4-7"])
            #expect(saved.status == 303 && saved.location == "/platform/routes?notice=saved&route=default")
            #expect(try await Self.apiSteps(api, token: harness.adminToken, "/api/v1/platform/routes", route: "default")
                    == ["openai/gpt-5.4-mini", "anthropic/claude-opus-4-7"])
            let listed = try await admin.get("/platform/routes")
            #expect(listed.body.contains("openai / gpt-5.4-mini → anthropic / claude-opus-4-7"))
            let bad = try await admin.post("/platform/routes", ["name": "default", "step1_provider": "nosuch", "step1_model": "m"])
            #expect(bad.status == 400 && bad.body.contains("There is no provider &#39;nosuch&#39;."))
            let deleted = try await admin.post("/platform/routes/default/delete", [:])
            #expect(deleted.status == 303)
            #expect(try await Self.apiSteps(api, token: harness.adminToken, "/api/v1/platform/routes", route: "default") == nil)
            #expect(try await admin.post("/platform/routes/default/delete", [:]).status == 404, "an unknown route is not found")
        }
    }
}
