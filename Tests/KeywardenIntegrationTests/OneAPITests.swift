import Foundation
import KeywardenTestSupport
import Testing

/// The unified faces with the official openai and anthropic SDKs, each served by keys at other vendors
/// (`scripts/one-api-test.py`): chat, streams, multi-turn tool loops, structured output, images, thinking, and a switch of
/// an exclusive workspace's provider under the same client code.
@Suite("One API through the official SDKs", .serialized)
struct OneAPITests {
    @Test("the openai SDK (chat and responses) served by Anthropic and Gemini keys, the anthropic SDK by OpenAI and Gemini keys, and an exclusive workspace switching provider")
    func sdksServedAcrossVendors() async throws {
        let rig = try await GatewayRig(vendors: ["openai", "anthropic", "gemini"])
        defer { Task { await rig.stop() } }
        var tokens: [String: String] = [:]
        for (provider, secret) in [("anthropic", "sk-ant-api03-onlyanthropic-0001"), ("gemini", "AIzaSy-onlygemini-00000001"), ("openai", "sk-proj-onlyopenai-0001")] {
            let ws = try await rig.workspace("Only \(provider)")
            _ = try await rig.key(ws, provider: provider, secret: secret)
            tokens[provider] = try await rig.serviceToken(ws)
        }
        let exclusive = try await rig.workspace("Exclusive", exclusive: true)
        _ = try await rig.key(exclusive, provider: "openai", secret: "sk-proj-exclusive-0001")
        let config: [String: Any] = [
            "base": rig.base, "tokens": tokens,
            "exclusive": ["workspace": exclusive, "token": try await rig.serviceToken(exclusive), "admin_token": rig.adminToken,
                          "anthropic_secret": "sk-ant-api03-exclusive-0002"],
        ]
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kw-one-api-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: config).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }

        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let python = try await PythonPeers.python(for: ["openai", "anthropic"])
        let run = try ChildProcess(python, PythonPeers.arguments(python, script: root.appendingPathComponent("scripts/one-api-test.py").path, [file.path]))
        await run.wait(timeout: .seconds(240))
        let output = String(decoding: run.stdoutData, as: UTF8.self)
        let report = try #require(try JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any], "\(output.suffix(3000)) \(run.stderr.suffix(3000))")
        let checks = report["checks"] as? [[String: Any]] ?? []
        for failed in checks where failed["ok"] as? Bool != true {
            Issue.record("\(failed["name"] ?? "?"): \(failed["detail"] ?? "")")
        }
        #expect(checks.count >= 33, "\(checks.map { $0["name"] ?? "?" })")
        #expect(run.terminationStatus == 0)
    }
}
