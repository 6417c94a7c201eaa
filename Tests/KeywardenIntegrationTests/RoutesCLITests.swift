import Foundation
import KeywardenTestSupport
import Testing

/// `keywarden routes`: chat routes set, listed and deleted on the data directory, through the service the API uses.
@Suite("Management commands: chat routes", .serialized)
struct RoutesCLITests {
    @Test("routes set, list and delete a workspace's and the platform's routes; bad steps and unknown routes are one-line errors")
    func routesFromTheCommandLine() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("kw-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        #expect(try await KeywardenProcess.run(["init", "--data", data.path]).status == 0)
        let workspace = try await KeywardenProcess.run(["workspaces", "create", "--data", data.path, "--name", "Routed"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(workspace.hasPrefix("ws_"))

        let set = try await KeywardenProcess.run(["routes", "set", "--data", data.path, "support", "anthropic/claude-opus-4-7", "openai/gpt-5.4-mini",
                                                  "--workspace", workspace])
        #expect(set.status == 0, "\(set.stderr)")
        #expect(set.stdout.contains("Route support saved: anthropic/claude-opus-4-7 > openai/gpt-5.4-mini"), "\(set.stdout)")
        let platform = try await KeywardenProcess.run(["routes", "set", "--data", data.path, "default", "gemini/gemini-2.5-flash"])
        #expect(platform.status == 0, "\(platform.stderr)")

        let listed = try await KeywardenProcess.run(["routes", "list", "--data", data.path, "--workspace", workspace])
        #expect(listed.status == 0 && listed.stdout.contains("NAME") && listed.stdout.contains("STEPS"))
        let row = listed.stdout.split(separator: "\n").first { $0.hasPrefix("support") }
        #expect(row?.hasSuffix("anthropic/claude-opus-4-7 > openai/gpt-5.4-mini") == true, "\(listed.stdout)")
        #expect(!listed.stdout.contains("default"), "the platform's routes are listed apart")
        let platformList = try await KeywardenProcess.run(["routes", "list", "--data", data.path])
        #expect(platformList.status == 0 && platformList.stdout.contains("gemini/gemini-2.5-flash") && !platformList.stdout.contains("support"))

        // The service validates against the catalog; the command's refusals are one line and a non-zero exit.
        let unknown = try await KeywardenProcess.run(["routes", "set", "--data", data.path, "broken", "nosuch/model", "--workspace", workspace])
        #expect(unknown.status != 0 && unknown.stderr.contains("keywarden: invalid_field: There is no provider 'nosuch'."), "\(unknown.stderr)")
        let malformed = try await KeywardenProcess.run(["routes", "set", "--data", data.path, "broken", "openai", "--workspace", workspace])
        #expect(malformed.status != 0 && malformed.stderr.contains("a step is provider/model"), "\(malformed.stderr)")
        let foreign = try await KeywardenProcess.run(["routes", "list", "--data", data.path, "--workspace", "ws_nope"])
        #expect(foreign.status != 0 && foreign.stderr.contains("not_found"))

        let deleted = try await KeywardenProcess.run(["routes", "delete", "--data", data.path, "support", "--workspace", workspace])
        #expect(deleted.status == 0 && deleted.stdout.contains("Route support deleted"), "\(deleted.stderr)")
        let after = try await KeywardenProcess.run(["routes", "list", "--data", data.path, "--workspace", workspace])
        #expect(after.status == 0 && !after.stdout.contains("support"))
        let again = try await KeywardenProcess.run(["routes", "delete", "--data", data.path, "support", "--workspace", workspace])
        #expect(again.status != 0 && again.stderr.contains("keywarden: not_found: The route was not found."), "\(again.stderr)")

        // The changes were appended to the audit log's chain, which still verifies.
        let audit = try await KeywardenProcess.run(["audit", "verify", "--data", data.path])
        #expect(audit.status == 0 && audit.stdout.contains("Audit log intact"), "\(audit.stdout)\(audit.stderr)")
    }
}
