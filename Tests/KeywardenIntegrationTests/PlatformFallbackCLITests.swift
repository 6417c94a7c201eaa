import Foundation
import KeywardenTestSupport
import Testing

/// `keywarden workspaces set-platform-fallback`: who pays when a workspace's own keys cannot, set on the data directory
/// through the service the API uses; `plan` returns to the plan's setting.
@Suite("Management commands: platform fallback", .serialized)
struct PlatformFallbackCLITests {
    @Test("set-platform-fallback sets it (the API and workspaces list show it), plan clears it, a bad value is a one-line error")
    func setFromTheCommandLine() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("kw-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        let server = try KeywardenProcess(["serve", "--data", data.path, "--port", "0"])
        let port = try await server.waitUntilListening()
        let admin = try #require(await server.firstRunToken())
        let auth = ["Authorization": "Bearer \(admin)", "Content-Type": "application/json"]
        let workspace = try await KeywardenProcess.run(["workspaces", "create", "--data", data.path, "--name", "Payer"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(workspace.hasPrefix("ws_"))
        func apiValue() async throws -> String? {
            let reply = try await TestHTTP.get("http://127.0.0.1:\(port)/api/v1/workspaces/\(workspace)", headers: auth)
            let json = try JSONSerialization.jsonObject(with: Data(reply.text.utf8)) as? [String: Any]
            return json?["platform_fallback"] as? String
        }

        let set = try await KeywardenProcess.run(["workspaces", "set-platform-fallback", "--data", data.path, workspace, "never"])
        #expect(set.status == 0, "\(set.stderr)")
        #expect(set.stdout.contains("platform_fallback never (set for this workspace)") && set.stdout.contains("if they fail, the call fails"), "\(set.stdout)")
        #expect(try await apiValue() == "never")
        let listed = try await KeywardenProcess.run(["workspaces", "list", "--data", data.path])
        let row = listed.stdout.split(separator: "\n").first { $0.hasPrefix(workspace) }.map(String.init) ?? ""
        #expect(listed.stdout.contains("PLATFORM FALLBACK") && row.contains(" never "), "\(listed.stdout)")

        // Back to the plan's setting: the workspace's plan says on_failure_or_budget.
        let plan = try JSONSerialization.data(withJSONObject: ["platform_fallback": "on_failure_or_budget"])
        #expect(try await TestHTTP.send("PUT", "http://127.0.0.1:\(port)/api/v1/platform/plans/generous", body: plan, headers: auth).status == 200)
        let onPlan = try JSONSerialization.data(withJSONObject: ["plan": "generous"])
        #expect(try await TestHTTP.send("PATCH", "http://127.0.0.1:\(port)/api/v1/workspaces/\(workspace)", body: onPlan, headers: auth).status == 200)
        let cleared = try await KeywardenProcess.run(["workspaces", "set-platform-fallback", "--data", data.path, workspace, "plan"])
        #expect(cleared.status == 0, "\(cleared.stderr)")
        #expect(cleared.stdout.contains("platform_fallback on_failure_or_budget (from plan generous)"), "\(cleared.stdout)")
        #expect(try await apiValue() == nil)
        let relisted = try await KeywardenProcess.run(["workspaces", "list", "--data", data.path])
        #expect(relisted.stdout.split(separator: "\n").first { $0.hasPrefix(workspace) }?.contains(" plan ") == true, "\(relisted.stdout)")

        let bad = try await KeywardenProcess.run(["workspaces", "set-platform-fallback", "--data", data.path, workspace, "sometimes"])
        #expect(bad.status != 0 && bad.stderr.contains("keywarden: invalid_field: platform_fallback is never, on_failure, on_failure_or_budget or plan"),
                "\(bad.stderr)")
        let unknown = try await KeywardenProcess.run(["workspaces", "set-platform-fallback", "--data", data.path, "ws_nope", "never"])
        #expect(unknown.status != 0 && unknown.stderr.contains("not_found"), "\(unknown.stderr)")

        // The change was audited in the chain, which still verifies.
        let audit = try await TestHTTP.get("http://127.0.0.1:\(port)/api/v1/audit?workspace=\(workspace)&per_page=50", headers: auth)
        #expect(audit.text.contains("workspace.updated") && audit.text.contains("platform_fallback") && audit.text.contains("\"cli\""), "\(audit.text.prefix(600))")
        server.signal(SIGTERM)
        _ = try await server.wait()
        let verified = try await KeywardenProcess.run(["audit", "verify", "--data", data.path])
        #expect(verified.status == 0 && verified.stdout.contains("Audit log intact"), "\(verified.stdout)\(verified.stderr)")
    }
}
