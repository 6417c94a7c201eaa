import Foundation
import KeywardenCore
import KeywardenTestSupport
import Synchronization
import Testing
@testable import KeywardenApp
import KeywardenStore

/// A token's last use (`tokens.last_used_at`), written when it authenticates: at most once a minute per token, off the
/// request path, never for a revoked token, and without making caches reload.
@Suite("Token last use")
struct TokenLastUsedTests {
    /// A clock the test moves by hand.
    final class ManualClock: Sendable {
        private let now = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        func read() -> Date { now.withLock { $0 } }
        func advance(_ seconds: TimeInterval) { now.withLock { $0 = $0.addingTimeInterval(seconds) } }
    }

    @Test("two authentications within a minute write once; the time shows in the token list; after the minute it moves")
    func writtenOncePerMinute() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let clock = ManualClock()
        app.tokenUsage.setClock { clock.read() }
        let ws = try await app.workspaceService.create(name: "Used", byokAllowed: true, exclusive: false, actor: "test").id
        let (member, token) = try await app.workspaceService.addMember(workspaceID: ws, name: "Ann", role: .member, actor: "test", actingRole: nil)
        func lastUsed() async throws -> String? {
            let tokens = try await app.workspaceService.listTokens(workspaceID: ws)
            return tokens.first { $0.memberID == member.id }?.lastUsedAt
        }
        #expect(try await lastUsed() == nil, "never used yet")
        let changes = app.engine.changes.value
        let started = app.tokenUsage.writesStarted

        // The first call reads the token (a cache miss), the second finds it cached: one write between them.
        #expect(try await app.authenticate(presented: token.value) != nil)
        clock.advance(30)
        #expect(try await app.authenticate(presented: token.value) != nil)
        await app.tokenUsage.waitForWrites()
        #expect(app.tokenUsage.writesStarted == started + 1)
        let first = Timestamp.string(Date(timeIntervalSince1970: 1_800_000_000))
        #expect(try await lastUsed() == first)
        #expect(app.engine.changes.value == changes, "the write changed no state: no cache reloads for it")

        // 61 s after the first write, the next use writes again (from the token cache this time).
        clock.advance(31)
        #expect(try await app.authenticate(presented: token.value) != nil)
        await app.tokenUsage.waitForWrites()
        #expect(app.tokenUsage.writesStarted == started + 2)
        #expect(try await lastUsed() == Timestamp.string(Date(timeIntervalSince1970: 1_800_000_061)))
        await app.close()
    }

    @Test("a revoked token is not written: it no longer authenticates, and a write already on its way leaves it alone")
    func revokedNotWritten() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let clock = ManualClock()
        app.tokenUsage.setClock { clock.read() }
        let ws = try await app.workspaceService.create(name: "Revoked", byokAllowed: true, exclusive: false, actor: "test").id
        let (record, token) = try await app.workspaceService.createServiceToken(
            workspaceID: ws, name: "svc", permissions: [.gatewayUse], mayGrantReveal: false, actor: "test"
        )
        try await app.workspaceService.revokeToken(workspaceID: ws, tokenID: record.id, actor: "test")
        let started = app.tokenUsage.writesStarted
        #expect(try await app.authenticate(presented: token.value) == nil)
        await app.tokenUsage.waitForWrites()
        #expect(app.tokenUsage.writesStarted == started, "an unknown or revoked token starts no write")

        // A write started just before the revocation committed finds the token revoked and changes nothing.
        app.tokenUsage.used(record.id)
        await app.tokenUsage.waitForWrites()
        let stored = try await app.engine.read { db in try await app.store.tokens.get(record.id, on: db) }
        #expect(stored?.revokedAt != nil && stored?.lastUsedAt == nil)
        await app.close()
    }

    @Test("the time only moves forward, and the recorder's memory stays bounded")
    func forwardAndBounded() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let clock = ManualClock()
        app.tokenUsage.setClock { clock.read() }
        let ws = try await app.workspaceService.create(name: "Forward", byokAllowed: true, exclusive: false, actor: "test").id
        let (record, token) = try await app.workspaceService.createServiceToken(
            workspaceID: ws, name: "svc", permissions: [.gatewayUse], mayGrantReveal: false, actor: "test"
        )
        #expect(try await app.authenticate(presented: token.value) != nil)
        await app.tokenUsage.waitForWrites()
        // Another instance's clock behind this one's: its write does not move the time back.
        clock.advance(-600)
        app.tokenUsage.used(record.id)
        await app.tokenUsage.waitForWrites()
        let stored = try await app.engine.read { db in try await app.store.tokens.get(record.id, on: db) }
        #expect(stored?.lastUsedAt == Timestamp.string(Date(timeIntervalSince1970: 1_800_000_000)))

        // A recorder remembers at most its capacity (10,000 by default), then starts over.
        #expect(app.tokenUsage.capacity == 10_000)
        let small = TokenUsageRecorder(store: app.store, capacity: 3)
        small.setClock { clock.read() }
        for index in 0..<7 { small.used("tok_unknown_\(index)") }
        #expect(small.remembered <= 3 && small.writesStarted == 7)
        await small.close()
        await app.close()
    }
}
