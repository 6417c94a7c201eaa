import Foundation
import KeywardenCore
import KeywardenTestSupport
import Logging
import Testing
@testable import KeywardenVault

/// Workspaces' own KMS keys (customer-managed keys): what an ARN may be, how the KMS's answers are read, and a key's
/// life on a local KMS (moto, refusing disabled keys as AWS does) — set, used, disabled, re-enabled, scheduled for deletion.
@Suite("Customer-managed keys")
struct CustomerKeyTests {
    let logger = Logger(label: "test")
    static let canary = "sk-customer-key-canary-7d21c0"

    @Test("only a full KMS key ARN is a customer key: aliases, bare ids, other services and every odd spelling are refused")
    func arnSpellings() throws {
        let good = ["arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                    "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
                    "arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                    "  arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab  "]
        for text in good {
            let key = try CustomerKeyARN.parse(text).get()
            #expect(key.account == "111122223333" && key.arn == text.trimmingCharacters(in: .whitespaces))
            #expect(key.wrappingKeyID == "cmk:" + key.arn)
        }
        let uuid = "1234abcd-12ab-34cd-56ef-1234567890ab"
        let bad = [
            "", uuid, "alias/mine", "arn:aws:kms:eu-west-1:111122223333:alias/mine",
            "arn:aws:s3:eu-west-1:111122223333:key/\(uuid)", "arn:aws:kms:eu-west-1:11112222333:key/\(uuid)",
            "arn:aws:kms:eu-west-1:1111222233334:key/\(uuid)", "arn:aws:kms:eu-west-1:11112222333a:key/\(uuid)",
            "arn:aws:kms:EU-WEST-1:111122223333:key/\(uuid)", "arn:aws:kms:eu-west-1.evil.example:111122223333:key/\(uuid)",
            "arn:aws:kms:eu-west-1/..:111122223333:key/\(uuid)", "arn:aws:kms:eu west:111122223333:key/\(uuid)",
            "arn:aws:kms::111122223333:key/\(uuid)", "arn:aws:kms:1eu:111122223333:key/\(uuid)",
            "arn:aws:kms:eu-west-1:111122223333:key/\(uuid.uppercased())", "arn:aws:kms:eu-west-1:111122223333:key/\(uuid)x",
            "arn:aws:kms:eu-west-1:111122223333:key/\(uuid):extra", "arn:aws:kms:eu-west-1:111122223333:key/mrk-123",
            "arn:aws:kms:eu-west-1:111122223333:key/\(uuid)\n", "arn:aws:kms:eu-west-1:111122223333:key/../\(uuid)",
            "arn:other:kms:eu-west-1:111122223333:key/\(uuid)", "arn:aws:kms:eu-west-1:111122223333:key/",
            "arn:aws:kms:eu-west-1:111122223333:key/\(uuid)?x=1", String(repeating: "a", count: 300),
        ]
        for text in bad {
            #expect(throws: CustomerKeyARNProblem.self, "\(text)") { try CustomerKeyARN.parse(text).get() }
        }
    }

    @Test("the KMS's refusals of a customer's key are revocations; Keywarden's own credentials refused, or the KMS away, are not")
    func refusalsRead() {
        let key = try! CustomerKeyARN.parse("arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab").get()
        func vendor(_ type: String) -> KMSVendorError { KMSVendorError(status: 400, type: type, message: "m") }
        let revoked: [KMSError] = [.keyDisabled(vendor("DisabledException")), .keyDisabled(vendor("KMSInvalidStateException")),
                                   .keyNotFound(vendor("NotFoundException")), .accessDenied(vendor("AccessDeniedException")),
                                   .rejected(vendor("InvalidKeyUsageException"))]
        for error in revoked { #expect(CustomerKeys.vaultError(error, key: key).isCustomerKeyRevoked, "\(error)") }
        let outages: [KMSError] = [.accessDenied(vendor("UnrecognizedClientException")), .accessDenied(vendor("InvalidSignatureException")),
                                   .accessDenied(vendor("ExpiredTokenException")), .unreachable(reason: "refused"),
                                   .deadlineExceeded(after: .seconds(5)), .throttled(vendor("ThrottlingException")),
                                   .vendorFailure(vendor("KMSInternalException")), .malformedAnswer(detail: "x"),
                                   // Retryable by AWS's word, and answers without an error type (a proxy's, a wrong region's front end).
                                   .keyDisabled(vendor("KeyUnavailableException")), .accessDenied(KMSVendorError(status: 403, type: "", message: "")),
                                   .keyNotFound(KMSVendorError(status: 404, type: "", message: "")), .rejected(vendor("ValidationException"))]
        for error in outages {
            let said = CustomerKeys.vaultError(error, key: key)
            #expect(said.isCustodyUnavailable && !said.isCustomerKeyRevoked, "\(error)")
        }
        #expect(CustomerKeys.vaultError(.invalidCiphertext(vendor("InvalidCiphertextException")), key: key) == .unreadable(.authenticationFailed))
    }

    @Test("a region is a region (it becomes part of the KMS's host name); an AWS regional endpoint serves its own region only; aws-cn keys go to amazonaws.com.cn")
    func regionsAndEndpoints() async throws {
        for region in ["us-east-1", "eu-west-3", "us-gov-west-1", "ap-southeast-4", "cn-north-1", "il-central-1"] {
            #expect(CustomerKeyARN.isRegion(region), "\(region)")
        }
        for region in ["s3", "kms", "us-east", "us--1", "u-east-1", "us-east-123", "us-east-1a", "fips-us-east-1", "us-east-1.evil", "US-east-1", ""] {
            #expect(!CustomerKeyARN.isRegion(region), "\(region)")
        }
        let uuid = "1234abcd-12ab-34cd-56ef-1234567890ab"
        let china = try CustomerKeyARN.parse("arn:aws-cn:kms:cn-north-1:111122223333:key/\(uuid)").get()
        #expect(china.regionalEndpoint?.absoluteString == "https://kms.cn-north-1.amazonaws.com.cn")
        let ireland = try CustomerKeyARN.parse("arn:aws:kms:eu-west-1:111122223333:key/\(uuid)").get()
        #expect(ireland.regionalEndpoint?.absoluteString == "https://kms.eu-west-1.amazonaws.com")
        let credentials = SigV4Signer.Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: Secret("x"))
        func keys(_ endpoint: String?) throws -> CustomerKeys {
            CustomerKeys(configuration: try CustomerKeyConfiguration(credentials: credentials, endpoint: endpoint.flatMap(URL.init(string:))), logger: logger)
        }
        let (regional, own, plain, vpce) = (try keys("https://kms.us-east-1.amazonaws.com"), try keys("https://kms.eu-west-1.amazonaws.com"),
                                            try keys(nil), try keys("https://vpce-0abc.kms.eu-west-1.vpce.amazonaws.com"))
        #expect(!regional.reaches(ireland))
        #expect(own.reaches(ireland) && plain.reaches(ireland) && vpce.reaches(ireland))
        for keys in [regional, own, plain, vpce] { await keys.close() }
    }

    func customerKeys(_ moto: KMSPeer, endpoint: URL? = nil, secret: String? = nil, accounts: Set<String> = []) throws -> CustomerKeys {
        let credentials = SigV4Signer.Credentials(accessKeyID: moto.info["accessKeyId"] ?? "", secretAccessKey: Secret(secret ?? moto.info["secretAccessKey"] ?? ""))
        return CustomerKeys(configuration: try CustomerKeyConfiguration(credentials: credentials, endpoint: endpoint ?? moto.endpoint,
                                                                        allowedAccounts: accounts, timeout: .seconds(10)), logger: logger)
    }

    @Test("a workspace key under the customer's key: opens while the key is enabled; disabled, it stops once the key held is dropped; re-enabled, it opens again; scheduled for deletion, it stops again")
    func customerKeyLifecycle() async throws {
        let moto = try await KMSPeer.moto.value
        let arn = try await moto.customer("create")
        let key = try CustomerKeyARN.parse(arn).get()
        let directory = InMemoryScopeKeyDirectory()
        let vault = Vault(custodian: LocalKeyring(keyring: .generate()), customerKeys: try customerKeys(moto), cacheTimeToLive: .seconds(3))
        defer { Task { await vault.close() } }
        let scope = Scope.workspace("ws_cmk")
        let context = SecretContext(scope: scope, ownerID: "key_1", field: "api_key")
        _ = try await vault.makeScopeKey(for: scope, keys: directory, customerKey: key)
        let stored = try #require(directory.all.first)
        #expect(stored.masterKeyID == "cmk:\(arn)" && stored.customerKey == key && stored.isUnderCustomerKey)
        let sealed = try await vault.seal(Secret(Self.canary), in: context, keys: directory)
        #expect(!String(decoding: stored.wrapped + sealed.ciphertext, as: UTF8.self).contains(Self.canary))

        // A master-key rotation leaves it as it is: it is not the master key's.
        #expect(try await vault.rewrapScopeKey(stored) == stored)

        // Disabled: once the key held is dropped (its time is up), the customer's refusal is said.
        #expect(try await moto.customer("disable", key: arn) == "Disabled")
        try await Task.sleep(for: vault.cacheTimeToLive + .milliseconds(100))
        let refusedAt = ContinuousClock.now
        do {
            _ = try await vault.open(sealed, in: context, keys: directory)
            Issue.record("a disabled customer key still opened the secret")
        } catch let error as VaultError {
            #expect(error.isCustomerKeyRevoked && error.code == "customer_key_revoked", "\(error)")
            #expect(error.description.contains("kms_key_disabled") && !error.description.contains(Self.canary))
            #expect(!error.description.contains(moto.info["secretAccessKey"] ?? "-"))
        }
        // A new secret of the workspace is not sealed either (the key is unwrapped to seal).
        await #expect(throws: VaultError.self) { try await vault.seal(Secret("new"), in: context, keys: directory) }

        // Re-enabled: the refusal is remembered for a short while (no KMS call per call meanwhile), then it opens.
        #expect(try await moto.customer("enable", key: arn) == "Enabled")
        // (Checked only while the refusal is surely remembered: the SDK's start can take longer than it on a busy machine.)
        if ContinuousClock.now - refusedAt < vault.customerKeyRetryInterval - .milliseconds(100) {
            await #expect(throws: VaultError.self) { try await vault.open(sealed, in: context, keys: directory) }
        }
        try await Task.sleep(for: vault.customerKeyRetryInterval + .milliseconds(100))
        #expect(try await vault.open(sealed, in: context, keys: directory).unprotectedString == Self.canary)

        // Asked now, past the copy held: a revocation a moment ago is seen at once, and the copy is dropped.
        let held = Vault(custodian: LocalKeyring(keyring: .generate()), customerKeys: try customerKeys(moto), cacheTimeToLive: .seconds(300))
        _ = try await held.unwrap(stored)
        try await moto.customer("disable", key: arn)
        #expect(try await held.open(sealed, in: context, keys: directory).unprotectedString == Self.canary, "the copy held serves")
        await #expect(throws: VaultError.self) { try await held.checkCustomerKey(stored) }
        await #expect(throws: VaultError.self) { try await held.open(sealed, in: context, keys: directory) }
        await held.close()
        try await moto.customer("enable", key: arn)
        try await Task.sleep(for: vault.customerKeyRetryInterval + .milliseconds(100))

        // Scheduled for deletion: refused again once the key held is dropped.
        #expect(try await moto.customer("schedule-deletion", key: arn) == "PendingDeletion")
        try await Task.sleep(for: vault.cacheTimeToLive + .milliseconds(100))
        do {
            _ = try await vault.open(sealed, in: context, keys: directory)
            Issue.record("a customer key pending deletion still opened the secret")
        } catch let error as VaultError {
            #expect(error.isCustomerKeyRevoked && error.description.contains("kms_key_disabled"), "\(error)")
        }
        try await moto.customer("cancel-deletion", key: arn)
        try await moto.customer("enable", key: arn)
        try await Task.sleep(for: vault.customerKeyRetryInterval + .milliseconds(100))
        #expect(try await vault.open(sealed, in: context, keys: directory).unprotectedString == Self.canary)
    }

    @Test("a key that refuses when it is set is never stored; the KMS away or Keywarden's credentials refused are outages, not revocations; an instance not configured for customer keys says so")
    func refusedAndUnreachable() async throws {
        let moto = try await KMSPeer.moto.value
        let arn = try await moto.customer("create")
        let key = try CustomerKeyARN.parse(arn).get()
        try await moto.customer("disable", key: arn)
        let directory = InMemoryScopeKeyDirectory()
        let scope = Scope.workspace("ws_refused")
        let vault = Vault(custodian: LocalKeyring(keyring: .generate()), customerKeys: try customerKeys(moto))
        do {
            _ = try await vault.makeScopeKey(for: scope, keys: directory, customerKey: key)
            Issue.record("a disabled key was set")
        } catch let error as VaultError {
            #expect(error.isCustomerKeyRevoked, "\(error)")
        }
        #expect(directory.all.isEmpty)
        await vault.close()

        try await moto.customer("enable", key: arn)
        let unreachable = Vault(custodian: LocalKeyring(keyring: .generate()),
                                customerKeys: try customerKeys(moto, endpoint: URL(string: "http://127.0.0.1:\(closedPort())")))
        let wrongSecret = Vault(custodian: LocalKeyring(keyring: .generate()), customerKeys: try customerKeys(moto, secret: "not-the-secret-key"))
        for vault in [unreachable, wrongSecret] {
            do {
                _ = try await vault.makeScopeKey(for: scope, keys: directory, customerKey: key)
                Issue.record("a key was set through \(vault)")
            } catch let error as VaultError {
                #expect(error.isCustodyUnavailable && !error.isCustomerKeyRevoked, "\(error)")
                #expect(!error.description.contains("not-the-secret-key"))
            }
            await vault.close()
        }
        #expect(directory.all.isEmpty)

        // Made by an instance that reaches customer keys, opened by one that does not: an outage naming the setting.
        let configured = Vault(custodian: LocalKeyring(keyring: .generate()), customerKeys: try customerKeys(moto))
        _ = try await configured.makeScopeKey(for: scope, keys: directory, customerKey: key)
        let stored = try #require(directory.all.first)
        await configured.close()
        let plain = Vault(custodian: LocalKeyring(keyring: .generate()))
        do {
            _ = try await plain.unwrap(stored)
            Issue.record("an instance without customer keys unwrapped one")
        } catch {
            #expect(error.isCustodyUnavailable && "\(error)".contains("KEYWARDEN_CUSTOMER_KEYS"), "\(error)")
        }
        await #expect(throws: VaultError.self) { try await plain.makeScopeKey(for: scope, keys: directory, customerKey: key) }
        // The platform's scope never takes a customer key.
        await #expect(throws: VaultError.self) { try await configured.makeScopeKey(for: .platform, keys: directory, customerKey: key) }
    }

    @Test("the configuration: off unless aws-kms; credentials required; accounts are 12 digits; an endpoint is checked as the master key's is")
    func configurationFromEnvironment() throws {
        #expect(try CustomerKeyConfiguration.fromEnvironment([:]) == nil)
        #expect(try CustomerKeyConfiguration.fromEnvironment(["KEYWARDEN_CUSTOMER_KEYS": "off"]) == nil)
        let base = ["KEYWARDEN_CUSTOMER_KEYS": "aws-kms", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret-canary-0c9a"]
        let configured = try #require(try CustomerKeyConfiguration.fromEnvironment(base.merging(["KEYWARDEN_CUSTOMER_KEY_ACCOUNTS": "111122223333, 444455556666"]) { $1 }))
        #expect(configured.allowedAccounts == ["111122223333", "444455556666"] && configured.endpoint == nil)
        #expect(!"\(configured)".contains("secret-canary-0c9a"))
        let refusals: [([String: String], String)] = [
            (["KEYWARDEN_CUSTOMER_KEYS": "yes"], "KEYWARDEN_CUSTOMER_KEYS"),
            (["KEYWARDEN_CUSTOMER_KEYS": "aws-kms"], "AWS_ACCESS_KEY_ID"),
            (base.merging(["AWS_SECRET_ACCESS_KEY": ""]) { $1 }, "AWS_SECRET_ACCESS_KEY"),
            (base.merging(["KEYWARDEN_CUSTOMER_KEY_ACCOUNTS": "1111"]) { $1 }, "KEYWARDEN_CUSTOMER_KEY_ACCOUNTS"),
            (base.merging(["KEYWARDEN_CUSTOMER_KEY_KMS_ENDPOINT": "http://kms.example.com"]) { $1 }, "KEYWARDEN_CUSTOMER_KEY_KMS_ENDPOINT"),
            (base.merging(["KEYWARDEN_CUSTOMER_KEY_KMS_ENDPOINT": "https://kms.example.com/path"]) { $1 }, "KEYWARDEN_CUSTOMER_KEY_KMS_ENDPOINT"),
        ]
        for (environment, setting) in refusals {
            do {
                _ = try CustomerKeyConfiguration.fromEnvironment(environment)
                Issue.record("accepted \(environment)")
            } catch {
                guard case .configuration(let named, _) = error else { Issue.record("\(error)"); continue }
                #expect(named == setting)
            }
        }
    }
}
