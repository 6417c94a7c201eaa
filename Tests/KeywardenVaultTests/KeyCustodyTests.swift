import Foundation
import KeywardenCore
import KeywardenTestSupport
import Logging
import Synchronization
import Testing
@testable import KeywardenVault

/// A custodian that counts the calls it passes on, and can be made to fail as a device that went away.
final class CountingCustodian: MasterKeyCustodian {
    let inner: any MasterKeyCustodian
    let calls = Mutex((wraps: 0, unwraps: 0))
    let down = Mutex(false)

    init(_ inner: any MasterKeyCustodian) { self.inner = inner }

    var activeKeyID: String { inner.activeKeyID }
    var decryptOnlyKeyIDs: [String] { inner.decryptOnlyKeyIDs }
    var description: String { "counting \(inner)" }
    var unwraps: Int { calls.withLock { $0.unwraps } }

    func wrap(_ material: Secret, id: String, scope: Scope) async throws(VaultError) -> (masterKeyID: String, wrapped: [UInt8]) {
        calls.withLock { $0.wraps += 1 }
        if down.withLock({ $0 }) { throw .custodyUnavailable(deviceCode: "test_down", detail: "the test took the device away") }
        return try await inner.wrap(material, id: id, scope: scope)
    }

    func unwrap(_ key: WrappedScopeKey) async throws(VaultError) -> Secret {
        calls.withLock { $0.unwraps += 1 }
        if down.withLock({ $0 }) { throw .custodyUnavailable(deviceCode: "test_down", detail: "the test took the device away") }
        return try await inner.unwrap(key)
    }

    func close() async { await inner.close() }
}

/// What every custodian must do, run against each: the keyring, a SoftHSM2 token, moto's KMS.
enum CustodyChecks {
    static let canary = "sk-custody-canary-4b1e9d77"

    /// Seal under a workspace key, open after a restart (a new vault over the same stored keys), and see that what is
    /// stored holds neither the secret nor the workspace key's material.
    static func sealRestartOpen(_ make: () async throws -> any MasterKeyCustodian) async throws {
        let keys = InMemoryScopeKeyDirectory()
        let context = SecretContext(scope: .workspace("ws_custody"), ownerID: "key_1", field: "api_key")
        let first = Vault(custodian: try await make())
        let sealed = try await first.seal(Secret(canary), in: context, keys: keys)
        let stored = try #require(keys.all.first)
        let material = try #require(first.cache.key(id: stored.id)).key.withUnsafeBytes { Array($0) }
        #expect(!contains(stored.wrapped, material) && !contains(sealed.wrappedKey + sealed.ciphertext, Array(canary.utf8)))
        #expect(stored.masterKeyID == first.activeKeyID)
        await first.close()

        let restarted = Vault(custodian: try await make())
        #expect(try await restarted.open(sealed, in: context, keys: keys).unprotectedString == canary)
        // The stored workspace key is bound to its id and scope: moved to another id or scope, it does not unwrap.
        for moved in [WrappedScopeKey(id: "wk-000000000000", scope: stored.scope, masterKeyID: stored.masterKeyID, wrapped: stored.wrapped, createdAt: stored.createdAt),
                      WrappedScopeKey(id: stored.id, scope: .workspace("ws_other"), masterKeyID: stored.masterKeyID, wrapped: stored.wrapped, createdAt: stored.createdAt)] {
            await #expect(throws: VaultError.unreadable(.authenticationFailed)) { try await restarted.unwrap(moved) }
        }
        await restarted.close()
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        return (0...(haystack.count - needle.count)).contains { Array(haystack[$0..<$0 + needle.count]) == needle }
    }
}

@Suite("Key custody: workspace keys under the master key")
struct ScopeKeyCacheTests {
    @Test("the keyring as custodian: seal, restart, open; stored workspace keys are bound to their id and scope")
    func keyringCustodian() async throws {
        let keyring = Keyring.generate()
        try await CustodyChecks.sealRestartOpen { LocalKeyring(keyring: keyring) }
    }

