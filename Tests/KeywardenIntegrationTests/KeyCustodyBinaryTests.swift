import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenStore
import KeywardenTestSupport
import KeywardenVault
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The real binary with its master key in a KMS (moto, a local KMS that checks SigV4), serving gateway calls.
@Suite("Master key in a KMS, end to end", .serialized)
struct KeyCustodyBinaryTests {
    static let canary = "sk-kms-custody-canary-51c0e2"

    func kmsEnvironment(_ kms: KMSPeer) -> [String: String] {
        [
            "KEYWARDEN_MASTER_KEY_KMS_KEY_ID": kms.info["keyId"] ?? "", "KEYWARDEN_MASTER_KEY_KMS_ENDPOINT": kms.endpoint.absoluteString,
            "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": kms.info["accessKeyId"] ?? "", "AWS_SECRET_ACCESS_KEY": kms.info["secretAccessKey"] ?? "",
            "KEYWARDEN_WORKSPACE_KEY_CACHE_SECONDS": "1",
        ]
    }

    @Test("calls are served with the master key in the KMS; the data directory and the database hold no master key; the KMS gone is 503 key_custody_unavailable, never a crash")
    func servesWithKMSAndSurvivesItsLoss() async throws {
        // A KMS of this test's own: it is stopped half way.
        let kms = try await KMSPeer(mode: "moto", modules: ["moto.server", "boto3"])
        defer { kms.process.signal(SIGKILL) }
        let rig = try await GatewayRig(environment: kmsEnvironment(kms), vendors: ["openai"])
        defer { Task { await rig.stop() } }
        #expect(!rig.adminToken.isEmpty)
        let ws = try await rig.workspace("Custody Co")
        _ = try await rig.key(ws, secret: Self.canary)
        let token = try await rig.serviceToken(ws)
        let first = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(first.status == 200, "\(first.text)")
        let sent = try await rig.mocks.requests("openai").compactMap { ($0["headers"] as? [String: String])?["authorization"] }
        #expect(sent.contains("Bearer \(Self.canary)"))

        // No keyring was made, and what is stored opens with no key this side of the KMS.
        #expect(!FileManager.default.fileExists(atPath: rig.data.appendingPathComponent("keyring.json").path))
        let files = try FileManager.default.subpathsOfDirectory(atPath: rig.data.path)
        #expect(!files.contains { $0.hasSuffix(".json") && $0.contains("keyring") }, "\(files)")
        var configuration = StoreConfiguration(dataDirectory: rig.data, keyringSource: .resolve(environment: rig.commandEnvironment, dataDirectory: rig.data),
                                               catalog: try ProviderCatalog.load(), postgresURL: rig.databaseURL)
        configuration.masterKeyDevice = try MasterKeyDevice.fromEnvironment(kmsEnvironment(kms))
        let fixture = try StoreFixture()
        // Beside the serving instance, on a machine loaded by the whole suite, the database may not answer this second
        // opening within its 10 s once (a CI run on PostgreSQL): it is asked again, up to three times.
        var opened: Store?
        for attempt in 1...3 where opened == nil {
            do {
                opened = try await Store.open(configuration, createIfMissing: false, logger: fixture.logs.logger).0
            } catch StoreError.unavailable(let reason) where attempt < 3 {
                print("store not answering (attempt \(attempt)): \(reason)")
            }
        }
        let store = try #require(opened)
        let scopeKeys = try await store.engine.read { db in
            try await db.select().columns("master_key_id", "wrapped_key").from("vault_scope_keys").all()
                .map { (try $0.decode(column: "master_key_id", as: String.self), try $0.decode(column: "wrapped_key", as: Data.self)) }
        }
        await store.close()
        #expect(scopeKeys.count >= 2, "the platform's key and the workspace's")  // the platform's (fingerprint key) and the workspace's
        #expect(scopeKeys.allSatisfy { $0.0 == "kms:\(kms.info["keyId"] ?? "")" && $0.1.count > 64 })
        // Without the KMS, the data directory alone opens nothing: no keyring to find, and none is made over sealed secrets.
        configuration.masterKeyDevice = nil
        await #expect(throws: StoreError.self) { _ = try await Store.open(configuration, createIfMissing: false, logger: fixture.logs.logger) }

        // The KMS goes away: held workspace keys serve until their second is up, then calls and writes are 503s.
        kms.process.signal(SIGKILL)
        try await Task.sleep(for: .milliseconds(1500))
        let refused = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(refused.status == 503 && refused.text.contains("key_custody_unavailable"), "\(refused.status) \(refused.text)")
        let write = try await TestHTTP.send("POST", rig.base + "/api/v1/workspaces/\(ws)/keys",
                                            body: try JSONSerialization.data(withJSONObject: ["provider": "openai", "description": "k", "api_key": "sk-second-0000"]),
                                            headers: ["Authorization": "Bearer \(rig.adminToken)", "Content-Type": "application/json"])
        #expect(write.status == 503 && write.text.contains("key_custody_unavailable"), "\(write.status) \(write.text)")
        #expect(write.headers["retry-after"] != nil || write.text.contains("Try again"))
        #expect(try await TestHTTP.get(rig.base + "/healthz").status == 200)

        await rig.stop()
        let logs = rig.server.stdout + rig.server.stderr
        #expect(!logs.contains(Self.canary) && !logs.contains(kms.info["secretAccessKey"] ?? "-"))
        #expect(logs.contains("key_custody_unavailable") || logs.contains("kms_unreachable"))
    }

