import Foundation
import Logging
import NIOPosix

/// A device that holds the master key, as configured: a PKCS#11 token or an AWS KMS key.
public enum MasterKeyDevice: Sendable, CustomStringConvertible {
    /// A key inside a PKCS#11 token, and earlier keys' labels that only unwrap.
    case pkcs11(PKCS11Configuration, previousKeyLabels: [String])
    /// An AWS KMS key, and earlier keys' ids that only decrypt.
    case kms(KMSConfiguration, previousKeyIDs: [String])

    /// The device `environment` configures: PKCS#11 when `KEYWARDEN_MASTER_KEY_PKCS11_MODULE` is set, AWS KMS when
    /// `KEYWARDEN_MASTER_KEY_KMS_KEY_ID` is; `nil` when neither (the keyring). Both at once, or a missing or invalid
    /// companion setting, throws (a ``PKCS11Error`` or ``KMSError`` naming the setting).
    public static func fromEnvironment(_ environment: [String: String]) throws -> MasterKeyDevice? {
        func isSet(_ name: String) -> Bool { !(environment[name]?.trimmingCharacters(in: .whitespaces).isEmpty ?? true) }
        func list(_ name: String) -> [String] { KeyringSource.list(environment[name]) }
        let pkcs11 = isSet(PKCS11Configuration.Variable.module)
        let kms = isSet(KMSConfiguration.keyIDVariable)
        switch (pkcs11, kms) {
        case (false, false):
            return nil
        case (true, true):
            throw KMSError.configuration(
                setting: KMSConfiguration.keyIDVariable,
                problem: "is set together with \(PKCS11Configuration.Variable.module); the master key lives in one device: set one of them"
            )
        case (true, false):
            return .pkcs11(try PKCS11Configuration.fromEnvironment(environment), previousKeyLabels: list(PKCS11Custodian.previousKeyLabelsVariable))
        case (false, true):
            return .kms(try KMSConfiguration.fromEnvironment(environment), previousKeyIDs: list(KMSCustodian.previousKeyIDsVariable))
        }
    }

    /// Opens the device: the token's session and login, or the KMS client. Refusals throw now.
    public func open(logger: Logger) async throws -> any MasterKeyCustodian {
        switch self {
        case .pkcs11(let configuration, let previous):
            // Opening logs in and finds the keys: a blocking call, on NIO's thread pool.
            let custodian = try await NIOThreadPool.singleton.runIfActive {
                Result { () throws(PKCS11Error) in try PKCS11Custodian(configuration: configuration, previousKeyLabels: previous, logger: logger) }
            }
            return try custodian.get()
        case .kms(let configuration, let previous):
            return try KMSCustodian(configuration: configuration, previousKeyIDs: previous, logger: logger)
        }
    }

    public var description: String {
        switch self {
        case .pkcs11(let configuration, _): return "\(configuration)"
        case .kms(let configuration, _): return "\(configuration)"
        }
    }
}