    @Test("the custodian is asked once per workspace key while it is held, again once its time is up")
    func cacheBoundsDeviceCalls() async throws {
        let counting = CountingCustodian(LocalKeyring(keyring: .generate()))
        let keys = InMemoryScopeKeyDirectory()
        let context = SecretContext(scope: .workspace("ws_a"), ownerID: "key_1", field: "api_key")
        let sealed = try await Vault(custodian: counting).seal(Secret("v"), in: context, keys: keys)
        // Making the key unwrapped it once too (the wrapping is checked before it is stored).
        let made = counting.unwraps
        let vault = Vault(custodian: counting, cacheTimeToLive: .seconds(1))
        let started = ContinuousClock.now
        for _ in 0..<1000 { _ = try await vault.open(sealed, in: context, keys: keys) }
        // On a machine loaded enough that the opens outlast the key's time, it is rightly asked again: only the count
        // of a run within the time is exact.
        if ContinuousClock.now - started < .seconds(1) { #expect(counting.unwraps == made + 1) }
        let before = counting.unwraps
        try await Task.sleep(for: .milliseconds(1_100))
        _ = try await vault.open(sealed, in: context, keys: keys)
        #expect(counting.unwraps == before + 1, "its time is up: asked again")
    }

    @Test("a device that goes away: held keys keep serving until their time is up, then 503-class errors, never a crash; back, it serves again")
    func deviceGoneMidRun() async throws {
        let counting = CountingCustodian(LocalKeyring(keyring: .generate()))
        let keys = InMemoryScopeKeyDirectory()
        let context = SecretContext(scope: .workspace("ws_a"), ownerID: "key_1", field: "api_key")
        let vault = Vault(custodian: counting, cacheTimeToLive: .milliseconds(200))
        let sealed = try await vault.seal(Secret("v"), in: context, keys: keys)
        counting.down.withLock { $0 = true }
        #expect(try await vault.open(sealed, in: context, keys: keys).unprotectedString == "v")
        try await Task.sleep(for: .milliseconds(300))
        await #expect(throws: VaultError.custodyUnavailable(deviceCode: "test_down", detail: "the test took the device away")) {
            try await vault.open(sealed, in: context, keys: keys)
        }
        // A new workspace's first secret cannot be sealed either: no key is made without the device.
        await #expect(throws: VaultError.self) {
            try await vault.seal(Secret("w"), in: SecretContext(scope: .workspace("ws_new"), ownerID: "k", field: "api_key"), keys: keys)
        }
        #expect(keys.all.count == 1)
        counting.down.withLock { $0 = false }
        #expect(try await vault.open(sealed, in: context, keys: keys).unprotectedString == "v")
    }

    @Test("the cache holds at most its capacity, and forgetting a scope drops its keys")
    func cacheCapacityAndForget() {
        let cache = ScopeKeyCache(timeToLive: .seconds(60), capacity: 64)
        for index in 0..<1000 {
            cache.hold(ScopeKey(id: "wk-\(index)", scope: .workspace("ws_\(index % 10)"), key: .init(size: .bits256)))
        }
        #expect(cache.count <= 64)
        #expect(cache.key(id: "wk-999") != nil)
        cache.forget(scope: .workspace("ws_9"))
        #expect(cache.key(id: "wk-999") == nil && cache.key(id: "wk-998") != nil)
    }
}

/// In the token suite, which is serialized: a token's close finalizes the module the other tests use.
extension PKCS11TokenTests {
    var logger: Logger { Logger(label: "test") }

    func custodyToken(key: String = "kw-master") throws -> PKCS11Configuration {
        let label = SoftHSM.label("custody")
        try SoftHSM.makeToken(label: label, pin: pin)
        let configuration = try PKCS11Configuration(modulePath: try #require(SoftHSM.module), tokenLabel: label, pin: Secret(pin), keyLabel: key)
        let setup = try PKCS11Token(configuration: configuration, requireKey: false)
        try setup.generateKey(label: key)
        setup.close()
        return configuration
    }

    @Test("seal, restart, open: workspace keys wrapped inside the token")
    func sealRestartOpen() async throws {
        let configuration = try custodyToken()
        try await CustodyChecks.sealRestartOpen { try PKCS11Custodian(configuration: configuration, logger: logger) }
    }

    @Test("the master key rotated inside the token: workspace keys re-wrapped under the new key open without the old one")
    func rotateInsideTheToken() async throws {
        let old = try custodyToken(key: "kw-master-1")
        let keys = InMemoryScopeKeyDirectory()
        let context = SecretContext(scope: .workspace("ws_r"), ownerID: "key_1", field: "api_key")
        let first = Vault(custodian: try PKCS11Custodian(configuration: old, logger: logger))
        let sealed = try await first.seal(Secret(CustodyChecks.canary), in: context, keys: keys)
        await first.close()

        let new = try PKCS11Configuration(modulePath: old.modulePath, tokenLabel: old.tokenLabel, pin: old.pin, keyLabel: "kw-master-2")
        let setup = try PKCS11Token(configuration: new, requireKey: false)
        try setup.generateKey(label: "kw-master-2")
        setup.close()
        let rotating = Vault(custodian: try PKCS11Custodian(configuration: new, previousKeyLabels: ["kw-master-1"], logger: logger))
        #expect(rotating.custodian.decryptOnlyKeyIDs == ["pkcs11:\(old.tokenLabel)/kw-master-1"])
        for stored in keys.all {
            let rewrapped = try await rotating.rewrapScopeKey(stored)
            #expect(rewrapped.masterKeyID == "pkcs11:\(old.tokenLabel)/kw-master-2")
            keys.replace(rewrapped)
        }
        await rotating.close()

        let after = Vault(custodian: try PKCS11Custodian(configuration: new, logger: logger))
        #expect(try await after.open(sealed, in: context, keys: keys).unprotectedString == CustodyChecks.canary)
        await after.close()
    }

    @Test("a wrong PIN or a missing key is a clear error at start")
    func refusalsAtStart() throws {
        let configuration = try custodyToken()
        let wrongPIN = try PKCS11Configuration(modulePath: configuration.modulePath, tokenLabel: configuration.tokenLabel, pin: Secret("0000"),
                                               keyLabel: configuration.keyLabel)
        #expect(throws: PKCS11Error.wrongPIN) { try PKCS11Custodian(configuration: wrongPIN, logger: logger) }
        let noKey = try PKCS11Configuration(modulePath: configuration.modulePath, tokenLabel: configuration.tokenLabel, pin: Secret(pin), keyLabel: "absent")
        #expect(throws: PKCS11Error.keyNotFound(label: "absent")) { try PKCS11Custodian(configuration: noKey, logger: logger) }
    }

    @Test("the token's session lost mid-run is opened again on the next call")
    func sessionLostMidRun() async throws {
        let configuration = try custodyToken()
        let custodian = try PKCS11Custodian(configuration: configuration, logger: logger)
        let keys = InMemoryScopeKeyDirectory()
        let context = SecretContext(scope: .workspace("ws_s"), ownerID: "key_1", field: "api_key")
        let vault = Vault(custodian: custodian)
        let sealed = try await vault.seal(Secret("v"), in: context, keys: keys)
        await custodian.close()
        vault.forgetAll()
        #expect(try await vault.open(sealed, in: context, keys: keys).unprotectedString == "v")
        await vault.close()
    }
}

@Suite("Key custody on a local KMS (moto)")
struct KMSCustodyTests {
    let logger = Logger(label: "test")

