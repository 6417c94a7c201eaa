import Foundation
import KeywardenTestSupport
import Testing

/// The five official SDKs (openai, anthropic, google-genai, mistralai, elevenlabs), each call made once straight to the
/// recording mock vendor and once through Keywarden: what the vendor received and what the SDK returned must match, but
/// for the differences docs/gateway.md lists (`scripts/fidelity-test.py`).
@Suite("SDK fidelity", .serialized)
struct FidelityTests {
    @Test("every SDK call through Keywarden reaches the vendor as it would directly (bytes, order, headers) and returns the same objects, errors, stream events and audio")
    func sdkCallsMatchDirectCalls() async throws {
        let rig = try await GatewayRig(vendors: ["openai", "anthropic", "gemini", "mistral", "elevenlabs"])
        defer { Task { await rig.stop() } }
        // Keys as vendors issue them: random, so no 8-byte run of one is ordinary text the scrubber would take out of an
        // answer (a key with words in it, "mistral-", would redact the model name too: docs/security.md).
        func random(_ count: Int) -> String { String((0..<count).map { _ in "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".randomElement()! }) }
        let keys = [
            "openai": "sk-proj-" + random(40), "anthropic": "sk-ant-api03-" + random(40), "gemini": "AIzaSy" + random(33),
            "mistral": random(32), "elevenlabs": "sk_" + random(48),
        ]
        let ws = try await rig.workspace("Fidelity")
        let token = try await rig.serviceToken(ws)
        for (provider, secret) in keys { _ = try await rig.key(ws, provider: provider, secret: secret) }
        // A vendor that never answers (the client's own timeout ends the call), and a per-minute Gemini limit: keys of
        // their own, in workspaces of their own, so the other calls are not touched.
        let slow = try await rig.workspace("Fidelity slow")
        let slowToken = try await rig.serviceToken(slow)
        let slowKey = "sk-slow-" + random(32)
        _ = try await rig.key(slow, secret: slowKey)
        let perMinute = try await rig.workspace("Fidelity per minute")
        let perMinuteToken = try await rig.serviceToken(perMinute)
        _ = try await rig.key(perMinute, provider: "gemini", secret: "AIzaSy-perminute-" + random(20))

        var allKeys = keys
        allKeys["openai_slow"] = slowKey
        allKeys["gemini_perminute_direct"] = "AIzaSy-perminute-" + random(20)
        let config: [String: Any] = ["base": rig.base, "token": token, "slow_token": slowToken, "perminute_token": perMinuteToken,
                                     "mocks": rig.mocks.urls, "keys": allKeys]
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kw-fidelity-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: config).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }

        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = root.appendingPathComponent("scripts/fidelity-test.py").path
        let python = try await PythonPeers.python(for: ["openai", "anthropic", "google.genai", "mistralai", "elevenlabs"])
        let arguments = PythonPeers.arguments(python, script: script, [file.path])
        let run = try ChildProcess(python, arguments)
        await run.wait(timeout: .seconds(300))
        let output = String(decoding: run.stdoutData, as: UTF8.self)
        // The whole report, for a reader of a failure (CI prints the expectation's tail only).
        if let path = ProcessInfo.processInfo.environment["KEYWARDEN_FIDELITY_REPORT"] { try? run.stdoutData.write(to: URL(fileURLWithPath: path)) }
        #expect(run.terminationStatus == 0, "fidelity-test.py: \(output.suffix(6000)) \(run.stderr.suffix(3000))")
        let report = try #require(try JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any], "\(run.stderr.suffix(3000))")
        let compared = report["compared"] as? [String] ?? []
        #expect(compared.count >= 21, "\(compared)")
        #expect((report["differences"] as? [Any])?.isEmpty == true)
        // Both legs of the resumable upload went through Keywarden with the workspace's key injected.
        #expect((report["gemini_upload"] as? [String: Any])?["returned"] != nil, "\(String(describing: report["gemini_upload"]))")
        let legs = report["gemini_upload_legs"] as? [[String: Any]] ?? []
        #expect(legs.count == 2 && legs.allSatisfy { $0["key_is_vendors"] as? Bool == true }, "\(legs)")
    }
}
