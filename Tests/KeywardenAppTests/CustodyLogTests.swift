import Foundation
import KeywardenCore
import KeywardenTestSupport
import SQLKit
import Testing
@testable import KeywardenApp
@testable import KeywardenStore

/// Each workspace's custody log: every use of its own secrets, hash-chained per workspace, read by its owners only.
@Suite("Custody log")
struct CustodyLogTests {
    func principal(_ workspaceID: String?, _ permissions: Set<Permission>, kind: TokenKind = .member) -> Principal {
        Principal(tokenID: "tok_custody", kind: kind, workspaceID: workspaceID, role: .owner, permissions: permissions, name: "test")
    }

    /// The minute a moment falls in.
    static func minute(of date: Date) -> Int { Int((date.timeIntervalSince1970 / 60).rounded(.down)) }

    func usage(_ workspaceID: String, _ credentialID: String, at: Date, source: KeySource = .byok) -> UsageRecord {
        UsageRecord(at: at, workspaceID: workspaceID, providerID: "openai", model: "gpt-5.4-mini", credentialID: credentialID, source: source,
                    modality: .chat, consumer: nil, status: 200, latencyMilliseconds: 5, counts: UsageCounts(inputTokens: 1, outputTokens: 1),
                    milliCredits: 0, attempts: 1)
    }

    @Test("gateway calls are counted per key per minute; reveals and rotations are entries of their own; the platform's keys are not a workspace's")
    func usesAreRecorded() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Custody", byokAllowed: true, exclusive: false, actor: "test").id
        let request = NewKeyRequest(providerID: "openai", description: "Own", apiKey: Secret("sk-custody-0000000000001"), extras: [:], defaultModel: nil,
                                    role: nil, weight: nil, active: true, expiresAt: nil, rotateByDays: nil)
        let key = try await app.keys.create(workspaceID: ws, request, actor: "token:tok_owner").credential

