import KeywardenCore

/// Where the master key lives, and its one job there: wrapping and unwrapping scope keys.
///
/// Three custodians exist: the keyring (a file or the environment; the key is in this process's memory), a PKCS#11
/// token and an AWS KMS key (the key never leaves the device; each wrap and unwrap is a call to it). The vault calls
/// its custodian only when a scope key is made, when one is not in its cache, and in a rotation: never per secret.
public protocol MasterKeyCustodian: Sendable, CustomStringConvertible {
    /// The id of the master key that wraps new scope keys (`mk-…`, `pkcs11:…`, `kms:…`).
    var activeKeyID: String { get }
    /// The ids of the master keys kept only to unwrap (earlier keys, until a rotation moved every scope key off them).
    var decryptOnlyKeyIDs: [String] { get }
    /// Wraps a scope key's material under the active master key, bound to the scope key's id and scope.
    func wrap(_ material: Secret, id: String, scope: Scope) async throws(VaultError) -> (masterKeyID: String, wrapped: [UInt8])
    /// Unwraps a stored scope key with the master key its record names.
    ///
    /// A box that does not open is ``VaultError/unreadable(_:)``; a device that does not answer or refuses is
    /// ``VaultError/custodyUnavailable(deviceCode:detail:)``.
    func unwrap(_ key: WrappedScopeKey) async throws(VaultError) -> Secret
    /// Releases the device's session or client (idempotent).
    func close() async
}

/// The associated data of a wrapped scope key: purpose, scope, scope-key id and master-key id, length-prefixed.
enum ScopeKeyBinding {
    static let purpose: StaticString = "keywarden.scope-key.v1"

    static func associatedData(id: String, scope: Scope, masterKeyID: String) -> [UInt8] {
        var bytes: [UInt8] = []
        purpose.withUTF8Buffer { bytes.appendLengthPrefixed($0) }
        bytes.appendLengthPrefixed(scope.description.utf8)
        bytes.appendLengthPrefixed(id.utf8)
        bytes.appendLengthPrefixed(masterKeyID.utf8)
        return bytes
    }

    /// The same binding as a KMS encryption context (AWS logs it in CloudTrail: names only, nothing secret).
    static func encryptionContext(id: String, scope: Scope) -> [String: String] {
        ["keywarden:purpose": "scope-key.v1", "keywarden:scope": scope.description, "keywarden:scope_key": id]
    }
}
