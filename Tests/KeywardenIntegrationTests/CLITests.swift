import Foundation
import KeywardenTestSupport
import Testing

/// The management commands work on the data directory beside a running server, through the same services as the API.
@Suite("Management commands", .serialized)
struct CLITests {
    @Test("workspaces, keys and tokens made by the CLI are what the running server answers with")
    func cliBesideRunningServer() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("kw-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        let server = try KeywardenProcess(["serve", "--data", data.path, "--port", "0"])
        let port = try await server.waitUntilListening()

        let created = try await KeywardenProcess.run(["workspaces", "create", "--data", data.path, "--name", "Acme"])
        #expect(created.status == 0, "\(created.stderr)")
        let workspace = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(workspace.hasPrefix("ws_"))

        let keyFile = data.appendingPathComponent("key.txt")
        try "sk-cli-canary-7d1e4f09a2b3\n".write(to: keyFile, atomically: true, encoding: .utf8)
        let added = try await KeywardenProcess.run([
            "keys", "add", "--data", data.path, "--workspace", workspace, "--provider", "openai",
            "--description", "From the CLI", "--api-key-file", keyFile.path, "--extra", "organization_id=org-cli",
        ])
        #expect(added.status == 0, "\(added.stderr)")
        #expect(added.stdout.contains("API key created successfully") && added.stdout.contains("sk-…a2b3"))
        let keyID = try #require(added.stdout.split(separator: " ").first { $0.hasPrefix("key_") }.map(String.init))

        let listed = try await KeywardenProcess.run(["keys", "list", "--data", data.path, "--workspace", workspace])
        #expect(listed.status == 0 && listed.stdout.contains("From the CLI") && listed.stdout.contains("sk-…a2b3"))

        let tokenRun = try await KeywardenProcess.run([
            "tokens", "create", "--data", data.path, "--workspace", workspace, "--name", "backend",
            "--permission", "keys.read", "--permission", "keys.update",
        ])
        #expect(tokenRun.status == 0)
        let token = try #require(tokenRun.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { $0.hasPrefix("kw_") })

        // The server sees what the CLI wrote, through the API.
        let keys = try await TestHTTP.get("http://127.0.0.1:\(port)/api/v1/workspaces/\(workspace)/keys", headers: ["Authorization": "Bearer \(token)"])
        #expect(keys.status == 200 && keys.text.contains(keyID) && keys.text.contains("From the CLI"))

        let deactivated = try await KeywardenProcess.run(["keys", "deactivate", "--data", data.path, "--workspace", workspace, keyID])
        #expect(deactivated.status == 0)
        let after = try await TestHTTP.get("http://127.0.0.1:\(port)/api/v1/workspaces/\(workspace)/keys/\(keyID)", headers: ["Authorization": "Bearer \(token)"])
        #expect(after.text.contains(#""active":false"#))

        let removed = try await KeywardenProcess.run(["keys", "rm", "--data", data.path, "--workspace", workspace, keyID])
        #expect(removed.status == 0 && removed.stdout.contains("API key deleted successfully"))
        let gone = try await TestHTTP.get("http://127.0.0.1:\(port)/api/v1/workspaces/\(workspace)/keys/\(keyID)", headers: ["Authorization": "Bearer \(token)"])
        #expect(gone.status == 404)

        // Refusals are one line with the error's code, and a non-zero exit.
        let guardRun = try await KeywardenProcess.run(["keys", "activate", "--data", data.path, "--platform", "--provider", "openai"])
        #expect(guardRun.status != 0 && guardRun.stderr.contains("keywarden: key_required: Add an API key before activating."))

        server.signal(SIGTERM)
        let outcome = try await server.wait()
        #expect(outcome.status == 0)
        for output in [outcome.stdout, outcome.stderr, added.stdout, added.stderr, listed.stdout, keys.text] {
            #expect(!output.contains("sk-cli-canary"))
        }
    }