    @Test("a KMS key that refuses, or a KMS that is not there, stops the start with an error that names what to check")
    func refusalAtStart() async throws {
        let double = try await KMSPeer.double.value
        for (keyID, code) in [("disabled", "kms_key_disabled"), ("bad-signature", "kms_access_denied")] {
            let data = FileManager.default.temporaryDirectory.appendingPathComponent("kw-kms-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: data) }
            let env = ["KEYWARDEN_MASTER_KEY_KMS_KEY_ID": keyID, "KEYWARDEN_MASTER_KEY_KMS_ENDPOINT": double.endpoint.absoluteString,
                       "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret-canary-9f0e"]
            let outcome = try await KeywardenProcess.run(["serve", "--data", data.path, "--port", "0"], environment: env, timeout: .seconds(60))
            #expect(outcome.status != 0)
            #expect(outcome.stderr.contains(code), "\(outcome.stderr)")
            #expect(!outcome.stderr.contains("secret-canary-9f0e") && !outcome.stdout.contains("secret-canary-9f0e"))
        }
        // Both devices at once is a configuration error naming the variable.
        let both = try await KeywardenProcess.run(["serve", "--port", "0"], environment: [
            "KEYWARDEN_MASTER_KEY_KMS_KEY_ID": "k", "KEYWARDEN_MASTER_KEY_PKCS11_MODULE": "/usr/lib/softhsm/libsofthsm2.so",
        ])
        #expect(both.status != 0 && both.stderr.contains("KEYWARDEN_MASTER_KEY_KMS_KEY_ID"), "\(both.stderr)")
    }
}

/// The custody log through the real binary: calls, a Test, the API, the export, the page, `audit verify`.
@Suite("Custody log, end to end", .serialized)
struct CustodyLogBinaryTests {
    @Test("gateway calls (per minute, appended when the process stops) and a Test are in the workspace's log; the export's chain links from the workspace's genesis; another workspace is not found")
    func custodyThroughTheAPI() async throws {
        let mocks = try await MockVendorsProcess(vendors: ["openai"])
        let first = try await GatewayRig(mocks: mocks)
        let ws = try await first.workspace("Custody Co")
        let key = try await first.key(ws, secret: "sk-custody-binary-0a1b2c3d")
        let token = try await first.serviceToken(ws)
        for _ in 0..<3 { #expect(try await first.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat).status == 200) }
        try await first.api("POST", "/api/v1/workspaces/\(ws)/keys/\(key)/test", expect: 200)
        let strangerWorkspace = try await first.workspace("Stranger")
        let stranger = try await first.serviceToken(strangerWorkspace, permissions: ["audit.read"])
        let admin = first.adminToken
        await first.stop(mocksToo: false, keepData: true)

        let rig = try await GatewayRig(mocks: mocks, data: first.data)
        defer { Task { await rig.stop() } }
        let page = try await rig.api("GET", "/api/v1/workspaces/\(ws)/custody", token: admin, expect: 200)
        let items = try #require(page["items"] as? [[String: Any]])
        let uses = items.compactMap { $0["use"] as? String }
        #expect(uses.contains("test") && uses.contains("gateway_call"), "\(items)")
        let calls = items.filter { $0["use"] as? String == "gateway_call" }.compactMap { $0["count"] as? Int }.reduce(0, +)
        #expect(calls == 3)

        let export = try await TestHTTP.get(rig.base + "/api/v1/workspaces/\(ws)/custody/export", headers: ["Authorization": "Bearer \(admin)"])
        #expect(export.status == 200)
        let lines = export.text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(lines.count == page["total"] as? Int)
        var previous = CustodyEntry.genesisHash(workspaceID: ws)
        for line in lines {
            #expect(line["prev_hash"] as? String == previous)
            previous = line["hash"] as? String ?? ""
        }

        let refused = try await TestHTTP.get(rig.base + "/api/v1/workspaces/\(ws)/custody", headers: ["Authorization": "Bearer \(stranger)"])
        #expect(refused.status == 404)
        let html = try await rig.page("/workspaces/\(ws)/custody", token: admin)
        #expect(html.status == 200 && html.html.contains("Gateway calls") && html.html.contains("/custody/export.jsonl"))
        let download = try await rig.page("/workspaces/\(ws)/custody/export.jsonl", token: admin)
        #expect(download.status == 200 && download.html.split(separator: "\n").count == lines.count, "the page's download is the API's export")

        let verified = try await KeywardenProcess.run(["audit", "verify", "--data", rig.data.path], environment: rig.commandEnvironment)
        #expect(verified.status == 0 && verified.stdout.contains("Custody logs intact"), "\(verified.stdout)\(verified.stderr)")
        #expect(!export.text.contains("sk-custody-binary"))
    }
}

/// A workspace's own KMS key through the real binary: set by its owner, used by gateway calls, disabled and re-enabled by
/// the customer with the AWS SDK, shown on the pages, and passed over by calls that then follow the fallback rules.
@Suite("Customer-managed keys, end to end", .serialized)
struct CustomerKeyBinaryTests {
    static let byok = "sk-cmk-byok-canary-5e0d1f"
    static let platform = "sk-cmk-platform-key-77aa01"

