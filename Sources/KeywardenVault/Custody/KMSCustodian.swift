import AsyncHTTPClient
import KeywardenCore
import Logging

/// An AWS KMS key as custodian: scope keys are encrypted and decrypted by the KMS (`Encrypt` / `Decrypt`, bound to an
/// encryption context naming the scope and the scope key), so the master key never is in this process.
///
/// The active key is `KEYWARDEN_MASTER_KEY_KMS_KEY_ID`; earlier keys listed in `KEYWARDEN_MASTER_KEY_KMS_PREVIOUS_KEY_IDS`
/// only decrypt, until a rotation moved every scope key off them. (AWS's automatic rotation of a key's material needs
/// nothing from Keywarden: the key id stays and old ciphertexts keep opening.) The HTTP client is this custodian's own,
/// and does not retry connecting: a call ends within the configured timeout.
public final class KMSCustodian: MasterKeyCustodian {
    /// Lists earlier key ids (comma-separated) that only decrypt.
    public static let previousKeyIDsVariable = "KEYWARDEN_MASTER_KEY_KMS_PREVIOUS_KEY_IDS"

    private let configuration: KMSConfiguration
    private let clients: [String: KMSClient]
    private let previousKeyIDs: [String]
    private let httpClient: HTTPClient

    /// A custodian of `configuration`'s key and the `previousKeyIDs` (same region, endpoint and credentials).
    public init(configuration: KMSConfiguration, previousKeyIDs: [String] = [], logger: Logger) throws(KMSError) {
        // A key's id is recorded with every workspace key it wraps, and decrypting names it: an alias, which can be
        // pointed at another key, would make them all fail to open the day it is.
        for keyID in [configuration.keyID] + previousKeyIDs where keyID.hasPrefix("alias/") || keyID.contains(":alias/") {
            throw KMSError.configuration(setting: KMSConfiguration.keyIDVariable, problem: "names an alias (\(keyID)); give the key's id or ARN")
        }
        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.connectionPool.retryConnectionEstablishment = false
        httpConfiguration.timeout = .init(connect: .init(configuration.timeout), read: .init(configuration.timeout))
        let httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
        self.httpClient = httpClient
        self.configuration = configuration
        self.previousKeyIDs = previousKeyIDs.filter { $0 != configuration.keyID }
        var clients = [configuration.keyID: KMSClient(configuration: configuration, httpClient: httpClient, logger: logger)]
        do throws(KMSError) {
            for keyID in self.previousKeyIDs {
                let previous = try KMSConfiguration(keyID: keyID, region: configuration.region, endpoint: configuration.endpoint,
                                                    credentials: configuration.credentials, timeout: configuration.timeout,
                                                    maxAnswerBytes: configuration.maxAnswerBytes)
                clients[keyID] = KMSClient(configuration: previous, httpClient: httpClient, logger: logger)
            }
        } catch {
            try? httpClient.syncShutdown()
            throw error
        }
        self.clients = clients
    }

    public var activeKeyID: String { Self.prefix + configuration.keyID }

    public var decryptOnlyKeyIDs: [String] { previousKeyIDs.map { Self.prefix + $0 } }

    public var description: String { "AWS KMS key \(configuration.keyID) (\(configuration.endpoint.absoluteString))" }

    static let prefix = "kms:"

    public func wrap(_ material: Secret, id: String, scope: Scope) async throws(VaultError) -> (masterKeyID: String, wrapped: [UInt8]) {
        guard let client = clients[configuration.keyID] else { throw .sealFailed }
        do {
            return (activeKeyID, try await client.encrypt(material, context: ScopeKeyBinding.encryptionContext(id: id, scope: scope)))
        } catch {
            throw Self.vaultError(error)
        }
    }

    public func unwrap(_ key: WrappedScopeKey) async throws(VaultError) -> Secret {
        guard key.masterKeyID.hasPrefix(Self.prefix), let client = clients[String(key.masterKeyID.dropFirst(Self.prefix.count))] else {
            throw .unreadable(.unknownMasterKey)
        }
        do {
            return try await client.decrypt(key.wrapped, context: ScopeKeyBinding.encryptionContext(id: key.id, scope: key.scope), expectedByteCount: 32)
        } catch {
            throw Self.vaultError(error)
        }
    }

    public func close() async {
        try? await httpClient.shutdown()
    }

    /// A ciphertext that does not open is unreadable; every other failure means the KMS cannot be used now.
    static func vaultError(_ error: KMSError) -> VaultError {
        if case .invalidCiphertext = error { return .unreadable(.authenticationFailed) }
        return .custodyUnavailable(deviceCode: error.code, detail: error.description)
    }
}
