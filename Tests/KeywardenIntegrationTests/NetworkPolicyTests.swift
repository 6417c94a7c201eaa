import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenStore
import KeywardenTestSupport
import KeywardenVault
import Logging
import Testing

/// SSRF: a workspace cannot make Keywarden connect inside its network, in any spelling, when saving or when a
/// bad target is already in the database (forced there by the test, past the save-time check).
@Suite("Network policy against the real binary", .serialized)
struct NetworkPolicyTests {
    /// A host name (not `localhost`) that `/etc/hosts` maps to a loopback address, such as the machine's own name.
    static func loopbackName() -> String? {
        guard let hosts = try? String(contentsOfFile: "/etc/hosts", encoding: .utf8) else { return nil }
        for line in hosts.split(separator: "\n") where !line.hasPrefix("#") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard words.count >= 2, words[0].hasPrefix("127.") else { continue }
            if let name = words.dropFirst().first(where: { NetworkTargetPolicy.refusal(forName: $0) == nil }) { return name }
        }
        return nil
    }

    /// Spellings of the marker server's loopback address (and of other internal addresses).
    static func spellings(port: Int) -> [String] {
        var hosts = ["127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.1", "127.1", "0", "0x7f000001", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
                     "[::1]", "localhost", "LOCALHOST.", "api.localhost", "[::]", "169.254.169.254", "10.0.0.1", "[fd00:ec2::254]"]
        if let name = loopbackName() { hosts.append(name) }
        return hosts.map { "http://\($0):\(port)" }
    }

    @Test("every spelling of loopback, private and metadata is refused on save, and a forced one is never reached by the gateway, Test or webhooks")
    func ssrf() async throws {
        let mocks = try await MockVendorsProcess(vendors: ["openai", "receiver"])
        let markerURL = try #require(mocks.urls["receiver"])
        let port = try #require(URLComponents(string: markerURL)?.port)
        // No KEYWARDEN_ALLOW_PRIVATE_TARGETS: the policy is on (the catalog's upstreams are the operator's choice).
        let rig = try await GatewayRig(environment: ["KEYWARDEN_ALLOW_PRIVATE_TARGETS": "", "KEYWARDEN_NOTIFY_POLL": "0.1",
                                                     "KEYWARDEN_WEBHOOK_MAX_ATTEMPTS": "1"], mocks: mocks)
        defer { Task { await rig.stop() } }
        let targets = Self.spellings(port: port)
        #expect(targets.count >= 17)
        if Self.loopbackName() == nil { Issue.record("no host name maps to 127.x in /etc/hosts: the resolve-time check is not exercised") }

        // 1. Saving: refused with a stable code, in every spelling, for a key's base URL and for a webhook.
        let probe = try await rig.workspace("Probe")
        for target in targets {
            let key = try await rig.api("POST", "/api/v1/workspaces/\(probe)/keys",
                                        ["provider": "openai-compatible", "description": "x", "api_key": "sk-ssrf-0001", "extras": ["base_url": target + "/v1"]])
            #expect((key["error"] as? [String: Any])?["code"] as? String == "private_target", "key base_url \(target): \(key)")
            let hook = try await rig.api("POST", "/api/v1/workspaces/\(probe)/webhooks", ["url": target + "/hook"])
            #expect((hook["error"] as? [String: Any])?["code"] as? String == "private_target", "webhook \(target): \(hook)")
        }

        // Hosts and ports no client can take are refused on save too (a 300-byte host once trapped the SOCKS client).
        for malformed in ["http://" + String(repeating: "a", count: 300) + ".example", "http://example.com:99999", "http://example.com:0"] {
            let key = try await rig.api("POST", "/api/v1/workspaces/\(probe)/keys",
                                        ["provider": "openai-compatible", "description": "x", "api_key": "sk-ssrf-0002", "extras": ["base_url": malformed]])
            #expect((key["error"] as? [String: Any])?["code"] as? String == "invalid_field", "\(key)")
        }

        // 2. Forced into the database through the store (its save-time check lifted): the connect-time policy holds,
        //    and malformed hosts and ports are refused where they are used.
        let forcedTargets = targets + ["http://" + String(repeating: "b", count: 300) + ".example:\(port)", "http://127.0.0.1:99999"]
        var forced: [(workspace: String, key: String, token: String)] = []
        for index in forcedTargets.indices {
            let ws = try await rig.workspace("Forced \(index)")
            forced.append((ws, "", try await rig.serviceToken(ws)))
        }
        let store = try await Self.openStore(rig.data, postgresURL: rig.databaseURL)
        for (index, target) in forcedTargets.enumerated() {
            // Through the repository: past every save-time check, as a row written by an older version or by hand.
            let workspace = forced[index].workspace
            let credential = try await store.engine.transaction { db in
                try await store.credentials.insert(NewCredential(
                    scope: .workspace(workspace), providerID: "openai-compatible", description: "forced", apiKey: Secret("sk-forced-ssrf-\(index)"),
                    extras: ["base_url": Secret(target + "/v1")], role: .primary, active: true
                ), actor: "test", on: db)
            }
            forced[index].key = credential.id
            if OutboundURL.problem(target) == nil {
                _ = try await store.notifications.createWebhook(workspaceID: workspace, url: target + "/hook", description: "forced",
                                                                events: [], actor: "test")
            }
        }
        await store.close()
        try await Task.sleep(for: .milliseconds(1200))  // another process's change is used within a second

        for (index, item) in forced.enumerated() {
            let call = try await rig.call("/openai-compatible/chat/completions", token: item.token, json: GatewayRig.chat)
            #expect(call.status >= 400 && call.status != 200, "gateway to \(forcedTargets[index]): \(call.status) \(call.text)")
            #expect(["target_not_allowed", "upstream_unreachable", "invalid_base_url"].contains(call.json.errorCode ?? ""), "\(forcedTargets[index]): \(call.text)")
            let test = try await rig.api("POST", "/api/v1/workspaces/\(item.workspace)/keys/\(item.key)/test")
            #expect(["unreachable", "unverified"].contains(test["status"] as? String ?? ""), "Test of \(forcedTargets[index]): \(test)")
            if OutboundURL.problem(forcedTargets[index]) == nil {
                try await rig.api("POST", "/api/v1/workspaces/\(item.workspace)/webhooks/test", expect: 202)
            }
        }
        // Every forced webhook is attempted (and fails) before the marker is read.
        for (index, item) in forced.enumerated() where OutboundURL.problem(forcedTargets[index]) == nil {
            try await rig.eventually("the forced webhook of \(item.workspace) was attempted") {
                let hooks = try await rig.api("GET", "/api/v1/workspaces/\(item.workspace)/webhooks")
                guard let hook = (hooks["items"] as? [[String: Any]])?.first?["id"] as? String else { return false }
                let deliveries = try await rig.api("GET", "/api/v1/workspaces/\(item.workspace)/webhooks/\(hook)/deliveries")
                return (deliveries["items"] as? [[String: Any]])?.contains { ($0["attempts"] as? Int ?? 0) >= 1 } == true
            }
        }
        let reached = try await mocks.requests("receiver")
        #expect(reached.isEmpty, "the marker was reached: \(reached)")

        // 3. The control: the operator's own card may point at the same address, and that call does reach it,
        //    so an empty marker above means the policy held, not that the marker was unreachable.
        try await rig.api("PUT", "/api/v1/platform/providers/openai-compatible", ["api_key": "sk-platform-ssrf", "extras": ["base_url": markerURL + "/v1"]], expect: 200)
        try await rig.api("POST", "/api/v1/platform/providers/openai-compatible/activate", expect: 200)
        let operatorCall = try await rig.call("/openai-compatible/chat/completions", token: try await rig.serviceToken(probe), json: GatewayRig.chat)
        #expect(operatorCall.status == 200, "\(operatorCall.text)")
        #expect(try await mocks.requests("receiver").count == 1)
    }

    static func openStore(_ data: URL, postgresURL: String?) async throws -> AppServices {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let configuration = StoreConfiguration(
            dataDirectory: data, keyringSource: KeyringSource.resolve(environment: [:], dataDirectory: data),
            catalog: try ProviderCatalog.load(), allowPrivateTargets: true, postgresURL: postgresURL
        )
        return try await AppServices.open(configuration, createIfMissing: false, logger: logger).0
    }
}