    @Test("the owner sets the workspace's KMS key; the customer disables it and calls fall to the platform's key, the cards say \"Key access revoked by the customer\", writes are 403; re-enabled, its own key serves again; removed, the master key wraps it")
    func revokedByTheCustomer() async throws {
        let moto = try await KMSPeer.moto.value
        let arn = try await moto.customer("create")
        let rig = try await GatewayRig(environment: [
            "KEYWARDEN_CUSTOMER_KEYS": "aws-kms", "KEYWARDEN_CUSTOMER_KEY_KMS_ENDPOINT": moto.endpoint.absoluteString,
            "AWS_ACCESS_KEY_ID": moto.info["accessKeyId"] ?? "", "AWS_SECRET_ACCESS_KEY": moto.info["secretAccessKey"] ?? "",
            "KEYWARDEN_WORKSPACE_KEY_CACHE_SECONDS": "1",
        ], vendors: ["openai"])
        defer { Task { await rig.stop() } }
        try await rig.platformCard("openai", secret: Self.platform)
        let ws = try await rig.workspace("Customer Keyed")
        let keyID = try await rig.key(ws, secret: Self.byok)
        let token = try await rig.serviceToken(ws)
        let ownerReply = try await TestHTTP.send("POST", rig.base + "/api/v1/workspaces/\(ws)/members",
                                                 body: try JSONSerialization.data(withJSONObject: ["name": "Olga", "role": "owner"]),
                                                 headers: ["Authorization": "Bearer \(rig.adminToken)", "Content-Type": "application/json"])
        let owner = try #require((try JSONSerialization.jsonObject(with: ownerReply.body) as? [String: Any])?["token"] as? String)
        let viewerReply = try await TestHTTP.send("POST", rig.base + "/api/v1/workspaces/\(ws)/members",
                                                  body: try JSONSerialization.data(withJSONObject: ["name": "Vic", "role": "admin"]),
                                                  headers: ["Authorization": "Bearer \(rig.adminToken)", "Content-Type": "application/json"])
        let admin = try #require((try JSONSerialization.jsonObject(with: viewerReply.body) as? [String: Any])?["token"] as? String)
        func lastKeySent() async throws -> String? {
            try await rig.mocks.requests("openai").last.flatMap { ($0["headers"] as? [String: String])?["authorization"] }
        }
        func code(_ reply: [String: Any]) -> String? { (reply["error"] as? [String: Any])?["code"] as? String }

        // Before: the master key wraps the workspace's key.
        let before = try await rig.api("GET", "/api/v1/workspaces/\(ws)/customer-key", token: owner, expect: 200)
        #expect(before["offered"] as? Bool == true && before["customer_key"] is NSNull, "\(before)")
        // Not the workspace admin's to set (members.manage), and bad ARNs are refused by name.
        #expect(code(try await rig.api("PUT", "/api/v1/workspaces/\(ws)/customer-key", ["key_arn": arn], token: admin, expect: 403)) == "forbidden")
        for bad in ["alias/mine", "arn:aws:kms:us-east-1:123456789012:alias/mine", "not an arn", ""] {
            #expect(code(try await rig.api("PUT", "/api/v1/workspaces/\(ws)/customer-key", ["key_arn": bad], token: owner, expect: 400)) == "invalid_customer_key")
        }
        #expect(code(try await rig.api("PUT", "/api/v1/workspaces/\(ws)/customer-key", ["key_arn": arn, "extra": 1], token: owner, expect: 400)) == "unknown_field")

        // The owner sets it: the workspace's secrets move under a workspace key the customer's key wraps.
        let set = try await rig.api("PUT", "/api/v1/workspaces/\(ws)/customer-key", ["key_arn": arn], token: owner, expect: 200)
        let shown = try #require(set["customer_key"] as? [String: Any])
        #expect(shown["key_arn"] as? String == arn && shown["state"] as? String == "active", "\(set)")
        #expect((set["rotation"] as? [String: Any])?["rewrapped"] as? Int ?? 0 >= 1, "\(set)")
        #expect(try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat).status == 200)
        #expect(try await lastKeySent() == "Bearer \(Self.byok)")

        // The customer disables the key: within the cache bound, the workspace's own key is passed over.
        #expect(try await moto.customer("disable", key: arn) == "Disabled")
        try await Task.sleep(for: .milliseconds(1300))
        let fallen = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(fallen.status == 200, "\(fallen.status) \(fallen.text)")
        #expect(try await lastKeySent() == "Bearer \(Self.platform)")
        // The platform hears of it once, with the reason (fallback.engaged, to its webhooks and e-mail).
        try await rig.eventually("fallback.engaged names the revocation") {
            let events = try await rig.api("GET", "/api/v1/events?workspace=\(ws)&kind=fallback.engaged")
            return "\(events)".contains("key access revoked by the customer")
        }
        let revoked = try await rig.api("GET", "/api/v1/workspaces/\(ws)/customer-key", token: owner, expect: 200)
        let revokedKey = try #require(revoked["customer_key"] as? [String: Any])
        #expect(revokedKey["state"] as? String == "revoked" && revokedKey["code"] as? String == "kms_key_disabled", "\(revoked)")
        for path in ["/workspaces/\(ws)/byok", "/workspaces/\(ws)/keys", "/workspaces/\(ws)/custody"] {
            let page = try await rig.page(path, token: owner)
            #expect(page.status == 200 && page.html.contains("Key access revoked by the customer"), "\(path): \(page.status) \(page.html.suffix(600))")
        }
        // What needs the secrets is refused with the reason, and nothing is marked bad.
        let test = try await TestHTTP.send("POST", rig.base + "/api/v1/workspaces/\(ws)/keys/\(keyID)/test",
                                           headers: ["Authorization": "Bearer \(owner)"])
        #expect(test.status == 403 && test.text.contains("customer_key_revoked"), "\(test.status) \(test.text)")
        let write = try await TestHTTP.send("POST", rig.base + "/api/v1/workspaces/\(ws)/keys",
                                            body: try JSONSerialization.data(withJSONObject: ["provider": "openai", "description": "k2", "api_key": "sk-second-key-0000"]),
                                            headers: ["Authorization": "Bearer \(owner)", "Content-Type": "application/json"])
        #expect(write.status == 403 && write.text.contains("customer_key_revoked"), "\(write.status) \(write.text)")
        // Removing the key needs it: the secrets are under it.
        #expect(code(try await rig.api("DELETE", "/api/v1/workspaces/\(ws)/customer-key", token: owner, expect: 403)) == "customer_key_revoked")
        let listed = try await rig.api("GET", "/api/v1/workspaces/\(ws)/keys?per_page=50", token: owner, expect: 200)
        #expect(!"\(listed)".contains("unreadable"), "\(listed)")
        let item = try #require((listed["items"] as? [[String: Any]])?.first)
        #expect(item["customer_key_revoked"] as? Bool == true && item["has_key"] as? Bool == true, "\(item)")
        let one = try await rig.api("GET", "/api/v1/workspaces/\(ws)/keys/\(keyID)", token: owner, expect: 200)
        #expect(one["customer_key_revoked"] as? Bool == true, "\(one)")

        // A workspace that may not fall back is told why its call cannot be served.
        try await rig.api("PATCH", "/api/v1/workspaces/\(ws)", ["platform_fallback": "never"], expect: 200)
        let refused = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
        #expect(refused.status == 403 && refused.text.contains("customer_key_revoked"), "\(refused.status) \(refused.text)")
        try await rig.api("PATCH", "/api/v1/workspaces/\(ws)", ["platform_fallback": NSNull()], expect: 200)

        // Re-enabled: the workspace's own key serves again within seconds.
        #expect(try await moto.customer("enable", key: arn) == "Enabled")
        try await rig.eventually("the workspace's own key serves again", timeout: .seconds(20)) {
            _ = try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat)
            return try await lastKeySent() == "Bearer \(Self.byok)"
        }

