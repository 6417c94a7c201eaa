import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenStore
import KeywardenTestSupport
import KeywardenVault
import SQLKit
import Testing

/// The built `keywarden` binary, started as a real process on a free port.
@Suite("The keywarden binary", .serialized)
struct BinaryTests {
    func temporaryDataDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("kw-bin-\(UUID().uuidString)")
    }

    @Test("serve on a free port answers /healthz and /api/v1/providers, prints the admin token once, and stops on SIGTERM")
    func serveAnswersAndStops() async throws {
        let data = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(at: data) }
        let server = try KeywardenProcess(["serve", "--data", data.path, "--port", "0"])
        let port = try await server.waitUntilListening()

        let health = try await TestHTTP.get("http://127.0.0.1:\(port)/healthz")
        #expect(health.status == 200 && health.text == #"{"status":"ok"}"#)
        let providers = try await TestHTTP.get("http://127.0.0.1:\(port)/api/v1/providers")
        #expect(providers.status == 200)
        let catalog = try JSONSerialization.jsonObject(with: providers.body) as? [String: Any]
        let ids = (catalog?["providers"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
        #expect(ids.count >= 20 && ids.first == "openai" && ids.contains("google-translate"))
        let ready = try await TestHTTP.get("http://127.0.0.1:\(port)/readyz")
        #expect(ready.status == 200)

        // The token is printed just after "listening on".
        let token = await server.firstRunToken()
        #expect(server.stdout.contains("First run"))
        #expect(token.map { AccessToken.looksLikeToken($0) } == true)
        // The token is printed to its owner on stdout and nowhere in the logs.
        #expect(!server.stderr.contains(token ?? "kw_"))

        server.signal(SIGTERM)
        let outcome = try await server.wait(timeout: .seconds(15))
        #expect(outcome.status == 0)

        // A second start is not a first run: no new token.
        let again = try KeywardenProcess(["serve", "--data", data.path, "--port", "0"])
        _ = try await again.waitUntilListening()
        #expect(!again.stdout.contains("kw_"))
        again.signal(SIGINT)
        #expect(try await again.wait(timeout: .seconds(15)).status == 0)
    }

    @Test("init creates, a second init changes nothing, providers list prints the catalog")
    func initAndProvidersList() async throws {
        let data = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(at: data) }
        let first = try await KeywardenProcess.run(["init", "--data", data.path])
        #expect(first.status == 0)
        #expect(first.stdout.contains("kw_"))
        let keyring = try FileManager.default.attributesOfItem(atPath: data.appendingPathComponent("keyring.json").path)
        #expect(keyring[.posixPermissions] as? Int == 0o600)
        let keyringBytes = try Data(contentsOf: data.appendingPathComponent("keyring.json"))

        let second = try await KeywardenProcess.run(["init", "--data", data.path])
        #expect(second.status == 0)
        #expect(second.stdout.contains("already initialised") && !second.stdout.contains("kw_"))
        #expect(try Data(contentsOf: data.appendingPathComponent("keyring.json")) == keyringBytes)

        let list = try await KeywardenProcess.run(["providers", "list"])
        #expect(list.status == 0)
        #expect(list.stdout.contains("openai") && list.stdout.contains("gpt-5.4-mini") && list.stdout.contains("not available"))
    }

    @Test("bad configuration is a one-line error naming the problem, with a non-zero exit")
    func badConfigurationErrors() async throws {
        let data = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(at: data) }
        let brokenCatalog = FileManager.default.temporaryDirectory.appendingPathComponent("kw-catalog-\(UUID().uuidString).json")
        try #"{"version": 1, "providers": [{"id": "acme", "display_name": "Acme"}]}"#.write(to: brokenCatalog, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: brokenCatalog) }
        let notADirectory = FileManager.default.temporaryDirectory.appendingPathComponent("kw-file-\(UUID().uuidString)")
        #expect(FileManager.default.createFile(atPath: notADirectory.path, contents: Data()))
        defer { try? FileManager.default.removeItem(at: notADirectory) }

        let cases: [(String, [String], [String: String], String)] = [
            ("short master key", ["serve", "--data", data.path, "--port", "0"],
             ["KEYWARDEN_MASTER_KEY": Data(repeating: 1, count: 16).base64EncodedString()], "32 bytes"),
            ("master key not base64", ["init", "--data", data.path], ["KEYWARDEN_MASTER_KEY": "%%%"], "not valid base64"),
            ("unreadable keyring file", ["init", "--data", data.path], ["KEYWARDEN_MASTER_KEY_FILE": "/nonexistent/keyring.json"], "cannot read the keyring file"),
            ("corrupt catalog", ["serve", "--data", data.path, "--port", "0"], ["KEYWARDEN_CATALOG_FILE": brokenCatalog.path], "provider catalog entry 'acme'"),
            ("unknown upstream override", ["serve", "--data", data.path, "--port", "0"], ["KEYWARDEN_UPSTREAM_NOPE": "http://127.0.0.1:1"], "KEYWARDEN_UPSTREAM_NOPE names no provider"),
            ("bad price table", ["serve", "--data", data.path, "--port", "0"], ["KEYWARDEN_PRICES": #"[{"provider": "openai", "per_call": -1}]"#],
             "KEYWARDEN_PRICES prices[0].per_call must be a number of credits"),
            ("data directory not writable", ["init", "--data", notADirectory.appendingPathComponent("d").path], [:], "is not writable"),
            ("not initialised", ["audit", "verify", "--data", data.appendingPathComponent("never").path], [:], "not initialised"),
        ]
        for (name, arguments, environment, expected) in cases {
            let outcome = try await KeywardenProcess.run(arguments, environment: environment)
            #expect(outcome.status != 0, "\(name)")
            let lines = outcome.stderr.split(separator: "\n").filter { $0.hasPrefix("keywarden:") }
            #expect(lines.count == 1, "\(name): \(outcome.stderr)")
            #expect(lines.first?.contains(expected) == true, "\(name): \(outcome.stderr)")
        }
    }

    @Test("a database from a newer version is refused with a one-line error")
    func newerDatabaseRefused() async throws {
        let data = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(at: data) }
        #expect(try await KeywardenProcess.run(["init", "--data", data.path]).status == 0)
        try await withStore(data) { store in
            try await store.engine.transaction { db in
                try await db.insert(into: "keywarden_schema_migrations").columns("version", "name", "applied_at")
                    .values(SQLBind(42), SQLBind("future"), SQLBind("2030-01-01T00:00:00.000Z")).run()
            }
        }
        let outcome = try await KeywardenProcess.run(["serve", "--data", data.path, "--port", "0"])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("schema version 42"))
    }

    @Test("audit verify passes on a clean log and names the entry edited by raw SQL")
    func auditVerify() async throws {
        let data = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(at: data) }
        #expect(try await KeywardenProcess.run(["init", "--data", data.path]).status == 0)
        try await withStore(data) { store in
            try await store.engine.transaction { db in
                for index in 0..<5 {
                    _ = try await store.createWorkspace(name: "ws\(index)", byokAllowed: true, exclusive: false, actor: "test", on: db)
                }
            }
        }
        let clean = try await KeywardenProcess.run(["audit", "verify", "--data", data.path])
        #expect(clean.status == 0 && clean.stdout.contains("intact"))

        try await withStore(data) { store in
            try await store.engine.transaction { db in
                try await db.raw("UPDATE audit_log SET details = '{\"name\":\"forged\"}' WHERE seq = 4").run()
            }
        }
        let broken = try await KeywardenProcess.run(["audit", "verify", "--data", data.path])
        #expect(broken.status == 1)
        #expect(broken.stdout.contains("broken at entry 4"))
    }

    @Test("rotate-master-key runs beside a serving server, which keeps answering and picks up the new key")
    func rotationWhileServing() async throws {
        let data = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(at: data) }
        let server = try KeywardenProcess(["serve", "--data", data.path, "--port", "0"])
        let port = try await server.waitUntilListening()
        let before = try await readyKey(port)

        var credentials: [Credential] = []
        try await withStore(data) { store in
            // Hundreds of keys in one transaction beside a serving server: longer than ordinary work's deadline when loaded.
            credentials = try await DatabaseDeadline.$override.withValue(.seconds(120)) { try await store.engine.transaction { db in
                var made: [Credential] = []
                for index in 0..<300 {
                    made.append(try await store.credentials.insert(NewCredential(
                        scope: .platform, providerID: "openai", description: "k\(index)", apiKey: Secret("sk-live-\(index)-abcdefghijkl")
                    ), actor: "test", on: db))
                }
                return made
            } }
        }

        let rotation = try KeywardenProcess(["rotate-master-key", "--data", data.path, "--batch-size", "25"])
        var answered = 0
        while rotation.isRunning {
            let health = try await TestHTTP.get("http://127.0.0.1:\(port)/healthz")
            #expect(health.status == 200)
            answered += 1
        }
        let outcome = try await rotation.wait()
        #expect(outcome.status == 0, "\(outcome.stderr)")
        // One workspace key (the platform's) wraps the 300 keys and the fingerprint key: only it is re-wrapped.
        #expect(outcome.stdout.contains("1 key(s) re-wrapped"))
        #expect(answered > 0)

        let after = try await readyKey(port)
        #expect(after != before)
        #expect(outcome.stdout.contains(after))

        let retire = try await KeywardenProcess.run(["rotate-master-key", "--retire", "--data", data.path])
        #expect(retire.status == 0 && retire.stdout.contains("Retired \(before)"))

        try await withStore(data) { store in
            for (index, credential) in credentials.enumerated() {
                let key = try await store.engine.read { db in try await store.credentials.openKey(of: credential, on: db) }
                #expect(key?.unprotectedString == "sk-live-\(index)-abcdefghijkl")
            }
        }
        server.signal(SIGTERM)
        #expect(try await server.wait().status == 0)
        #expect(!server.stderr.contains("sk-live-"))
    }

    func readyKey(_ port: Int) async throws -> String {
        let reply = try await TestHTTP.get("http://127.0.0.1:\(port)/readyz")
        let body = try JSONSerialization.jsonObject(with: reply.body) as? [String: Any]
        return body?["active_master_key"] as? String ?? ""
    }

    /// Opens the same data directory the binary uses, as a second process would.
    func withStore(_ data: URL, _ body: (AppServices) async throws -> Void) async throws {
        let fixture = try StoreFixture()
        let configuration = StoreConfiguration(
            dataDirectory: data, keyringSource: .resolve(environment: [:], dataDirectory: data), catalog: try ProviderCatalog.load()
        )
        let (store, _) = try await AppServices.open(configuration, createIfMissing: false, logger: fixture.logs.logger)
        do {
            try await body(store)
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }
}