    func configuration(_ moto: KMSPeer, keyID: String? = nil, endpoint: URL? = nil) throws -> KMSConfiguration {
        try KMSConfiguration(keyID: keyID ?? moto.info["keyId"] ?? "", region: "us-east-1", endpoint: endpoint ?? moto.endpoint,
                             credentials: .init(accessKeyID: moto.info["accessKeyId"] ?? "", secretAccessKey: Secret(moto.info["secretAccessKey"] ?? "")),
                             timeout: .seconds(10))
    }

    @Test("seal, restart, open: workspace keys encrypted by the KMS under an encryption context")
    func sealRestartOpen() async throws {
        let moto = try await KMSPeer.moto.value
        let configuration = try configuration(moto)
        try await CustodyChecks.sealRestartOpen { try KMSCustodian(configuration: configuration, logger: logger) }
    }

    @Test("the master key moved to another KMS key: workspace keys re-wrapped, then the old key is not needed")
    func rotateToAnotherKey() async throws {
        let moto = try await KMSPeer.moto.value
        let keys = InMemoryScopeKeyDirectory()
        let context = SecretContext(scope: .workspace("ws_k"), ownerID: "key_1", field: "api_key")
        let first = Vault(custodian: try KMSCustodian(configuration: try configuration(moto), logger: logger))
        let sealed = try await first.seal(Secret(CustodyChecks.canary), in: context, keys: keys)
        await first.close()
        let other = try #require(moto.info["otherKeyId"])
        let rotating = Vault(custodian: try KMSCustodian(configuration: try configuration(moto, keyID: other), previousKeyIDs: [moto.info["keyId"] ?? ""], logger: logger))
        for stored in keys.all { keys.replace(try await rotating.rewrapScopeKey(stored)) }
        await rotating.close()
        let after = Vault(custodian: try KMSCustodian(configuration: try configuration(moto, keyID: other), logger: logger))
        #expect(keys.all.allSatisfy { $0.masterKeyID == "kms:\(other)" })
        #expect(try await after.open(sealed, in: context, keys: keys).unprotectedString == CustodyChecks.canary)
        await after.close()
    }

