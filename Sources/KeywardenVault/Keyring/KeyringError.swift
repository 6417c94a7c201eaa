/// Why a keyring could not be loaded or changed. Messages name the problem and what to do; they never contain key material.
public enum KeyringError: Error, Sendable, Equatable, CustomStringConvertible {
    case wrongKeyLength(actual: Int)
    case invalidBase64
    case fileUnreadable(path: String, reason: String)
    case fileMalformed(path: String, detail: String)
    case fileNotWritable(path: String, reason: String)
    case fileExists(path: String)
    case noActiveKey
    case idMismatch(id: String)
    case unknownKey(id: String)
    case keyStillInUse(id: String, rows: Int)
    case notRotatable(reason: String)

    /// A stable code for logs and tests.
    public var code: String {
        switch self {
        case .wrongKeyLength: return "master_key_wrong_length"
        case .invalidBase64: return "master_key_not_base64"
        case .fileUnreadable: return "keyring_unreadable"
        case .fileMalformed: return "keyring_malformed"
        case .fileNotWritable: return "keyring_not_writable"
        case .fileExists: return "keyring_exists"
        case .noActiveKey: return "keyring_no_active_key"
        case .idMismatch: return "keyring_id_mismatch"
        case .unknownKey: return "keyring_unknown_key"
        case .keyStillInUse: return "keyring_key_in_use"
        case .notRotatable: return "keyring_not_rotatable"
        }
    }

    public var description: String {
        switch self {
        case .wrongKeyLength(let actual):
            return "the master key is \(actual) bytes long; it must be 32 bytes, base64-encoded (generate one with: openssl rand -base64 32)"
        case .invalidBase64:
            return "the master key is not valid base64; give 32 random bytes, base64-encoded (openssl rand -base64 32)"
        case .fileUnreadable(let path, let reason):
            return "cannot read the keyring file \(path): \(reason); check the path and its permissions"
        case .fileMalformed(let path, let detail):
            return "the keyring file \(path) is not a valid keyring (\(detail)); restore it from a backup"
        case .fileNotWritable(let path, let reason):
            return "cannot write the keyring file \(path): \(reason); check that the data directory is writable"
        case .fileExists(let path):
            return "a keyring already exists at \(path); refusing to overwrite it"
        case .noActiveKey:
            return "the keyring has no active master key; restore the keyring file from a backup"
        case .idMismatch(let id):
            return "the keyring entry \(id) does not match its key material (the file was edited or damaged); restore it from a backup"
        case .unknownKey(let id):
            return "the keyring has no master key \(id)"
        case .keyStillInUse(let id, let rows):
            return "master key \(id) still wraps \(rows) stored secret(s); finish the rotation (keywarden rotate-master-key) before retiring it"
        case .notRotatable(let reason):
            return reason
        }
    }
}
