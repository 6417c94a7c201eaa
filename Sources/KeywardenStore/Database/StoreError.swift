/// Why the store could not open, migrate or answer. Messages name the problem and what to do.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case dataDirectoryNotWritable(path: String, reason: String)
    case databaseUnavailable(path: String, reason: String)
    case schemaTooNew(found: Int, known: Int)
    case migrationFailed(version: Int, reason: String)
    case keyringMissing(path: String, sealedSecrets: Int)
    case notInitialized(path: String)
    case notFound(what: String)
    case conflict(String)
    case closed
    /// Another process holds an exclusive operation's lock (a second `rotate-master-key`).
    case lockHeld(operation: String)
    /// The database cannot answer now: unreachable, restarting, closing the connection, or past its deadline. Nothing
    /// is known to have been written; the operation may be tried again (`503 store_unavailable` with `Retry-After`).
    case unavailable(reason: String)
    /// The disk holding the database is full: nothing was written (`507 storage_full`).
    case storageFull(path: String)
    /// A value the client sent holds a character the database cannot store or compare (a NUL in PostgreSQL's text):
    /// nothing was written (`400 invalid_text`).
    case unstorableText

    /// Seconds a client is asked to wait (`Retry-After`) after ``unavailable(reason:)``, on every route.
    public static let retryAfterSeconds = 2

    /// A stable code.
    public var code: String {
        switch self {
        case .dataDirectoryNotWritable: return "data_directory_not_writable"
        case .databaseUnavailable: return "database_unavailable"
        case .schemaTooNew: return "schema_too_new"
        case .migrationFailed: return "migration_failed"
        case .keyringMissing: return "keyring_missing"
        case .notInitialized: return "not_initialized"
        case .notFound: return "not_found"
        case .conflict: return "conflict"
        case .closed: return "store_closed"
        case .lockHeld: return "operation_in_progress"
        case .unavailable: return "store_unavailable"
        case .storageFull: return "storage_full"
        case .unstorableText: return "invalid_text"
        }
    }

    public var description: String {
        switch self {
        case .dataDirectoryNotWritable(let path, let reason):
            return "the data directory \(path) is not writable (\(reason)); choose another with --data or fix its permissions"
        case .databaseUnavailable(let path, let reason):
            return "cannot open the database \(path): \(reason)"
        case .schemaTooNew(let found, let known):
            return "the database has schema version \(found) but this keywarden knows only up to \(known); run a newer keywarden (or restore a backup made before the upgrade)"
        case .migrationFailed(let version, let reason):
            return "migration \(version) failed and was rolled back: \(reason)"
        case .keyringMissing(let path, let count):
            return "the keyring file \(path) is missing but the database holds \(count) sealed secret(s); restore keyring.json from a backup or set KEYWARDEN_MASTER_KEY / KEYWARDEN_MASTER_KEY_FILE (a new keyring would make every secret unreadable)"
        case .notInitialized(let path):
            return "\(path) is not initialised; run `keywarden init --data \(path)` first"
        case .notFound(let what):
            return "\(what) was not found"
        case .conflict(let detail):
            return detail
        case .closed:
            return "the store is closed"
        case .unstorableText:
            return "a value holds a character the database cannot store (such as NUL)"
        case .lockHeld(let operation):
            return "another \(operation) is running on this database; wait for it to finish (it cannot run twice at once)"
        case .unavailable(let reason):
            return "the database is unavailable: \(reason)"
        case .storageFull(let path):
            return "the disk holding \(path) is full; nothing was written (free space, then try again)"
        }
    }
}
