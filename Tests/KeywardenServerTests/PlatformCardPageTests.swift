import Foundation
import KeywardenTestSupport
import Testing

/// A platform card's Test and Activate buttons submit the card: a key typed into it is saved first, and the answer is a
/// redirect back to the card (a reload sends nothing again).
@Suite("Admin pages: platform card actions")
struct PlatformCardPageTests {
    @Test("the cards filter by category and search (without script); each key field says where to get the key; busy buttons are marked")
    func cardsFilterAndHelp() async throws {
        try await APIHarness.run { harness, api in
            let admin = try await AdminPageTests.signIn(api, token: harness.adminToken)
            let all = try await admin.get("/platform/providers")
            #expect(all.body.contains("Create one at platform.openai.com → API keys.") && all.body.contains(#"data-busy="Testing…""#))
            let voice = try await admin.get("/platform/providers?category=voice")
            #expect(voice.body.contains(#"id="elevenlabs""#) && !voice.body.contains(#"id="openai""#) && voice.body.contains("Showing "))
            #expect(voice.body.contains(#"<option value="voice" selected>Voice</option>"#))
            let search = try await admin.get("/platform/providers?search=anthrop")
            #expect(search.body.contains(#"id="anthropic""#) && !search.body.contains(#"id="gemini""#))
            let none = try await admin.get("/platform/providers?category=llm&search=zzz-nothing")
            #expect(none.status == 200 && !none.body.contains(#"<section class="card provider""#) && none.body.contains("No provider matches this filter."))
            // The workspace's own twenty cards filter the same way.
            let ws = try await api.createWorkspace("Filtered")
            let byok = try await admin.get("/workspaces/\(ws)/byok?category=voice")
            #expect(byok.body.contains(#"id="card-elevenlabs""#) && !byok.body.contains(#"id="card-openai""#) && byok.body.contains("Showing "))
        }
    }

    @Test("Activate with a freshly typed key saves it, activates the card and redirects to it; an empty card still meets the guard")
    func activateSavesTypedKey() async throws {
        try await APIHarness.run { harness, api in
            let admin = try await AdminPageTests.signIn(api, token: harness.adminToken)
            let activated = try await admin.post("/platform/providers/openai/activate", ["api_key": "sk-typed-then-activated-0001", "display_order": "10"])
            #expect([302, 303].contains(activated.status) && activated.location == "/platform/providers?notice=activated&provider=openai#openai",
                    "\(activated.status) \(activated.location ?? "-")")
            func card(_ id: String) async throws -> [String: Any] {
                let cards = try await api.get("/api/v1/platform/providers", token: harness.adminToken)
                return (cards.json["providers"] as? [[String: Any]])?.first { $0["provider"] as? String == id } ?? [:]
            }
            let openai = try await card("openai")
            #expect(openai["active"] as? Bool == true && (openai["key"] as? [String: Any])?["has_key"] as? Bool == true, "\(openai)")
            let page = try await admin.get("/platform/providers?notice=activated&provider=openai")
            #expect(page.body.contains("OpenAI activated."))
            // Nothing typed: the guard speaks as before, on the card.
            let guarded = try await admin.post("/platform/providers/anthropic/activate", ["display_order": "20"])
            #expect(guarded.status == 409 && guarded.body.contains("Add an API key before activating."))
            // A typed key the card refuses (two lines) is not saved, and says why on the page.
            let refused = try await admin.post("/platform/providers/mistral/activate", ["api_key": "sk-bad\nkey"])
            #expect(refused.status == 422, "\(refused.status)")
            #expect((try await card("mistral")["key"] as? [String: Any])?["has_key"] as? Bool == false)
        }
    }

    @Test("Deactivate asks first, saying how many workspaces lose the key; a card's key can be removed (the card turns inactive, audited, 404 the second time)")
    func deactivateWarnsAndKeyRemoves() async throws {
        try await APIHarness.run { harness, api in
            let admin = try await AdminPageTests.signIn(api, token: harness.adminToken)
            _ = try await api.put("/api/v1/platform/providers/openai", token: harness.adminToken, json: ["api_key": "sk-platform-remove-me-0001"])
            _ = try await api.post("/api/v1/platform/providers/openai/activate", token: harness.adminToken)
            let relying = try await api.createWorkspace("Relies on the platform")
            let own = try await api.createWorkspace("Brings its own")
            _ = try await api.post("/api/v1/workspaces/\(own)/keys", token: harness.adminToken, json: ["provider": "openai", "description": "own", "api_key": "sk-own-0123456789"])
            _ = relying
            let page = try await admin.get("/platform/providers")
            #expect(page.body.contains("Deactivate OpenAI? 1 workspace has no active OpenAI key of its own"), "the confirmation counts the workspaces cut off")
            let removed = try await api.call(.delete, "/api/v1/platform/providers/openai/key", token: harness.adminToken)
            #expect(removed.status == 200 && removed.object("card")["active"] as? Bool == false, "\(removed.text)")
            #expect((removed.object("card")["key"] as? [String: Any])?["has_key"] as? Bool == false)
            #expect(try await api.call(.delete, "/api/v1/platform/providers/openai/key", token: harness.adminToken).status == 404)
            let audit = try await api.get("/api/v1/audit?per_page=20", token: harness.adminToken)
            #expect(audit.text.contains("credential.deleted") && audit.text.contains("platform_card.deactivated") && !audit.text.contains("sk-platform-remove-me"))
        }
    }
}
