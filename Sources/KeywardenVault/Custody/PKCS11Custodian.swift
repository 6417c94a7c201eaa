import KeywardenCore
import Logging
import NIOPosix
import Synchronization

/// A PKCS#11 token as custodian: scope keys are wrapped and unwrapped by the token (AES-256-GCM with a key that is
/// sensitive and not extractable), so the master key never is in this process.
///
/// The active key is `KEYWARDEN_MASTER_KEY_PKCS11_KEY_LABEL`; earlier keys listed in
/// `KEYWARDEN_MASTER_KEY_PKCS11_PREVIOUS_KEY_LABELS` only unwrap, until a rotation moved every scope key off them. A
/// token whose device went away is opened again on the next call. Calls run on NIO's blocking thread pool, never on the
/// caller's executor (an event loop) or the cooperative pool: a token's answer is waited for on a thread that may block.
/// (A call the device never answers cannot be cut short: PKCS#11 has no timeout; it holds one pool thread.)
public final class PKCS11Custodian: MasterKeyCustodian {
    /// Lists earlier key labels (comma-separated) that only unwrap.
    public static let previousKeyLabelsVariable = "KEYWARDEN_MASTER_KEY_PKCS11_PREVIOUS_KEY_LABELS"

    private let configuration: PKCS11Configuration
    private let previousLabels: [String]
    private let logger: Logger
    /// The open token of each key label (opened again after the device went away).
    private let tokens: Mutex<[String: PKCS11Token]>

    /// Opens the token for the active key and each previous one; any refusal (module, token, PIN, key) throws now.
    public init(configuration: PKCS11Configuration, previousKeyLabels: [String] = [], logger: Logger) throws(PKCS11Error) {
        self.configuration = configuration
        self.previousLabels = previousKeyLabels.filter { $0 != configuration.keyLabel }
        self.logger = logger
        var opened: [String: PKCS11Token] = [:]
        for label in [configuration.keyLabel] + previousLabels {
            opened[label] = try Self.open(configuration, label: label, logger: logger)
        }
        self.tokens = Mutex(opened)
    }

    public var activeKeyID: String { Self.keyID(token: configuration.tokenLabel, key: configuration.keyLabel) }

    public var decryptOnlyKeyIDs: [String] { previousLabels.map { Self.keyID(token: configuration.tokenLabel, key: $0) } }

    public var description: String { "PKCS#11 token \(configuration.tokenLabel), key \(configuration.keyLabel) (\(configuration.modulePath))" }

    /// `pkcs11:<token label>/<key label>`.
    static func keyID(token: String, key: String) -> String { "pkcs11:\(token)/\(key)" }

    public func wrap(_ material: Secret, id: String, scope: Scope) async throws(VaultError) -> (masterKeyID: String, wrapped: [UInt8]) {
        let masterKeyID = activeKeyID
        let aad = ScopeKeyBinding.associatedData(id: id, scope: scope, masterKeyID: masterKeyID)
        let wrapped = try await withToken(label: configuration.keyLabel) { token throws(PKCS11Error) in
            try token.encrypt(plaintext: material, aad: aad)
        }
        return (masterKeyID, wrapped)
    }

    public func unwrap(_ key: WrappedScopeKey) async throws(VaultError) -> Secret {
        let prefix = Self.keyID(token: configuration.tokenLabel, key: "")
        guard key.masterKeyID.hasPrefix(prefix) else { throw .unreadable(.unknownMasterKey) }
        let label = String(key.masterKeyID.dropFirst(prefix.count))
        guard label == configuration.keyLabel || previousLabels.contains(label) else { throw .unreadable(.unknownMasterKey) }
        let aad = ScopeKeyBinding.associatedData(id: key.id, scope: key.scope, masterKeyID: key.masterKeyID)
        let material = try await withToken(label: label) { token throws(PKCS11Error) in
            try token.decrypt(key.wrapped, aad: aad)
        }
        guard material.byteCount == 32 else { throw .unreadable(.malformed) }
        return material
    }

    public func close() async {
        let open = tokens.withLock { tokens in
            defer { tokens = [:] }
            return Array(tokens.values)
        }
        for token in open { token.close() }
    }

    // MARK: Token calls

    /// Runs `body` with the token of `label` off the caller's executor, opening the token again once when its device
    /// went away; the token's errors become the vault's.
    private func withToken<R: Sendable>(label: String, _ body: @escaping @Sendable (PKCS11Token) throws(PKCS11Error) -> R) async throws(VaultError) -> R {
        let result: Result<R, PKCS11Error>
        do {
            result = try await NIOThreadPool.singleton.runIfActive { () -> Result<R, PKCS11Error> in
                do throws(PKCS11Error) {
                    let token = try self.token(label: label)
                    do throws(PKCS11Error) {
                        return .success(try body(token))
                    } catch where error.isTransient || error == .closed {
                        self.logger.notice("pkcs11: the token went away; opening it again", metadata: ["pkcs11_error": "\(error.code)"])
                        let reopened = try self.reopen(label: label, replacing: token)
                        return .success(try body(reopened))
                    }
                } catch {
                    return .failure(error)
                }
            }
        } catch {
            throw .custodyUnavailable(deviceCode: "pkcs11_pool_closed", detail: "the thread pool that calls the token is shut down")
        }
        switch result {
        case .success(let value): return value
        case .failure(let error): throw Self.vaultError(error)
        }
    }

    private func token(label: String) throws(PKCS11Error) -> PKCS11Token {
        if let token = tokens.withLock({ $0[label] }) { return token }
        return try reopen(label: label, replacing: nil)
    }

    private func reopen(label: String, replacing old: PKCS11Token?) throws(PKCS11Error) -> PKCS11Token {
        old?.close()
        tokens.withLock { if $0[label] === old { $0[label] = nil } }
        let token = try Self.open(configuration, label: label, logger: logger)
        tokens.withLock { $0[label] = token }
        return token
    }

    private static func open(_ configuration: PKCS11Configuration, label: String, logger: Logger) throws(PKCS11Error) -> PKCS11Token {
        let keyConfiguration = try PKCS11Configuration(modulePath: configuration.modulePath, tokenLabel: configuration.tokenLabel,
                                                       pin: configuration.pin, keyLabel: label)
        return try PKCS11Token(configuration: keyConfiguration, logger: logger)
    }

    /// A box that does not open is unreadable; every other refusal means the device cannot be used now.
    static func vaultError(_ error: PKCS11Error) -> VaultError {
        if case .decryptionFailed = error { return .unreadable(.authenticationFailed) }
        return .custodyUnavailable(deviceCode: error.code, detail: error.description)
    }
}
