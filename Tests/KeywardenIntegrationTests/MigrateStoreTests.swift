import Foundation
import KeywardenTestSupport
import Testing

/// `keywarden migrate-store`: a populated SQLite data directory moves into an empty PostgreSQL database and serves from it.
@Suite("Moving a store to PostgreSQL", .serialized, .enabled(if: TestDatabase.postgresAvailable))
struct MigrateStoreTests {
    @Test("every key still opens (Test says valid), counts and the audit chain are equal, usage is kept; a non-empty target is refused; a second run resumes")
    func moveToPostgres() async throws {
        let mocks = try await MockVendorsProcess(vendors: ["openai", "anthropic"])
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("kw-move-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }

        // A populated SQLite store: a workspace with keys, a platform card, tokens, calls metered.
        let sqlite = try await GatewayRig(mocks: mocks, data: data, engine: .sqlite)
        let ws = try await sqlite.workspace("Moving")
        let key = try await sqlite.key(ws, secret: "sk-moving-workspace-0001")
        try await sqlite.platformCard("anthropic", secret: "sk-ant-moving-platform-0002")
        let token = try await sqlite.serviceToken(ws)
        for _ in 0..<3 { #expect(try await sqlite.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat).status == 200) }
        try await sqlite.eventually("three calls metered") {
            (try await sqlite.usage("group_by=provider")["totals"] as? [String: Any])?["requests"] as? Int == 3
        }
        let auditBefore = (try await sqlite.api("GET", "/api/v1/audit?per_page=1")["total"] as? Int) ?? -1
        let adminToken = sqlite.adminToken
        await sqlite.stop(mocksToo: false, keepData: true)

        let target = try await TestDatabase.create()
        let moved = try await KeywardenProcess.run(["migrate-store", "--data", data.path, "--to", target, "--batch-size", "7"])
        #expect(moved.status == 0, "\(moved.stdout) \(moved.stderr)")
        #expect(moved.stdout.contains("Audit chain on the target") && !moved.stdout.contains("broken"), "\(moved.stdout)")
        #expect(!(moved.stdout + moved.stderr).contains("sk-moving"))
        // Run again with the target in the environment (the password stays out of the process list): nothing is duplicated.
        let again = try await KeywardenProcess.run(["migrate-store", "--data", data.path], environment: ["KEYWARDEN_TARGET_DATABASE_URL": target])
        #expect(again.status == 0 && again.stdout.contains("Resumed"), "\(again.stdout) \(again.stderr)")
        let verify = try await KeywardenProcess.run(["audit", "verify", "--data", data.path], environment: ["KEYWARDEN_DATABASE_URL": target])
        #expect(verify.status == 0 && verify.stdout.contains("intact"), "\(verify.stdout) \(verify.stderr)")

        // The same data directory (its keyring) on PostgreSQL: the keys open, the token works, the ledger is there.
        try? FileManager.default.removeItem(at: data.appendingPathComponent(".test-database-url"))
        try target.write(to: data.appendingPathComponent(".test-database-url"), atomically: true, encoding: .utf8)
        let postgres = try await GatewayRig(mocks: mocks, data: data, engine: .postgres)
        defer { Task { await postgres.stop() } }
        let tested = try await postgres.api("POST", "/api/v1/workspaces/\(ws)/keys/\(key)/test", token: adminToken)
        #expect(tested["status"] as? String == "valid", "\(tested)")
        #expect(try await postgres.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat).status == 200)
        let totals = try await postgres.api("GET", "/api/v1/usage?group_by=provider", token: adminToken)["totals"] as? [String: Any]
        #expect((totals?["requests"] as? Int ?? 0) >= 3)
        let auditAfter = (try await postgres.api("GET", "/api/v1/audit?per_page=1", token: adminToken)["total"] as? Int) ?? -2
        #expect(auditAfter >= auditBefore && auditBefore > 0)

        // A target with data of its own (this one, now serving) is refused for another source.
        let other = FileManager.default.temporaryDirectory.appendingPathComponent("kw-move-other-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: other) }
        #expect(try await KeywardenProcess.run(["init", "--data", other.path]).status == 0)
        let refused = try await KeywardenProcess.run(["migrate-store", "--data", other.path, "--to", target])
        #expect(refused.status != 0)
    }
}