        // Removed: back under the master key; disabling the customer's key no longer matters.
        let removed = try await rig.api("DELETE", "/api/v1/workspaces/\(ws)/customer-key", token: owner, expect: 200)
        #expect(removed["customer_key"] is NSNull, "\(removed)")
        try await moto.customer("disable", key: arn)
        try await Task.sleep(for: .milliseconds(1300))
        #expect(try await rig.call("/openai/v1/chat/completions", token: token, json: GatewayRig.chat).status == 200)
        #expect(try await lastKeySent() == "Bearer \(Self.byok)")

        let audit = try await rig.api("GET", "/api/v1/audit?workspace=\(ws)", expect: 200)
        let actions = (audit["items"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
        #expect(actions.contains("workspace.customer_key_set") && actions.contains("workspace.customer_key_removed"), "\(actions)")
        let verify = try await KeywardenProcess.run(["audit", "verify", "--data", rig.data.path], environment: rig.commandEnvironment)
        #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")

        await rig.stop()
        let logs = rig.server.stdout + rig.server.stderr
        #expect(!logs.contains(Self.byok) && !logs.contains(Self.platform) && !logs.contains(moto.info["secretAccessKey"] ?? "-"))
    }

    @Test("a platform that does not offer customer keys says so; one that names the accounts refuses other accounts' keys")
    func notOfferedAndAccounts() async throws {
        let plain = try await GatewayRig(vendors: ["openai"])
        let ws = try await plain.workspace("Plain")
        let status = try await plain.api("GET", "/api/v1/workspaces/\(ws)/customer-key", expect: 200)
        #expect(status["offered"] as? Bool == false)
        let refused = try await plain.api("PUT", "/api/v1/workspaces/\(ws)/customer-key",
                                          ["key_arn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"], expect: 409)
        #expect((refused["error"] as? [String: Any])?["code"] as? String == "customer_keys_not_offered")
        await plain.stop()

        let moto = try await KMSPeer.moto.value
        let narrow = try await GatewayRig(environment: [
            "KEYWARDEN_CUSTOMER_KEYS": "aws-kms", "KEYWARDEN_CUSTOMER_KEY_KMS_ENDPOINT": moto.endpoint.absoluteString,
            "AWS_ACCESS_KEY_ID": moto.info["accessKeyId"] ?? "", "AWS_SECRET_ACCESS_KEY": moto.info["secretAccessKey"] ?? "",
            "KEYWARDEN_CUSTOMER_KEY_ACCOUNTS": "111122223333",
        ], vendors: ["openai"])
        defer { Task { await narrow.stop() } }
        let other = try await narrow.workspace("Narrow")
        let arn = try await moto.customer("create")
        let answer = try await narrow.api("PUT", "/api/v1/workspaces/\(other)/customer-key", ["key_arn": arn], expect: 400)
        #expect((answer["error"] as? [String: Any])?["code"] as? String == "customer_key_account_not_allowed")
    }
}
