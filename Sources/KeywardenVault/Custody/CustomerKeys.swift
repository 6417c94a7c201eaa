import AsyncHTTPClient
import Foundation
import KeywardenCore
import Logging
import Synchronization

/// A workspace's own AWS KMS key (a customer-managed key), named by its full key ARN.
///
/// Only a key ARN is accepted: a bare key id means a key of Keywarden's own account, and an alias can be pointed at
/// another key (every workspace key it wrapped would stop opening the day it is).
public struct CustomerKeyARN: Sendable, Hashable, CustomStringConvertible {
    /// The ARN as given (`arn:aws:kms:eu-west-1:111122223333:key/…`).
    public let arn: String
    /// The AWS partition (`aws`, `aws-cn`, `aws-us-gov`).
    public let partition: String
    /// The region the key lives in, from the ARN.
    public let region: String
    /// The AWS account that owns the key, from the ARN (12 digits).
    public let account: String
    /// The key's id, from the ARN (a UUID, or `mrk-…` for a multi-Region key).
    public let keyID: String

    /// The ARN `text` names, or why it is not one: the problem, in words for the person who typed it.
    public static func parse(_ text: String) -> Result<CustomerKeyARN, CustomerKeyARNProblem> {
        let text = text.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty, text.utf8.count <= 256 else { return .failure(.init("must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID)")) }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 6, parts[0] == "arn", ["aws", "aws-cn", "aws-us-gov"].contains(parts[1]), parts[2] == "kms" else {
            return .failure(.init("must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID)"))
        }
        let (region, account, resource) = (parts[3], parts[4], parts[5])
        guard isRegion(region) else { return .failure(.init("names no AWS region (such as eu-west-1)")) }
        guard account.count == 12, account.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) }) else {
            return .failure(.init("names no AWS account (12 digits)"))
        }
        if resource.hasPrefix("alias/") { return .failure(.init("names an alias; give the key's own ARN (an alias can be moved to another key)")) }
        guard resource.hasPrefix("key/") else { return .failure(.init("must name a key (…:key/KEY-ID)")) }
        let keyID = String(resource.dropFirst(4))
        guard isKeyID(keyID) else { return .failure(.init("names no key id (a UUID, or mrk- and 32 hex digits)")) }
        return .success(CustomerKeyARN(arn: text, partition: parts[1], region: region, account: account, keyID: keyID))
    }

    /// An AWS region's shape: two letters, one or more words, a number (`eu-west-1`, `us-gov-west-1`, `ap-southeast-4`);
    /// the region becomes part of the KMS's host name, so nothing else is one.
    static func isRegion(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        let letters = { (s: Substring) in !s.isEmpty && s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) } }
        guard parts.count >= 3, text.count <= 32, let number = parts.last, parts[0].count == 2, letters(parts[0]) else { return false }
        return parts.dropFirst().dropLast().allSatisfy(letters) && (1...2).contains(number.count)
            && number.unicodeScalars.allSatisfy { ("0"..."9").contains($0) }
    }

    /// AWS's KMS endpoint for the key's region and partition.
    var regionalEndpoint: URL? {
        URL(string: "https://kms.\(region).\(partition == "aws-cn" ? "amazonaws.com.cn" : "amazonaws.com")")
    }

    /// A key id: a UUID in lower-case hex, or a multi-Region key's `mrk-` and 32 hex digits.
    static func isKeyID(_ id: String) -> Bool {
        let hex = { (s: Substring) in !s.isEmpty && s.unicodeScalars.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) } }
        if id.hasPrefix("mrk-") { return id.count == 36 && hex(id.dropFirst(4)) }
        let groups = id.split(separator: "-", omittingEmptySubsequences: false)
        return groups.map(\.count) == [8, 4, 4, 4, 12] && groups.allSatisfy(hex)
    }

    /// The id a workspace key wrapped by this key records as its wrapping key.
    public var wrappingKeyID: String { CustomerKeys.prefix + arn }

    public var description: String { arn }
}

