import Crypto
import Foundation
import KeywardenCore
import Synchronization

/// A scope's key-encryption key in the clear: the key that wraps the data keys of one workspace (or of the platform).
///
/// Lives in memory only, in the vault's bounded cache; its bytes are zeroed when the last reference goes
/// (swift-crypto's `SymmetricKey` clears its storage on release).
public struct ScopeKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// `wk-` and 12 hex digits, random (15 bytes: a string Swift keeps inline); written in the header of every data key
    /// it wraps. The table's primary key refuses a repeat.
    public let id: String
    /// The scope it belongs to.
    public let scope: Scope
    let key: SymmetricKey

    init(id: String, scope: Scope, key: SymmetricKey) {
        self.id = id
        self.scope = scope
        self.key = key
    }

    public var description: String { "ScopeKey(\(id), \(scope))" }
    public var debugDescription: String { description }
    /// Reflection (`dump`, a debugger) shows the id and scope, never the key.
    public var customMirror: Mirror { Mirror(self, children: ["id": id, "scope": scope], displayStyle: .struct) }

    /// A new random id.
    static func makeID() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<6).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return "wk-" + Hex.encode(bytes)
    }
}

/// A scope key as stored: its material wrapped by the master key custodian.
public struct WrappedScopeKey: Sendable, Equatable, CustomStringConvertible, CustomReflectable {
    /// The scope key's id.
    public let id: String
    /// The scope it belongs to.
    public let scope: Scope
    /// The id of the master key that wrapped it (``MasterKeyCustodian/activeKeyID`` when it was wrapped).
    public let masterKeyID: String
    /// The custodian's bytes (its format is the custodian's: an AES-GCM box, a token's box, a KMS ciphertext blob).
    public let wrapped: [UInt8]
    /// When it was made (a stored timestamp: ISO 8601, UTC).
    public let createdAt: String

    public init(id: String, scope: Scope, masterKeyID: String, wrapped: [UInt8], createdAt: String) {
        self.id = id
        self.scope = scope
        self.masterKeyID = masterKeyID
        self.wrapped = wrapped
        self.createdAt = createdAt
    }

    /// The workspace's own KMS key that wrapped it, when not the master key.
    public var customerKey: CustomerKeyARN? {
        guard isUnderCustomerKey, case .success(let key) = CustomerKeyARN.parse(String(masterKeyID.dropFirst(CustomerKeys.prefix.count))) else { return nil }
        return key
    }

    /// Whether a workspace's own KMS key wrapped it (`cmk:…`), not the master key.
    public var isUnderCustomerKey: Bool { masterKeyID.hasPrefix(CustomerKeys.prefix) }

    public var description: String { "WrappedScopeKey(\(id), \(scope), master key \(masterKeyID))" }
    /// Reflection shows the names, not the wrapped bytes.
    public var customMirror: Mirror { Mirror(self, children: ["id": id, "scope": scope, "masterKeyID": masterKeyID], displayStyle: .struct) }
}

/// Where the vault finds and keeps wrapped scope keys (the store's `vault_scope_keys` table, or memory in tests).
///
/// Handed to each seal and open, so a seal inside a transaction creates its scope's key in the same transaction.
public protocol ScopeKeyDirectory: Sendable {
    /// The key new secrets of `scope` are sealed under: the newest, `nil` when the scope has none yet.
    func activeKey(for scope: Scope) async throws -> WrappedScopeKey?
    /// The key with this id, `nil` when there is none (never made, or shredded with its workspace).
    func key(id: String) async throws -> WrappedScopeKey?
    /// Stores a new key.
    func insert(_ key: WrappedScopeKey) async throws
}

/// A directory in memory: for tests, benchmarks and a vault without a database.
public final class InMemoryScopeKeyDirectory: ScopeKeyDirectory {
    private let keys = Mutex<[String: WrappedScopeKey]>([:])

    public init() {}

    public func activeKey(for scope: Scope) async throws -> WrappedScopeKey? {
        keys.withLock { keys in
            keys.values.filter { $0.scope == scope }.max { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        }
    }

    public func key(id: String) async throws -> WrappedScopeKey? {
        keys.withLock { $0[id] }
    }

    public func insert(_ key: WrappedScopeKey) async throws {
        keys.withLock { $0[key.id] = key }
    }

    /// Replaces a stored key (a rotation's rewrap).
    public func replace(_ key: WrappedScopeKey) {
        keys.withLock { $0[key.id] = key }
    }

    /// Removes every key of `scope` (a workspace's deletion: its secrets are shredded).
    public func removeAll(of scope: Scope) {
        keys.withLock { $0 = $0.filter { $0.value.scope != scope } }
    }

    /// Every stored key.
    public var all: [WrappedScopeKey] { keys.withLock { Array($0.values) } }
}
