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
        let (store, _) = try await Store.open(configuration, createIfMissing: false, logger: fixture.logs.logger)
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