/// Why a text is not a customer key's ARN.
public struct CustomerKeyARNProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// How Keywarden reaches workspaces' own KMS keys: its AWS credentials (the key's policy grants them Encrypt and
/// Decrypt), an optional endpoint, the accounts whose keys may be named, and each call's deadline.
public struct CustomerKeyConfiguration: Sendable, CustomStringConvertible {
    /// `aws-kms` lets workspaces bring their own KMS key; unset or `off` does not.
    public static let modeVariable = "KEYWARDEN_CUSTOMER_KEYS"
    /// The KMS endpoint for every customer key (a local KMS, a VPC endpoint); unset: AWS's endpoint of the key's region.
    public static let endpointVariable = "KEYWARDEN_CUSTOMER_KEY_KMS_ENDPOINT"
    /// The AWS accounts (comma-separated, 12 digits each) whose keys workspaces may name; unset: any account.
    public static let accountsVariable = "KEYWARDEN_CUSTOMER_KEY_ACCOUNTS"

    /// Keywarden's AWS credentials (the standard `AWS_*` variables).
    public let credentials: SigV4Signer.Credentials
    /// The endpoint of every call, `nil` for AWS's endpoint of the key's region.
    public let endpoint: URL?
    /// The accounts whose keys may be named; empty: any.
    public let allowedAccounts: Set<String>
    /// How long a call may take.
    public var timeout: Duration

    /// A configuration; an endpoint is checked as the master key's KMS endpoint is (https, or http to this machine).
    public init(credentials: SigV4Signer.Credentials, endpoint: URL? = nil, allowedAccounts: Set<String> = [],
                timeout: Duration = KMSConfiguration.defaultTimeout) throws(KMSError) {
        for account in allowedAccounts where account.count != 12 || !account.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) }) {
            throw .configuration(setting: Self.accountsVariable, problem: "must list AWS account ids of 12 digits, got '\(account)'")
        }
        // The same checks as the master key's KMS (one place): a probe configuration in a valid region.
        do {
            _ = try KMSConfiguration(keyID: "probe", region: "us-east-1", endpoint: endpoint, credentials: credentials, timeout: timeout)
        } catch .configuration(let setting, let problem) {
            throw .configuration(setting: setting == "endpoint" ? Self.endpointVariable : setting, problem: problem)
        }
        self.credentials = credentials
        self.endpoint = endpoint
        self.allowedAccounts = allowedAccounts
        self.timeout = timeout
    }

    /// The configuration `environment` gives: `nil` unless `KEYWARDEN_CUSTOMER_KEYS=aws-kms`; then the credentials
    /// from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) are required.
    public static func fromEnvironment(_ environment: [String: String]) throws(KMSError) -> CustomerKeyConfiguration? {
        switch KMSConfiguration.setting(modeVariable, in: environment)?.lowercased() {
        case nil, "off": return nil
        case "aws-kms": break
        case let other?: throw .configuration(setting: modeVariable, problem: "must be aws-kms or off, got '\(other)'")
        }
        let credentials = try KMSConfiguration.credentials(in: environment, missing: "is not set (\(modeVariable) is aws-kms)")
        let endpoint = try KMSConfiguration.endpoint(endpointVariable, in: environment)
        return try CustomerKeyConfiguration(credentials: credentials, endpoint: endpoint,
                                            allowedAccounts: Set(KeyringSource.list(environment[accountsVariable])))
    }

    public var description: String {
        "customer keys in AWS KMS at \(endpoint?.absoluteString ?? "each key's regional endpoint") (access key \(credentials.accessKeyID))"
            + (allowedAccounts.isEmpty ? "" : ", accounts \(allowedAccounts.sorted().joined(separator: ", "))")
    }
}

/// Workspaces' own KMS keys as wrappers of their workspace keys: a workspace key wrapped by its customer's key records
/// `cmk:` and the key's ARN as its wrapping key, and opens only while the customer lets Keywarden's credentials decrypt.
///
/// A refusal by the customer's key (disabled, scheduled for deletion, deleted, or the key's policy no longer granting
/// Keywarden) is ``VaultError/customerKeyRevoked(deviceCode:detail:)``; the KMS away or failing is
/// ``VaultError/custodyUnavailable(deviceCode:detail:)``; Keywarden's own credentials refused are that too (every
/// customer key would say so, and no customer revoked anything).
public final class CustomerKeys: Sendable {
    /// The prefix of the wrapping-key id of a workspace key under a customer's key.
    public static let prefix = "cmk:"

    /// How Keywarden reaches the keys.
    public let configuration: CustomerKeyConfiguration
    private let httpClient: HTTPClient
    private let logger: Logger
    private let clients = Mutex<[String: KMSClient]>([:])

