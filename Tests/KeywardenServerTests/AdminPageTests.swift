import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KeywardenCore
import NIOCore
import Testing
@testable import KeywardenServer

/// The admin pages for workspaces, members and tokens, over HTTP: who may use them, CSRF on every form, a token value
/// shown once.
@Suite("Admin pages: workspaces, members, tokens")
struct AdminPageTests {
    /// A signed-in browser: its session cookie and the CSRF token its forms carry.
    struct Browser {
        let api: API
        let cookie: String
        let csrf: String

        func get(_ path: String) async throws -> (status: Int, body: String, location: String?) {
            try await api.client.execute(uri: path, method: .get, headers: [.cookie: cookie]) { response in
                (Int(response.status.code), String(buffer: response.body), response.headers[.location])
            }
        }

        func post(_ path: String, _ fields: [String: String], csrf: String? = nil) async throws -> (status: Int, body: String, location: String?) {
            let form = (fields.merging(["csrf_token": csrf ?? self.csrf]) { $1 })
                .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
            return try await api.client.execute(uri: path, method: .post, headers: [.cookie: cookie, .contentType: "application/x-www-form-urlencoded"],
                                                body: ByteBuffer(string: form)) { response in
                (Int(response.status.code), String(buffer: response.body), response.headers[.location])
            }
        }

        /// The form as a browser encodes it, with the CSRF token first.
        func encoded(_ pairs: [(String, String)]) -> String {
            ([("csrf_token", csrf)] + pairs)
                .map { "\($0.0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
                .joined(separator: "&")
        }

        /// Posts fields in the order given, a name as often as it comes (`events[]`).
        func post(_ path: String, pairs: [(String, String)]) async throws -> (status: Int, body: String, location: String?) {
            let form = encoded(pairs)
            return try await api.client.execute(uri: path, method: .post, headers: [.cookie: cookie, .contentType: "application/x-www-form-urlencoded"],
                                                body: ByteBuffer(string: form)) { response in
                (Int(response.status.code), String(buffer: response.body), response.headers[.location])
            }
        }

        /// Posts a form and follows its redirect as a browser does, with the one-time message cookie it set: the page the
        /// redirect lands on, that cookie, and whether the landing page cleared it.
        func submit(_ path: String, _ fields: [String: String]) async throws -> (posted: Int, page: (status: Int, body: String), flash: String?, cleared: Bool) {
            try await submit(path, pairs: fields.map { ($0.key, $0.value) })
        }

        /// ``submit(_:_:)`` with fields in the order given, a name as often as it comes (`permissions[]`).
        func submit(_ path: String, pairs: [(String, String)]) async throws -> (posted: Int, page: (status: Int, body: String), flash: String?, cleared: Bool) {
            let form = encoded(pairs)
            let (status, location, flash) = try await api.client.execute(
                uri: path, method: .post, headers: [.cookie: cookie, .contentType: "application/x-www-form-urlencoded"], body: ByteBuffer(string: form)
            ) { response in
                (Int(response.status.code), response.headers[.location],
                 response.headers[values: .setCookie].first { $0.hasPrefix("kw_flash=") }?.split(separator: ";").first.map(String.init))
            }
            guard let location else { return (status, (0, ""), flash, false) }
            let target = String(location.prefix { $0 != "#" })
            let landed = try await landing(target, flash: flash)
            return (status, (landed.status, landed.body), flash, landed.cleared)
        }

        /// A GET carrying a one-time message cookie (as the browser sends it after a redirect, or replays it).
        func landing(_ path: String, flash: String?) async throws -> (status: Int, body: String, cleared: Bool) {
            try await api.client.execute(uri: path, method: .get, headers: [.cookie: [cookie, flash].compactMap { $0 }.joined(separator: "; ")]) { response in
                (Int(response.status.code), String(buffer: response.body),
                 response.headers[values: .setCookie].contains { $0.hasPrefix("kw_flash=;") && $0.contains("Max-Age=0") })
            }
        }
    }