@Suite("Operations that must run alone")
struct ExclusiveOperationTests {
    @Test("a second rotate-master-key while one holds the lock says so and exits non-zero")
    func rotationRunsAlone() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("kw-lock-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        #expect(try await KeywardenProcess.run(["init", "--data", data.path]).status == 0)
        let fixture = try StoreFixture()
        let configuration = StoreConfiguration(dataDirectory: data, keyringSource: .resolve(environment: [:], dataDirectory: data), catalog: try ProviderCatalog.load())
        let (store, _) = try await AppServices.open(configuration, createIfMissing: false, logger: fixture.logs.logger)
        let second = try await store.engine.withExclusiveLock("rotate-master-key") {
            try await KeywardenProcess.run(["rotate-master-key", "--data", data.path])
        }
        #expect(second.status != 0)
        #expect((second.stdout + second.stderr).contains("another rotate-master-key is running"), "\(second.stdout) \(second.stderr)")
        let retire = try await store.engine.withExclusiveLock("rotate-master-key") {
            try await KeywardenProcess.run(["rotate-master-key", "--retire", "--data", data.path])
        }
        #expect(retire.status != 0)
        // Free again: the rotation runs.
        let after = try await KeywardenProcess.run(["rotate-master-key", "--data", data.path])
        #expect(after.status == 0, "\(after.stderr)")
        await store.close()
    }
}