    /// Reaches customer keys as `configuration` says, with its own HTTP client (no connection retries: a call ends
    /// within its deadline).
    public init(configuration: CustomerKeyConfiguration, logger: Logger) {
        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.connectionPool.retryConnectionEstablishment = false
        httpConfiguration.timeout = .init(connect: .init(configuration.timeout), read: .init(configuration.timeout))
        self.httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
        self.configuration = configuration
        self.logger = logger
    }

    /// Whether `key`'s account may be named here (``CustomerKeyConfiguration/allowedAccounts``).
    public func allows(_ key: CustomerKeyARN) -> Bool {
        configuration.allowedAccounts.isEmpty || configuration.allowedAccounts.contains(key.account)
    }

    /// Whether the configured endpoint serves `key`'s region: an AWS regional endpoint (`kms.REGION.amazonaws.com`)
    /// serves its own region only; any other endpoint (a VPC endpoint's name, a local KMS) is taken at its word.
    public func reaches(_ key: CustomerKeyARN) -> Bool {
        guard let host = configuration.endpoint?.host?.lowercased(), host.hasPrefix("kms."),
              host.hasSuffix(".amazonaws.com") || host.hasSuffix(".amazonaws.com.cn") else { return true }
        return host.dropFirst(4).prefix { $0 != "." } == key.region
    }

    /// Encrypts a workspace key's material under `key`, bound to the workspace key's id and scope.
    func wrap(_ material: Secret, id: String, scope: Scope, under key: CustomerKeyARN) async throws(VaultError) -> [UInt8] {
        do {
            return try await client(for: key).encrypt(material, context: ScopeKeyBinding.encryptionContext(id: id, scope: scope))
        } catch {
            throw Self.vaultError(error, key: key)
        }
    }

    /// Decrypts a stored workspace key wrapped by a customer's key.
    func unwrap(_ stored: WrappedScopeKey) async throws(VaultError) -> Secret {
        guard stored.masterKeyID.hasPrefix(Self.prefix), case .success(let key) = CustomerKeyARN.parse(String(stored.masterKeyID.dropFirst(Self.prefix.count))) else {
            throw .unreadable(.unknownMasterKey)
        }
        do {
            return try await client(for: key).decrypt(stored.wrapped, context: ScopeKeyBinding.encryptionContext(id: stored.id, scope: stored.scope),
                                                      expectedByteCount: EnvelopeFormat.dataKeyLength)
        } catch {
            throw Self.vaultError(error, key: key)
        }
    }

    /// Releases the HTTP client (idempotent).
    func close() async {
        try? await httpClient.shutdown()
    }

    /// The client of `key` (one per ARN, over the shared HTTP client).
    private func client(for key: CustomerKeyARN) throws(KMSError) -> KMSClient {
        if let client = clients.withLock({ $0[key.arn] }) { return client }
        let kms = try KMSConfiguration(keyID: key.arn, region: key.region, endpoint: configuration.endpoint ?? key.regionalEndpoint,
                                       credentials: configuration.credentials, timeout: configuration.timeout)
        let client = KMSClient(configuration: kms, httpClient: httpClient, logger: logger)
        clients.withLock { clients in
            // Bounded: a key named once (a refused setting) does not stay forever.
            if clients.count >= 10_000 { clients.removeAll() }
            clients[key.arn] = client
        }
        return client
    }

    /// The vault's error for a KMS failure on a customer's key.
    static func vaultError(_ error: KMSError, key: CustomerKeyARN) -> VaultError {
        switch error {
        case .invalidCiphertext:
            return .unreadable(.authenticationFailed)
        case .keyDisabled(let vendor) where vendor.type != "KeyUnavailableException" && !vendor.type.isEmpty,
             .keyNotFound(let vendor) where !vendor.type.isEmpty,
             // The key's policy (or a grant) no longer lets Keywarden's credentials use the key: the customer's doing.
             .accessDenied(let vendor) where vendor.type == "AccessDeniedException",
             // A key that cannot do what it is asked (an asymmetric key, a key for signing): the customer's choice.
             .rejected(let vendor) where ["InvalidKeyUsageException", "UnsupportedOperationException"].contains(vendor.type):
            return .customerKeyRevoked(deviceCode: error.code, detail: "the customer's KMS key \(key.arn) refuses Keywarden (\(vendor))")
        default:
            // Keywarden's own credentials refused, the KMS away, slow or failing, an answer without an error type (a
            // proxy's), a key that is only unavailable for a while (KeyUnavailableException): nothing the customer did.
            return .custodyUnavailable(deviceCode: error.code, detail: "the customer's KMS key \(key.arn) cannot be used now: \(error)")
        }
    }
}