    @Test("moving from the keyring to the KMS: what the keyring wrapped opens beside the device, moves under it, and then opens without the keyring")
    func keyringToKMS() async throws {
        let moto = try await KMSPeer.moto.value
        let keys = InMemoryScopeKeyDirectory()
        let keyring = Keyring.generate()
        let context = SecretContext(scope: .workspace("ws_move"), ownerID: "key_1", field: "api_key")
        let before = Vault(keyring: keyring)
        let sealed = try await before.seal(Secret(CustodyChecks.canary), in: context, keys: keys)
        let old = try before.sealInFormat1(Secret("format one"), in: context)

        let beside = Vault(custodian: try KMSCustodian(configuration: try configuration(moto), logger: logger), legacyKeyring: LocalKeyring(keyring: keyring))
        #expect(try await beside.open(sealed, in: context, keys: keys).unprotectedString == CustodyChecks.canary)
        #expect(try await beside.open(old, in: context, keys: keys).unprotectedString == "format one")
        for stored in keys.all { keys.replace(try await beside.rewrapScopeKey(stored)) }
        let moved = try await beside.rewrap(old, in: context, keys: keys)
        #expect(keys.all.allSatisfy { $0.masterKeyID.hasPrefix("kms:") })
        await beside.close()

        let deviceOnly = Vault(custodian: try KMSCustodian(configuration: try configuration(moto), logger: logger))
        #expect(try await deviceOnly.open(sealed, in: context, keys: keys).unprotectedString == CustodyChecks.canary)
        #expect(try await deviceOnly.open(moved, in: context, keys: keys).unprotectedString == "format one")
        await #expect(throws: VaultError.unreadable(.unknownMasterKey)) { try await deviceOnly.open(old, in: context, keys: keys) }
        await deviceOnly.close()
    }

    @Test("a KMS alias, or plain http to another machine, is refused: an alias can be re-pointed, and the keys travel in the body")
    func refusedSettings() throws {
        let credentials = SigV4Signer.Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: Secret("x"))
        let alias = try KMSConfiguration(keyID: "alias/keywarden", region: "us-east-1", credentials: credentials)
        #expect(throws: KMSError.self) { try KMSCustodian(configuration: alias, logger: logger) }
        #expect(throws: KMSError.self) {
            try KMSConfiguration(keyID: "k", region: "us-east-1", endpoint: URL(string: "http://kms.example.com"), credentials: credentials)
        }
        _ = try KMSConfiguration(keyID: "k", region: "us-east-1", endpoint: URL(string: "http://localhost:4566"), credentials: credentials)
    }

    @Test("a disabled key, denied access or an unreachable KMS is custody_unavailable at the start check, never a crash")
    func refusals() async throws {
        let moto = try await KMSPeer.moto.value
        // The hostile double answers as AWS does (the moto of scripts/test-kms-server.py refuses disabled keys too; its
        // refusals are CustomerKeyTests' subject).
        let double = try await KMSPeer.double.value
        for (configuration, code) in [(try configuration(moto, keyID: "disabled", endpoint: double.endpoint), "kms_key_disabled"),
                                      (try configuration(moto, keyID: "bad-signature", endpoint: double.endpoint), "kms_access_denied"),
                                      (try configuration(moto, endpoint: URL(string: "http://127.0.0.1:\(closedPort())")), "kms_unreachable")] {
            let vault = Vault(custodian: try KMSCustodian(configuration: configuration, logger: logger))
            do {
                try await vault.checkCustody()
                Issue.record("the check passed for \(code)")
            } catch {
                guard case .custodyUnavailable(let found, let detail) = error else { Issue.record("\(error)"); continue }
                #expect(found == code)
                #expect(!detail.contains(moto.info["secretAccessKey"] ?? "-"))
            }
            await vault.close()
        }
    }
}

/// Calls that miss one workspace key together share one device call.
@Suite("Key custody: one unwrap per key at a time")
struct ScopeKeySingleFlightTests {
    @Test("a hundred calls missing the same workspace key at once make one device call")
    func concurrentMissesShareOneUnwrap() async throws {
        let counting = CountingCustodian(SlowCustodian(LocalKeyring(keyring: .generate())))
        let keys = InMemoryScopeKeyDirectory()
        let context = SecretContext(scope: .workspace("ws_busy"), ownerID: "key_1", field: "api_key")
        let sealed = try await Vault(custodian: counting).seal(Secret("v"), in: context, keys: keys)
        let before = counting.unwraps
        let vault = Vault(custodian: counting)
        try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<100 { group.addTask { try await vault.open(sealed, in: context, keys: keys).unprotectedString } }
            for try await value in group { #expect(value == "v") }
        }
        #expect(counting.unwraps == before + 1)
    }
}

/// A custodian whose unwrap takes 50 ms, as a device across a network does.
final class SlowCustodian: MasterKeyCustodian {
    let inner: any MasterKeyCustodian
    init(_ inner: any MasterKeyCustodian) { self.inner = inner }
    var activeKeyID: String { inner.activeKeyID }
    var decryptOnlyKeyIDs: [String] { inner.decryptOnlyKeyIDs }
    var description: String { "slow \(inner)" }
    func wrap(_ material: Secret, id: String, scope: Scope) async throws(VaultError) -> (masterKeyID: String, wrapped: [UInt8]) {
        try await inner.wrap(material, id: id, scope: scope)
    }
    func unwrap(_ key: WrappedScopeKey) async throws(VaultError) -> Secret {
        try? await Task.sleep(for: .milliseconds(50))
        return try await inner.unwrap(key)
    }
    func close() async { await inner.close() }
}