        // Calls in two minutes on the key, one on a platform key: the usage ledger's batches.
        let minute = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 60).rounded(.down) * 60 - 120)
        try await app.record([usage(ws, key.id, at: minute.addingTimeInterval(1)), usage(ws, key.id, at: minute.addingTimeInterval(30)),
                              usage(ws, "key_platform", at: minute.addingTimeInterval(31), source: .platform)], settling: [], thresholdsFailed: { _ in })
        try await app.record([usage(ws, key.id, at: minute.addingTimeInterval(59)), usage(ws, key.id, at: minute.addingTimeInterval(61))],
                             settling: [], thresholdsFailed: { _ in })
        // The minute under way is not appended until it ends, or the process stops. (On a loaded machine the minute may
        // turn before the append: then it has ended, and it is appended.)
        let now = Date()
        try await app.record([usage(ws, key.id, at: now)], settling: [], thresholdsFailed: { _ in })
        let beforeAppend = Self.minute(of: Date())
        await app.appendCustody()
        let afterAppend = Self.minute(of: Date())
        // The append read its clock between the two readings: when they differ and the call's minute is the first, either
        // answer is right, and the run is judged by what the log says.
        let underWay = Self.minute(of: now)
        let turned: Bool
        if underWay == afterAppend {
            turned = false
        } else if underWay < beforeAppend {
            turned = true
        } else {
            turned = try await app.custody.page(workspaceID: ws, pagination: try Pagination(page: 1, perPage: 50),
                                                principal: principal(ws, [.auditRead])).1 == 3
        }
        _ = try await app.resolution.reveal(key, source: .byok, actor: "token:tok_service")

        let owner = principal(ws, [.auditRead])
        var (entries, total, names) = try await app.custody.page(workspaceID: ws, pagination: try Pagination(page: 1, perPage: 50), principal: owner)
        #expect(total == (turned ? 4 : 3) && names[key.id] == "Own")
        let calls = entries.filter { $0.use == .gatewayCall }.sorted { $0.seq < $1.seq }
        #expect(calls.map(\.count) == (turned ? [3, 1, 1] : [3, 1]), "3 calls in the first minute, 1 in the next (the platform's key is not counted)")
        #expect(calls.first?.firstAt == Timestamp.string(minute.addingTimeInterval(1)) && calls.first?.lastAt == Timestamp.string(minute.addingTimeInterval(59)))
        #expect(calls.allSatisfy { $0.credentialID == key.id && $0.actor.hasPrefix("instance:") })
        #expect(entries.first?.use == .reveal && entries.first?.actor == "token:tok_service")

        await app.close()  // appends the minute under way
        let (reopened, _) = try await fixture.open(create: false)
        (entries, total, _) = try await reopened.custody.page(workspaceID: ws, pagination: try Pagination(page: 1, perPage: 50), principal: owner)
        #expect(total == 4 && entries.first?.use == (turned ? .reveal : .gatewayCall), "the minute under way, appended at close")
        #expect(entries.filter { $0.use == .gatewayCall }.map(\.count).sorted() == [1, 1, 3])
        let verified = try await reopened.custody.verify()
        #expect(verified.isIntact && verified.entries == 4 && verified.chains == 1)
        await reopened.close()
    }

    @Test("another workspace's token is answered not found, one without audit.read forbidden; a platform admin reads it")
    func onlyTheWorkspaceReads() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let ws = try await app.workspaceService.create(name: "Mine", byokAllowed: true, exclusive: false, actor: "test").id
        let other = try await app.workspaceService.create(name: "Theirs", byokAllowed: true, exclusive: false, actor: "test").id
        let page = try Pagination(page: 1, perPage: 10)
        do { _ = try await app.custody.page(workspaceID: ws, pagination: page, principal: principal(other, Set(Permission.allCases))); Issue.record("read") }
        catch let error as KeywardenError { #expect(error.kind == .notFound) }
        do { _ = try await app.custody.page(workspaceID: ws, pagination: page, principal: principal(ws, [.keysRead])); Issue.record("read") }
        catch let error as KeywardenError { #expect(error.kind == .forbidden) }
        let admin = Principal(tokenID: "tok_admin", kind: .platformAdmin, workspaceID: nil, role: nil, permissions: [], name: "admin")
        #expect(try await app.custody.page(workspaceID: ws, pagination: page, principal: admin).total == 0)
        do { _ = try await app.custody.page(workspaceID: "ws_missing", pagination: page, principal: admin); Issue.record("read") }
        catch let error as KeywardenError { #expect(error.kind == .notFound) }
        await app.close()
    }

    @Test("an entry edited, removed or moved to another workspace's chain breaks the chain, and verification names it")
    func tamperingIsFound() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let log = CustodyLog()
        try await app.engine.transaction { db in
            for workspace in ["ws_a", "ws_b"] {
                try await log.append((1...4).map { CustodyEvent(use: .test, credentialID: "key_\($0)", actor: "cli") }, workspaceID: workspace, on: db)
            }
        }
        #expect(try await log.verify(app.engine).isIntact)
        try await app.engine.transaction { db in
            try await db.update(CustodyLog.table).set("count", to: 7).where("workspace_id", .equal, "ws_b").where("seq", .equal, 2).run()
        }
        var outcome = try await log.verify(app.engine)
        #expect(outcome.firstBroken?.workspaceID == "ws_b" && outcome.firstBroken?.seq == 2 && outcome.firstBroken?.reason.contains("edited") == true)
        try await app.engine.transaction { db in
            try await db.update(CustodyLog.table).set("count", to: 1).where("workspace_id", .equal, "ws_b").where("seq", .equal, 2).run()
            try await db.delete(from: CustodyLog.table).where("workspace_id", .equal, "ws_a").where("seq", .equal, 3).run()
        }
        outcome = try await log.verify(app.engine)
        #expect(outcome.firstBroken?.workspaceID == "ws_a" && outcome.firstBroken?.seq == 4 && outcome.firstBroken?.reason.contains("gap") == true)
        // A chain copied under another workspace's id does not verify there: the genesis is the workspace's own.
        let copied = try await app.engine.read { db in try await log.entries(workspaceID: "ws_b", after: 0, limit: 10, on: db) }
        #expect(copied.first?.prevHash == CustodyEntry.genesisHash(workspaceID: "ws_b") && CustodyEntry.genesisHash(workspaceID: "ws_b") != CustodyEntry.genesisHash(workspaceID: "ws_c"))
        await app.close()
    }
}
