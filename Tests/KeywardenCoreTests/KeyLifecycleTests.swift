import Foundation
import Testing
@testable import KeywardenCore

@Suite("Key lifecycle")
struct KeyLifecycleTests {
    let catalog: ProviderCatalog
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    init() throws { catalog = try ProviderCatalog.load() }

    func key(_ id: String, role: CredentialRole = .primary, position: Int = 0, status: VerificationStatus = .valid, previous: Bool = false) -> Credential {
        var key = Credential(id: id, scope: .workspace("ws"), providerID: "openai", description: id, role: role, position: position, active: true,
                             status: status, hint: "sk-…\(id.suffix(4))", createdAt: now, createdBy: "t", updatedAt: now, updatedBy: "t")
        if previous { key.lifecycle.previous = PreviousKey(hint: "sk-…old1", until: now.addingTimeInterval(3600)) }
        return key
    }

    func resolve(_ keys: [Credential], consumer: String? = nil, bindings: [Binding] = []) -> [Candidate] {
        let snapshot = ResolutionSnapshot(workspaces: ["ws": .init(byokAllowed: true)], credentials: keys,
                                          platformCards: ["openai": .init(active: false, defaultModel: nil)], bindings: bindings, managedDefault: nil)
        return (try? Resolver.resolve(ResolutionQuery(workspaceID: "ws", providerID: "openai", consumer: consumer), in: snapshot, catalog: catalog).get()) ?? []
    }

    @Test("a rotated key's old secret is its own fallback, right after the new one and before the next key; a binding keeps both")
    func previousSecretFollowsItsKey() {
        let chain = resolve([key("prim", previous: true), key("fb", role: .fallback, position: 1)])
        #expect(chain.map(\.credentialID) == ["prim", "prim", "fb"])
        #expect(chain.map(\.slot) == [.current, .previous, .current])
        let bound = resolve([key("prim"), key("pool", role: .pool, previous: true)], consumer: "a",
                            bindings: [Binding(workspaceID: "ws", consumer: "a", modality: .chat, credentialID: "pool")])
        #expect(bound.map(\.credentialID) == ["pool", "pool", "prim"] && bound.prefix(2).map(\.reason) == ["binding", "binding"])
    }

    @Test("a key whose new secret is known bad is served by its old one alone during the grace period; without one it is skipped")
    func badNewSecretLeavesTheOldOne() {
        let chain = resolve([key("prim", status: .invalid, previous: true), key("fb", role: .fallback, position: 1)])
        #expect(chain.map(\.credentialID) == ["prim", "fb"] && chain.first?.slot == .previous)
        #expect(resolve([key("prim", status: .invalid), key("fb", role: .fallback, position: 1)]).map(\.credentialID) == ["fb"])
        // Cooling down rests both secrets (a 429 is the account's).
        let snapshot = ResolutionSnapshot(workspaces: ["ws": .init(byokAllowed: true)], credentials: [key("prim", previous: true)],
                                          platformCards: [:], bindings: [], managedDefault: nil)
        let rested = Resolver.resolve(ResolutionQuery(workspaceID: "ws", providerID: "openai"), in: snapshot, catalog: catalog, coolingDown: ["prim"])
        #expect(((try? rested.get()) ?? []).isEmpty)
    }

    @Test("expiry and rotation-due notices are due once per date / per secret, at the right time")
    func noticesAreDueOnce() {
        var l = KeyLifecycle(expiresAt: now.addingTimeInterval(10 * 86_400), rotateByDays: 30, keySetAt: now.addingTimeInterval(-29 * 86_400))
        #expect(!l.expiryNoticeDue(at: now, noticeDays: 7))
        #expect(l.expiryNoticeDue(at: now, noticeDays: 14))
        #expect(l.expiryNoticeDue(at: now.addingTimeInterval(20 * 86_400), noticeDays: 0), "a date already past is announced too")
        l.expiryNoticeFor = l.expiresAt
        #expect(!l.expiryNoticeDue(at: now, noticeDays: 14))
        l.expiresAt = now.addingTimeInterval(12 * 86_400)
        #expect(l.expiryNoticeDue(at: now, noticeDays: 14), "a new date is announced again")

        #expect(!l.rotationNoticeDue(at: now))
        #expect(l.rotationNoticeDue(at: now.addingTimeInterval(86_400)))
        l.rotationNoticeFor = l.keySetAt
        #expect(!l.rotationNoticeDue(at: now.addingTimeInterval(86_400)))
        l.keySetAt = now
        #expect(!l.rotationNoticeDue(at: now.addingTimeInterval(86_400)) && l.rotationNoticeDue(at: now.addingTimeInterval(31 * 86_400)))
        #expect(KeyLifecycle().rotationDueAt == nil && !KeyLifecycle().expiryNoticeDue(at: now, noticeDays: 365))
        #expect(KeyLifecycle.days(from: now, to: now.addingTimeInterval(2.5 * 86_400)) == 2)
    }

    @Test("expiry dates and rotate-by ages out of range are refused with the field named")
    func checkRefusesOutOfRange() {
        for (expiry, days) in [(Date(timeIntervalSince1970: 0), nil), (Date(timeIntervalSince1970: 4_200_000_000), nil), (nil, 0), (nil, -5), (nil, 3651), (nil, Int.max)] as [(Date?, Int?)] {
            let error = #expect(throws: KeywardenError.self) { try KeyLifecycle.check(expiresAt: expiry, rotateByDays: days) }
            #expect(error?.field == (expiry == nil ? "rotate_by_days" : "expires_at"))
        }
        #expect(throws: Never.self) { try KeyLifecycle.check(expiresAt: now.addingTimeInterval(86_400), rotateByDays: 90) }
        #expect(throws: Never.self) { try KeyLifecycle.check(expiresAt: nil, rotateByDays: nil) }
    }
}
