import Testing
@testable import KeywardenApp

@Suite("E-mail address rule")
struct EmailRuleTests {
    @Test("one @ between a local part and a dotted domain, no whitespace, at most 254 code points; judged by scalar")
    func rule() {
        for text in ["a@b.c", "ops@example.com", "ø@\u{1F3FB}.k", "a.b+c@d-e.f.g", String(repeating: "a", count: 250) + "@b.c"] {
            #expect(WorkspaceService.looksLikeEmail(text), "\(text)")
        }
        for text in ["", "a", "a@b", "@b.c", "a@@b.c", "a@b.c@", "a@b@c.d", "a b@c.d", "a@b.c\n", "a@b.\u{3000}c", "a\u{85}@b.c",
                     String(repeating: "a", count: 251) + "@b.c"] {
            #expect(!WorkspaceService.looksLikeEmail(text), "\(text.debugDescription)")
        }
    }
}