    @Test("a key the CLI deactivates leaves the running server's resolution within a second (the change log's poll), and comes back when activated")
    func cliChangeReachesResolution() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("kw-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        let server = try KeywardenProcess(["serve", "--data", data.path, "--port", "0"])
        let port = try await server.waitUntilListening()
        let admin = try #require(await server.firstRunToken())
        let workspace = try await KeywardenProcess.run(["workspaces", "create", "--data", data.path, "--name", "Fresh"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let added = try await KeywardenProcess.run(["keys", "add", "--data", data.path, "--workspace", workspace, "--provider", "openai",
                                                   "--description", "k"], stdin: "sk-cli-fresh-abcdefghij\n")
        let keyID = try #require(added.stdout.split(separator: " ").first { $0.hasPrefix("key_") }.map(String.init))
        #expect(try await KeywardenProcess.run(["keys", "activate", "--data", data.path, "--workspace", workspace, keyID]).status == 0)

        func servedByOwnKey() async throws -> Bool {
            let body = try JSONSerialization.data(withJSONObject: ["workspace": workspace, "provider": "openai"])
            let reply = try await TestHTTP.send("POST", "http://127.0.0.1:\(port)/api/v1/resolve", body: body,
                                                headers: ["Authorization": "Bearer \(admin)", "Content-Type": "application/json"])
            return reply.status == 200 && reply.text.contains(#""source":"byok""#)
        }
        func until(_ wanted: Bool, after change: () async throws -> Void) async throws -> Duration {
            try await change()
            let changed = ContinuousClock.now
            while try await servedByOwnKey() != wanted, ContinuousClock.now - changed < .seconds(5) {
                try await Task.sleep(for: .milliseconds(10))
            }
            return ContinuousClock.now - changed
        }
        var delays: [Duration] = []
        delays.append(try await until(true) {})
        for round in 0..<3 {
            delays.append(try await until(false) {
                _ = try await KeywardenProcess.run(["keys", "deactivate", "--data", data.path, "--workspace", workspace, keyID])
            })
            delays.append(try await until(true) {
                _ = try await KeywardenProcess.run(["keys", "activate", "--data", data.path, "--workspace", workspace, keyID])
            })
            _ = round
        }
        print("CLI change → used by the server: \(delays)")
        // The poll runs every 250 ms; the bounds leave room for a loaded machine (where one change of seven once took 3.1 s
        // in a full parallel run), the printed figures are the measure: most within a second, every one within the wait.
        let sorted = delays.sorted()
        #expect(sorted[sorted.count / 2] < .seconds(1) && sorted.allSatisfy { $0 < .seconds(5) }, "\(delays)")
        server.signal(SIGTERM)
        _ = try await server.wait()
    }

    @Test("keys rotate: stage, test against the vendor, promote, status, finish; lifecycle sets an expiry; no secret in any output")
    func rotateFromTheCommandLine() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("kw-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        let mocks = try await MockVendorsProcess(vendors: ["openai"])
        defer { Task { await mocks.stop() } }
        let env = mocks.upstreamEnvironment.merging(["KEYWARDEN_ALLOW_PRIVATE_TARGETS": "1"]) { $1 }
        #expect(try await KeywardenProcess.run(["init", "--data", data.path]).status == 0)
        let workspace = try await KeywardenProcess.run(["workspaces", "create", "--data", data.path, "--name", "Rotor"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let added = try await KeywardenProcess.run(["keys", "add", "--data", data.path, "--workspace", workspace, "--provider", "openai",
                                                   "--description", "k"], stdin: "sk-cli-rot-canary-old-0001\n")
        let keyID = try #require(added.stdout.split(separator: " ").first { $0.hasPrefix("key_") }.map(String.init))
        let target = ["--data", data.path, "--workspace", workspace, keyID]
        var outputs: [String] = [added.stdout, added.stderr]
        func run(_ arguments: [String], stdin: String? = nil) async throws -> KeywardenProcess.Outcome {
            let outcome = try await KeywardenProcess.run(arguments, environment: env, stdin: stdin)
            outputs += [outcome.stdout, outcome.stderr]
            return outcome
        }
        #expect(try await run(["keys", "rotate", "promote"] + target).status != 0, "nothing staged yet")
        let staged = try await run(["keys", "rotate", "stage"] + target, stdin: "sk-cli-rot-canary-new-0002\n")
        #expect(staged.status == 0 && staged.stdout.contains("sk-…0002"), "\(staged.stdout)\(staged.stderr)")
        let refused = try await run(["keys", "rotate", "promote"] + target)
        #expect(refused.status != 0 && refused.stderr.contains("Test the new key"), "\(refused.stderr)")
        let tested = try await run(["keys", "rotate", "test"] + target)
        #expect(tested.status == 0 && tested.stdout.hasPrefix("valid"), "\(tested.stdout)\(tested.stderr)")
        let promoted = try await run(["keys", "rotate", "promote", "--grace-hours", "6"] + target)
        #expect(promoted.status == 0 && promoted.stdout.contains("serves as its fallback until"), "\(promoted.stdout)\(promoted.stderr)")
        #expect(try await run(["keys", "lifecycle", "--expires-at", "2027-06-30", "--rotate-by-days", "90"] + target).status == 0)
        let status = try await run(["keys", "rotate", "status"] + target)
        #expect(status.stdout.contains("previous:   sk-…0001") && status.stdout.contains("expires at: 2027-06-30") && status.stdout.contains("every 90 days"),
                "\(status.stdout)")
        #expect(try await run(["keys", "rotate", "finish"] + target).status == 0)
        #expect(!(try await run(["keys", "rotate", "status"] + target).stdout.contains("previous:")))
        for output in outputs { #expect(!output.contains("canary"), "no secret in the CLI's output") }
    }

    @Test("a key piped on standard input is stored; an empty one is refused")
    func keyFromStandardInput() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("kw-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        #expect(try await KeywardenProcess.run(["init", "--data", data.path]).status == 0)
        let piped = try await KeywardenProcess.run(["keys", "add", "--data", data.path, "--platform", "--provider", "anthropic"], stdin: "sk-ant-piped-abcdefghij\n")
        #expect(piped.status == 0 && piped.stdout.contains("Anthropic settings saved") && piped.stdout.contains("sk-…ghij"))
        let empty = try await KeywardenProcess.run(["keys", "add", "--data", data.path, "--workspace", "ws_nope", "--provider", "openai", "--description", "x"], stdin: "")
        #expect(empty.status != 0)
    }

    @Test("usage prints the metered calls as a table; a bad grouping or date is a clear error")
    func usageReport() async throws {
        let mocks = try await MockVendorsProcess(vendors: ["openai"])
        let rig = try await GatewayRig(mocks: mocks)
        try await rig.platformCard("openai", secret: "sk-platform-cli-usage-0800")
        for _ in 0..<3 { _ = try await rig.call("/openai/v1/chat/completions", token: rig.adminToken, json: GatewayRig.chat) }
        try await rig.eventually("three calls metered") {
            (try await rig.usage("group_by=provider")["totals"] as? [String: Any])?["requests"] as? Int == 3
        }
        let report = try await KeywardenProcess.run(["usage", "--data", rig.data.path, "--group-by", "source"], environment: rig.commandEnvironment)
        #expect(report.status == 0 && report.stdout.contains("platform") && report.stdout.contains("total"), "\(report.stdout)\(report.stderr)")
        let totalLine = report.stdout.split(separator: "\n").first { $0.hasPrefix("total") }
        #expect(totalLine?.split(separator: " ").dropFirst().first == "3", "\(totalLine ?? "")")
        let bad = try await KeywardenProcess.run(["usage", "--data", rig.data.path, "--from", "last tuesday"], environment: rig.commandEnvironment)
        #expect(bad.status != 0 && bad.stderr.contains("from is a day"))
        await rig.stop()
    }
}