    static func signIn(_ api: API, token: String) async throws -> Browser {
        let page = try await api.client.execute(uri: "/login", method: .get) { response in
            (response.headers[.setCookie] ?? "", String(buffer: response.body))
        }
        let loginCookie = page.0.split(separator: ";").first.map(String.init) ?? ""
        let csrf = csrfToken(in: page.1)
        let session = try await api.client.execute(uri: "/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded", .cookie: loginCookie],
                                                   body: ByteBuffer(string: "csrf_token=\(csrf)&token=\(token)")) { response in
            response.headers[values: .setCookie].first { $0.hasPrefix("kw_session=") }?.split(separator: ";").first.map(String.init) ?? ""
        }
        let home = try await api.client.execute(uri: "/", method: .get, headers: [.cookie: session]) { $0.headers[.location] ?? "/" }
        let body = try await api.client.execute(uri: home, method: .get, headers: [.cookie: session]) { String(buffer: $0.body) }
        return Browser(api: api, cookie: session, csrf: csrfToken(in: body))
    }

    static func csrfToken(in html: String) -> String {
        let marker = #"name="csrf_token" value=""#
        return html.range(of: marker).map { String(html[$0.upperBound...].prefix { $0 != "\"" }) } ?? ""
    }

    @Test("a service token created on the members page is shown once, with the SDK snippet, and works at once")
    func serviceTokenShownOnce() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Pages Co")
            let admin = try await Self.signIn(api, token: harness.adminToken)
            let created = try await admin.submit("/workspaces/\(ws)/tokens", pairs: [("name", "Backend"), ("permissions[]", "gateway.use"), ("permissions[]", "usage.read")])
            #expect(created.posted == 303 && created.page.status == 200 && created.cleared, "post / redirect / get; the landing page clears the message")
            let body = created.page.body
            let value = try #require(body.range(of: #"id="revealed-value">"#).map { String(body[$0.upperBound...].prefix { $0 != "<" }) })
            #expect(value.hasPrefix("kw_") && body.contains("api_key=&quot;\(value)&quot;") && body.contains("Service token “Backend” created."))
            #expect(try await api.get("/api/v1/usage?workspace=\(ws)", token: value).status == 200, "the new token works")
            let again = try await admin.get("/workspaces/\(ws)/members")
            #expect(again.status == 200 && !again.body.contains(value) && again.body.contains("Backend"))
            let tokens = try await api.get("/api/v1/workspaces/\(ws)/tokens", token: harness.adminToken)
            #expect((tokens.json["items"] as? [[String: Any]])?.filter { $0["name"] as? String == "Backend" }.count == 1, "a reload minted nothing")
            // The sealed message opens for its own session only: replayed in another, or tampered with, it shows nothing.
            let other = try await Self.signIn(api, token: harness.adminToken)
            let replayed = try await other.landing("/workspaces/\(ws)/members", flash: created.flash)
            #expect(replayed.status == 200 && !replayed.body.contains(value))
            if let flash = created.flash {
                var bytes = Array(flash.utf8)
                let middle = bytes.count * 2 / 3
                bytes[middle] = bytes[middle] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
                let forged = try await admin.landing("/workspaces/\(ws)/members", flash: String(decoding: bytes, as: UTF8.self))
                #expect(forged.status == 200 && !forged.body.contains(value) && !forged.body.contains("revealed-value"))
            }
            // A message is for the page its POST redirected to: another page (another tab) leaves it for that page.
            let second = try await api.client.execute(
                uri: "/workspaces/\(ws)/tokens", method: .post, headers: [.cookie: admin.cookie, .contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "csrf_token=\(admin.csrf)&name=Second&permissions%5B%5D=gateway.use")
            ) { response in response.headers[values: .setCookie].first { $0.hasPrefix("kw_flash=") }?.split(separator: ";").first.map(String.init) }
            let elsewhere = try await admin.landing("/workspaces/\(ws)/keys", flash: second)
            #expect(elsewhere.status == 200 && !elsewhere.cleared && !elsewhere.body.contains("revealed-value"))
            let meant = try await admin.landing("/workspaces/\(ws)/members", flash: second)
            #expect(meant.cleared && meant.body.contains("Service token “Second” created.") && meant.body.contains("revealed-value"))
            // A member added on the page: its sign-in token shown once, one member however often the page is reloaded.
            let added = try await admin.submit("/workspaces/\(ws)/members", ["name": "Dana", "role": "member"])
            #expect(added.posted == 303 && added.page.body.contains("Dana added as member.") && added.page.body.contains(#"id="revealed-value">kw_"#))
            _ = try await admin.get("/workspaces/\(ws)/members")
            let members = try await api.get("/api/v1/workspaces/\(ws)/members", token: harness.adminToken)
            #expect((members.json["items"] as? [[String: Any]])?.filter { $0["name"] as? String == "Dana" }.count == 1)
        }
    }

    @Test("Save & Verify and Test answer with a redirect to the key's row, its result shown once; a reload creates and tests nothing again")
    func keyFormsPostRedirectGet() async throws {
        try await APIHarness.run(settings: ServerSettings(host: "127.0.0.1", port: 0, verifyTimeoutSeconds: 1)) { harness, api in
            let ws = try await api.createWorkspace("PRG")
            let admin = try await Self.signIn(api, token: harness.adminToken)
            let saved = try await admin.submit("/workspaces/\(ws)/keys", ["provider": "ollama", "description": "Reloaded", "api_key": "sk-prg-000000000001", "extras[base_url]": "http://127.0.0.1:9", "verify": "1"])
            #expect(saved.posted == 303 && saved.page.status == 200 && saved.cleared)
            #expect(saved.page.body.contains("API key created.") && saved.page.body.contains(#"<p class="row-note"#), "the result is on the row")
            let reload = try await admin.get("/workspaces/\(ws)/keys")
            #expect(!reload.body.contains("API key created.") && !reload.body.contains(#"<p class="row-note"#), "shown once")
            let keys = try await api.get("/api/v1/workspaces/\(ws)/keys", token: harness.adminToken)
            let items = keys.json["items"] as? [[String: Any]] ?? []
            #expect(items.count == 1, "one key, however often the page is reloaded")
            let id = try #require(items.first?["id"] as? String)
            let tested = try await admin.submit("/workspaces/\(ws)/keys/\(id)/test", [:])
            #expect(tested.posted == 303 && tested.page.body.contains(#"<p class="row-note"#))
        }
    }

    @Test("a key's settings that are not secret are shown as saved and can be cleared; sent back unchanged they change nothing")
    func visibleExtrasShownAndCleared() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Extras")
            let key = try await api.createKey(ws, provider: "anthropic", description: "Claude", key: "sk-ant-extras-canary-000001",
                                              extras: ["default_max_tokens": "2048"])
            let id = try #require(key["id"] as? String)
            let admin = try await Self.signIn(api, token: harness.adminToken)
            let edit = try await admin.get("/workspaces/\(ws)/keys/\(id)")
            #expect(edit.body.contains(#"name="extras[default_max_tokens]" type="number" autocomplete="off" placeholder="4096" value="2048""#))
            #expect(edit.body.contains("Clear Default max tokens") && !edit.body.contains("sk-ant-extras-canary"), "the key itself stays masked")
            let before = try await api.get("/api/v1/audit?target_id=\(id)&action=credential.updated", token: harness.adminToken)
            let same = try await admin.post("/workspaces/\(ws)/keys/\(id)", ["description": "Claude", "extras[default_max_tokens]": "2048"])
            #expect(same.status == 303)
            let after = try await api.get("/api/v1/audit?target_id=\(id)&action=credential.updated", token: harness.adminToken)
            #expect(before.json["total"] as? Int == after.json["total"] as? Int, "the same value sent back is no change")
            let cleared = try await admin.post("/workspaces/\(ws)/keys/\(id)", ["description": "Claude", "clear_extras[]": "default_max_tokens"])
            #expect(cleared.status == 303)
            let stored = try await api.get("/api/v1/workspaces/\(ws)/keys/\(id)", token: harness.adminToken)
            #expect((stored.json["extras_set"] as? [String])?.contains("default_max_tokens") == false, "\(stored.text)")
            // A URL that carries credentials stays masked; a plain one is shown.
            let withCredentials = try await api.createKey(ws, provider: "ollama", description: "Hosted", key: "ollama-extras-000000001",
                                                          extras: ["base_url": "https://user:pw-canary@llm.example.com/v1?api_key=q-canary"], active: false)
            let hosted = try await admin.get("/workspaces/\(ws)/keys/\(try #require(withCredentials["id"] as? String))")
            #expect(hosted.status == 200 && !hosted.body.contains("canary") && hosted.body.contains("saved — leave blank to keep"))
            let plain = try await api.createKey(ws, provider: "ollama", description: "Plain", key: "ollama-extras-000000002",
                                                extras: ["base_url": "https://llm.example.com/v1"], active: false)
            let plainPage = try await admin.get("/workspaces/\(ws)/keys/\(try #require(plain["id"] as? String))")
            #expect(plainPage.body.contains(#"value="https://llm.example.com/v1""#))
        }
    }

    @Test("a page the token may not open says it is a permission, and what to do; a missing one says not found")
    func forbiddenPageSaysPermission() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Perms")
            let viewer = try await api.addMember(ws, role: "viewer")
            let browser = try await Self.signIn(api, token: viewer)
            let members = try await browser.get("/workspaces/\(ws)/members")
            #expect(members.status == 403 && members.body.contains("You do not have permission for this") && members.body.contains("members.manage"))
            let platform = try await browser.get("/platform/providers")
            #expect(platform.status == 403 && platform.body.contains("Ask the workspace&#39;s owner") || platform.body.contains("Ask the workspace&#x27;s owner"))
            let other = try await browser.get("/workspaces/ws_missing/keys")
            #expect(other.status == 404 && other.body.contains("<h1>Not found</h1>"))
        }
    }

    @Test("every form of the new pages refuses a POST without the session's CSRF token, and changes nothing")
    func formsNeedCSRF() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Guarded")
            let admin = try await Self.signIn(api, token: harness.adminToken)
            let created = try await api.post("/api/v1/workspaces/\(ws)/keys", token: harness.adminToken,
                                             json: ["provider": "openai", "description": "Guarded key", "api_key": "sk-guarded-0001"])
            let key = try #require((created.json["key"] as? [String: Any])?["id"] as? String)
            _ = try await api.put("/api/v1/platform/plans/kept", token: harness.adminToken, json: [String: Any]())
            let forms: [(String, [String: String])] = [
                ("/workspaces/\(ws)/plan", ["plan": ""]),
                ("/platform/plans", ["plan_name": "forged", "requests_per_minute": "1"]),
                ("/platform/plans/kept/delete", [:]),
                ("/workspaces/\(ws)/keys/\(key)/rotation/stage", ["api_key": "sk-forged-0002"]),
                ("/workspaces/\(ws)/keys/\(key)/rotation/test", [:]),
                ("/workspaces/\(ws)/keys/\(key)/rotation/promote", ["force": "true"]),
                ("/workspaces/\(ws)/keys/\(key)/rotation/finish", [:]),
                ("/workspaces/\(ws)/keys/\(key)/rotation/cancel", [:]),
                ("/workspaces", ["name": "Forged"]),
                ("/workspaces/\(ws)/rename", ["name": "Forged"]),
                ("/workspaces/\(ws)/byok", [:]),
                ("/workspaces/\(ws)/delete", [:]),
                ("/workspaces/\(ws)/members", ["name": "Forged", "role": "owner"]),
                ("/workspaces/\(ws)/tokens", ["name": "Forged", "permissions[]": "gateway.use"]),
            ]
            for (path, fields) in forms {
                for forged in ["", "forged", admin.csrf + "x", String(admin.csrf.dropLast())] {
                    let answer = try await admin.post(path, fields, csrf: forged)
                    #expect(answer.status == 403, "\(path) with csrf \(forged.prefix(4))… → \(answer.status)")
                }
            }
            let workspace = try await api.get("/api/v1/workspaces/\(ws)", token: harness.adminToken)
            #expect(workspace.json["name"] as? String == "Guarded" && workspace.json["byok_allowed"] as? Bool == true)
            #expect((try await api.get("/api/v1/workspaces/\(ws)/members", token: harness.adminToken).json["items"] as? [Any])?.isEmpty == true)
            #expect((try await api.get("/api/v1/workspaces/\(ws)/tokens", token: harness.adminToken).json["items"] as? [Any])?.isEmpty == true)
            let keyAfter = try await api.get("/api/v1/workspaces/\(ws)/keys/\(key)", token: harness.adminToken)
            #expect((keyAfter.json["lifecycle"] as? [String: Any])?["staged"] == nil, "no forged rotation step took effect")
            #expect(try await api.get("/api/v1/platform/plans/forged", token: harness.adminToken).status == 404)
        }
    }

    @Test("the platform's card key rotates from its own page: stage, promote, the old key kept; forged CSRF and other roles are refused")
    func cardRotationPage() async throws {
        try await APIHarness.run { harness, api in
            _ = try await api.put("/api/v1/platform/providers/openai", token: harness.adminToken, json: ["api_key": "sk-card-old-0001"])
            let admin = try await Self.signIn(api, token: harness.adminToken)
            let cards = try await admin.get("/platform/providers")
            #expect(cards.body.contains(#"href="/platform/providers/openai/rotation""#), "a card with a key offers its rotation")
            let page = try await admin.get("/platform/providers/openai/rotation")
            #expect(page.status == 200 && page.body.contains("Rotate this key") && page.body.contains("sk-…0001"))
            for step in ["stage", "test", "promote", "finish", "cancel"] {
                for forged in ["", admin.csrf + "x"] {
                    let answer = try await admin.post("/platform/providers/openai/rotation/\(step)", ["api_key": "sk-card-forged-0009", "force": "true"], csrf: forged)
                    #expect(answer.status == 403, "\(step) with a forged token → \(answer.status)")
                }
            }
            let staged = try await admin.post("/platform/providers/openai/rotation/stage", ["api_key": "sk-card-new-0002"])
            #expect(staged.status == 200 && staged.body.contains("New key staged") && !staged.body.contains("sk-card-new-0002"))
            let refused = try await admin.post("/platform/providers/openai/rotation/promote", ["grace_hours": "2"])
            #expect(refused.status == 409 && refused.body.contains("Test the new key"), "\(refused.status)")
            let promoted = try await admin.post("/platform/providers/openai/rotation/promote", ["grace_hours": "2", "force": "true"])
            #expect(promoted.status == 200 && promoted.body.contains("serves as its fallback until") && promoted.body.contains("sk-…0002"))
            let card = try await api.get("/api/v1/platform/providers", token: harness.adminToken)
            let openai = try #require((card.json["providers"] as? [[String: Any]])?.first { $0["provider"] as? String == "openai" })
            #expect(((openai["lifecycle"] as? [String: Any])?["previous"] as? [String: Any])?["hint"] as? String == "sk-…0001")
            // A workspace's people never reach the platform's key.
            let ws = try await api.createWorkspace("Tenant")
            let member = try await api.post("/api/v1/workspaces/\(ws)/members", token: harness.adminToken, json: ["name": "Olga", "role": "owner"])
            let owner = try await Self.signIn(api, token: try #require(member.json["token"] as? String))
            #expect(try await owner.get("/platform/providers/openai/rotation").status == 403)
            #expect(try await owner.post("/platform/providers/openai/rotation/finish", [:]).status == 403)
        }
    }

    @Test("a platform admin saves a plan on the Workspaces page and puts a workspace on it; bad limits come back as a clear error")
    func plansFromThePage() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Planned")
            let admin = try await Self.signIn(api, token: harness.adminToken)
            let saved = try await admin.post("/platform/plans", ["plan_name": "team", "platform_limit_credits": "250", "requests_per_minute": "120",
                                                                 "byok_limit_credits": "", "tokens_per_minute": ""])
            #expect(saved.status == 303 || saved.status == 302, "\(saved.status)")
            let plan = try await api.get("/api/v1/platform/plans/team", token: harness.adminToken)
            #expect(plan.json["platform_limit_credits"] as? Double == 250 && plan.json["requests_per_minute"] as? Int == 120 && plan.json["byok_limit_credits"] is NSNull)
            let set = try await admin.post("/workspaces/\(ws)/plan", ["plan": "team"])
            #expect(set.status == 303 || set.status == 302)
            #expect(try await api.get("/api/v1/workspaces/\(ws)", token: harness.adminToken).json["plan"] as? String == "team")
            let page = try await admin.get("/workspaces")
            #expect(page.body.contains(#"<option value="team" selected>team</option>"#) && page.body.contains("250"))
            let bad = try await admin.post("/platform/plans", ["plan_name": "Bad Name", "requests_per_minute": "0"])
            #expect(bad.status == 400 && bad.body.contains("plan"), "\(bad.status)")
            let inUse = try await admin.post("/platform/plans/team/delete", [:])
            #expect(inUse.status == 409 && inUse.body.contains("move them to another plan"))
        }
    }

    @Test("a workspace owner cannot reach the Workspaces page or another workspace's members; a viewer not even its own")
    func pagesFollowRoles() async throws {
        try await APIHarness.run { harness, api in
            let mine = try await api.createWorkspace("Mine")
            let theirs = try await api.createWorkspace("Theirs")
            let owner = try await Self.signIn(api, token: try await api.addMember(mine, role: "owner"))
            #expect(try await owner.get("/workspaces").status == 403)
            #expect(try await owner.post("/workspaces", ["name": "Sneaky"]).status == 403)
            #expect(try await owner.post("/workspaces/\(mine)/delete", [:]).status == 403)
            #expect(try await owner.post("/workspaces/\(mine)/byok", ["byok_allowed": "true"]).status == 403)
            #expect(try await owner.get("/workspaces/\(theirs)/members").status == 404, "another workspace is not found, not forbidden")
            #expect(try await owner.post("/workspaces/\(theirs)/tokens", ["name": "x", "permissions[]": "keys.read"]).status == 404)
            let members = try await owner.get("/workspaces/\(mine)/members")
            #expect(members.status == 200 && members.body.contains(#"value="gateway.use""#) && !members.body.contains(#"value="keys.reveal""#),
                    "an owner is offered the permissions the role holds, and gateway.use (the platform allows it by default)")
            let refused = try await owner.post("/workspaces/\(mine)/tokens", ["name": "Escalate", "permissions[]": "keys.reveal"])
            #expect(refused.status == 403, "and the server refuses the rest anyway: \(refused.status)")
            let viewer = try await Self.signIn(api, token: try await api.addMember(mine, role: "viewer"))
            #expect(try await viewer.get("/workspaces/\(mine)/members").status == 403)
            #expect(try await viewer.post("/workspaces/\(mine)/members", ["name": "x", "role": "owner"]).status == 403)
            let keys = try await viewer.get("/workspaces/\(mine)/keys")
            #expect(keys.status == 200 && !keys.body.contains("/members\""), "the header offers a viewer no Members link")
        }
    }

    @Test("a page's names resolve in its content first, then in the chrome; only the current section's nav flag is set")
    func viewModelLookup() {
        struct Content: Encodable { let title: String?; let rows: [Int] }
        let chrome = PageChrome(title: "Chrome title", csrf: "c", who: "w", isPlatformAdmin: false, canAudit: false, canManageMembers: false,
                                workspaceID: "ws_1", nav: "navKeys")
        let page = PageView(chrome: chrome, content: Content(title: nil, rows: [1]))
        #expect(page.child(named: "title") as? String == "Chrome title", "a nil in the content falls back to the chrome")
        #expect(PageView(chrome: chrome, content: Content(title: "Own", rows: [])).child(named: "title") as? String == "Own")
        #expect(page.child(named: "navKeys") as? Bool == true && page.child(named: "navUsage") == nil)
        #expect(page.child(named: "workspaceID") as? String == "ws_1" && page.child(named: "missing") == nil)
    }

    @Test("every value is escaped by Unicode scalar: a quote, a bracket or an ampersand followed by a combining mark stays text")
    func escapingByScalar() throws {
        let hostile = "x\"\u{301} formaction=/platform/providers/openai/deactivate y<\u{301}b>'\u{301}&\u{301}"
        let chrome = PageChrome(title: hostile, csrf: "c", who: hostile, isPlatformAdmin: true, canAudit: true, canManageMembers: true,
                                workspaceID: "ws_1", nav: "navWorkspaces", switcher: [.init(id: "ws_1", name: hostile, selected: true)], notice: hostile)
        let row = PagesController.WorkspacesPage.Row(id: "ws_1", name: hostile, byokAllowed: false, exclusive: false, keys: 1, calls: 2,
                                                     renaming: true, deleteWarning: "Delete “\(hostile)”?",
                                                     plans: [.init(value: hostile, label: hostile, selected: true)])
        let content = PagesController.WorkspacesPage(search: hostile, planRows: [.init(name: hostile, platformBudget: hostile, byokBudget: "1",
                                                                                           requestsPerMinute: "2", tokensPerMinute: "3", period: hostile)],
                                                     rows: [row], total: 1,
                                                     paging: .init(page: 1, perPage: 20, total: 1) { "/workspaces?page=\($0)" })
        let html = try #require(ServerResources.templates.render(PageView(chrome: chrome, content: content), withTemplate: "workspaces"))
        #expect(html.contains("&quot;\u{301} formaction"), "the quote is escaped, its mark kept")
        for raw in ["\"\u{301}", "<\u{301}", "'\u{301}", "&\u{301}"] {
            #expect(!html.unicodeScalars.map(String.init).joined().contains(raw), "\(raw.unicodeScalars.map { $0.value }) reached the page unescaped")
        }
    }

    @Test("a platform token's call naming a deleted workspace is refused, not served on the platform's keys")
    func deletedWorkspaceIsNotServed() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Gone Soon")
            let platform = try await api.serviceToken(nil, permissions: ["gateway.use"])
            #expect(try await api.delete("/api/v1/workspaces/\(ws)", token: harness.adminToken).status == 200)
            let answer = try await api.client.execute(uri: "/openai/v1/chat/completions", method: .post,
                                                      headers: [.authorization: "Bearer \(platform)", .contentType: "application/json",
                                                                HTTPField.Name("X-Keywarden-Workspace")!: ws],
                                                      body: ByteBuffer(string: #"{"model":"gpt-5.4-mini","messages":[]}"#)) { Int($0.status.code) }
            #expect(answer == 404)
        }
    }

    @Test("without JavaScript a key is added in two steps: the provider first, then its fields, required ones marked, before saving")
    func createKeyInTwoSteps() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Two steps")
            let admin = try await Self.signIn(api, token: harness.adminToken)
            let first = try await admin.get("/workspaces/\(ws)/keys")
            #expect(first.status == 200 && first.body.contains("Show its fields") && !first.body.contains("name=\"api_key\""))
            let second = try await admin.get("/workspaces/\(ws)/keys?new=azure-openai")
            #expect(second.body.contains("New Azure OpenAI key") && second.body.contains("name=\"extras[endpoint]\"")
                    && second.body.contains("name=\"extras[api_version]\"") && second.body.contains("Save &amp; Verify"))
            #expect(second.body.components(separatedBy: "(required)").count - 1 == 3, "the key, the endpoint and the API version")
            // The form posts the provider with it; without the required endpoint the service refuses (409, it would be activated).
            let refused = try await admin.post("/workspaces/\(ws)/keys", ["provider": "azure-openai", "description": "x", "api_key": "k-0123456789abcdef"])
            #expect([400, 409].contains(refused.status) && refused.body.contains("toast bad"), "refused with the service's reason: \(refused.status)")
            #expect(refused.body.contains("New Azure OpenAI key"), "the form comes back with its provider's fields")
        }
    }
}
