import Foundation
import KeywardenCore
import KeywardenTestSupport
import SQLKit
import Testing
@testable import KeywardenApp
@testable import KeywardenStore
@testable import KeywardenVault

/// Customer-managed keys through the services, on the test run's engine (SQLite or PostgreSQL) and a local KMS (moto).
@Suite("Customer-managed keys: services", .serialized)
struct CustomerKeyServiceTests {
    func fixture(_ moto: KMSPeer) throws -> StoreFixture {
        var fixture = try StoreFixture()
        fixture.environment = [:]
        return fixture
    }

    func open(_ fixture: StoreFixture, _ moto: KMSPeer, cacheSeconds: Int = 300) async throws -> AppServices {
        try await fixture.database.prepare()
        var configuration = try fixture.configuration()
        configuration.customerKeys = try CustomerKeyConfiguration(
            credentials: .init(accessKeyID: moto.info["accessKeyId"] ?? "", secretAccessKey: Secret(moto.info["secretAccessKey"] ?? "")),
            endpoint: moto.endpoint, timeout: .seconds(10))
        configuration.scopeKeyCacheTimeToLive = .seconds(cacheSeconds)
        return try await AppServices.open(configuration, createIfMissing: true, logger: fixture.logs.logger).0
    }

    func ownKey(_ app: AppServices, _ ws: String, _ secret: String) async throws -> Credential {
        try await app.keys.create(workspaceID: ws, NewKeyRequest(providerID: "openai", description: secret, apiKey: Secret(secret), active: true),
                                  actor: "test").credential
    }

    @Test("a key revoked a moment ago is not moved off with the copy in memory; the CLI's routine rotation keeps the customer's key; a platform admin may abandon a revoked key; master-key rotation leaves customer-wrapped keys")
    func changesAskTheKMSNow() async throws {
        let moto = try await KMSPeer.moto.value
        let fixture = try fixture(moto)
        defer { fixture.remove() }
        let app = try await open(fixture, moto)
        let ws = try await app.workspaceService.create(name: "CMK", byokAllowed: true, exclusive: false, actor: "test").id
        let key = try await ownKey(app, ws, "sk-cmk-service-0000000001")
        let arn = try await moto.customer("create")

        let set = try await app.customerKeys.set(workspaceID: ws, keyARN: arn, actor: "owner")
        #expect(set.status?.state == .active && set.status?.movingSecrets == 0 && set.status?.inForce == true)
        #expect(set.rotation.rewrapped >= 1)

        // A routine rotation (the CLI's) keeps the customer's key.
        let routine = try await app.workspaceKeyRotation.run(workspaceID: ws, actor: "cli")
        let afterRoutine = try #require(try await app.customerKeys.status(workspaceID: ws))
        #expect(afterRoutine.workspaceKeyID == routine.newKeyID && afterRoutine.keyARN == arn && afterRoutine.inForce)

        // A master-key rotation does not touch it (it is not the master key's).
        let counts = try await app.store.engine.read { db in try await ScopeKeyRepository().countByMasterKey(on: db) }
        #expect(!counts.keys.contains { $0.hasPrefix("cmk:") }, "\(counts)")

        // Revoked while the copy is held (cache 300 s): removing it, or moving to another key, asks the KMS and is refused.
        try await moto.customer("disable", key: arn)
        #expect(try await app.resolution.openSecrets(of: key).key?.unprotectedString == "sk-cmk-service-0000000001", "the copy held still serves calls")
        await #expect(throws: VaultError.self) { _ = try await app.customerKeys.remove(workspaceID: ws, actor: "owner") }
        // The refusal dropped the copy: calls stop at once, and the state says so.
        await #expect(throws: (any Error).self) { _ = try await app.resolution.openSecrets(of: key) }
        #expect(try await app.customerKeys.status(workspaceID: ws)?.state == .revoked)
        let other = try await moto.customer("create")
        do {
            _ = try await app.customerKeys.set(workspaceID: ws, keyARN: other, actor: "owner")
            Issue.record("moved off a revoked key")
        } catch let error as KeywardenError {
            #expect(error.code == "customer_key_revoked" && error.message.contains(arn), "\(error)")
        }
        #expect(try await app.customerKeys.status(workspaceID: ws)?.keyARN == arn, "nothing moved")

        // The platform abandons it: a new key under the master key; the secret under the revoked key stays unreadable.
        let abandoned = try await app.customerKeys.remove(workspaceID: ws, abandoning: true, actor: "admin")
        #expect(abandoned.rotation.unreadable >= 1 && abandoned.rotation.rewrapped == 0)
        #expect(abandoned.status?.inForce == false && abandoned.status?.movingSecrets ?? 0 >= 1, "the old key still holds the secret")
        _ = try await ownKey(app, ws, "sk-cmk-service-0000000002")  // the workspace stores keys again
        let audit = try await app.store.engine.read { db in
            try await db.select().column("action").from("audit_log").where("workspace_id", .equal, ws).all().map { try $0.decode(column: "action", as: String.self) }
        }
        #expect(audit.contains("workspace.customer_key_set") && audit.contains("workspace.customer_key_abandoned"), "\(audit)")
        await app.close()

        // An instance not configured for customer keys says at start that some workspaces' keys are under them.
        #expect(!fixture.logs.text.contains("not configured to reach them"))
        let (plain, report) = try await fixture.open(create: false)
        #expect(fixture.logs.text.contains("not configured to reach them"))
        #expect(report.secretsUnderUnknownKeys == 0, "a key under a customer's KMS key is not a lost master key")
        await plain.close()
    }

    @Test("the custody log counts every own key a call opened, failed-over ones too, and an unanswered attempt's key once")
    func custodyCountsFailedOverKeys() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (app, _) = try await fixture.open()
        let minute = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 60).rounded(.down) * 60 - 120)
        func usage(_ credentialID: String?, source: KeySource?, used: [String]?) -> UsageRecord {
            var record = UsageRecord(at: minute.addingTimeInterval(5), workspaceID: "ws_tally", providerID: "openai", model: nil, credentialID: credentialID,
                                     source: source, modality: .chat, consumer: nil, status: 200, latencyMilliseconds: 1, counts: UsageCounts(),
                                     milliCredits: 0, attempts: 1)
            record.ownKeysUsed = used
            return record
        }
        let tally = CustodyTally(instanceID: "test")
        tally.add([
            usage("key_b", source: .byok, used: ["key_a", "key_b"]),       // key_a refused (401), key_b answered
            usage("key_p", source: .platform, used: ["key_a"]),            // key_a refused, the platform's key answered
            usage("key_a", source: .byok, used: ["key_a"]),                // an unanswered attempt's own row
            usage("key_a", source: .byok, used: []),                       // the call's row after it: counted there already
            usage("key_b", source: .byok, used: nil),                      // a row from elsewhere: the answering key
        ])
        let counts = Dictionary(tally.take(endedBefore: nil).flatMap { $0.1 }.map { ($0.credentialID, $0.count) }) { $0 + $1 }
        #expect(counts == ["key_a": 3, "key_b": 2], "\(counts)")
        await app.close()
    }
}
