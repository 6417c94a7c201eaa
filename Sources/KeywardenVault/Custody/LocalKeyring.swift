import Crypto
import Foundation
import KeywardenCore
import Synchronization

/// The keyring as custodian: master keys from a file or the environment, held in this process's memory.
///
/// The embedded default. When the keyring lives in a file, it notices when another process (a `rotate-master-key` run)
/// rewrote it: before wrapping, and when a record names a key it does not know. It also opens the data keys sealed
/// before scope keys existed (format 1: a data key wrapped by a master key directly).
public final class LocalKeyring: MasterKeyCustodian {
    private struct State {
        var keyring: Keyring
        var stamp: KeyringFile.FileStamp?
    }

    private let source: KeyringSource?
    private let state: Mutex<State>

    /// A custodian over a fixed keyring.
    public init(keyring: Keyring) {
        self.source = nil
        self.state = Mutex(State(keyring: keyring, stamp: nil))
    }

    /// A custodian that loads its keyring from `source` and reloads it when its file changes.
    public init(source: KeyringSource) throws(KeyringError) {
        let stamp = source.file?.stamp()
        let keyring = try source.load()
        self.source = source
        self.state = Mutex(State(keyring: keyring, stamp: stamp))
    }

    /// The keyring as last loaded.
    public var keyring: Keyring { state.withLock { $0.keyring } }

    public var activeKeyID: String { state.withLock { $0.keyring.active.id } }

    public var decryptOnlyKeyIDs: [String] { state.withLock { $0.keyring.decryptOnlyIDs } }

    public var description: String { source.map { "keyring (\($0))" } ?? "keyring (in memory)" }

    public func wrap(_ material: Secret, id: String, scope: Scope) async throws(VaultError) -> (masterKeyID: String, wrapped: [UInt8]) {
        reloadIfChanged()
        let master = state.withLock { $0.keyring.active }
        do {
            let box = try material.withPlaintext { bytes in
                try AES.GCM.seal(bytes, using: master.key, authenticating: ScopeKeyBinding.associatedData(id: id, scope: scope, masterKeyID: master.id))
            }
            guard let combined = box.combined else { throw VaultError.sealFailed }
            return (master.id, Array(combined))
        } catch {
            throw .sealFailed
        }
    }

    public func unwrap(_ key: WrappedScopeKey) async throws(VaultError) -> Secret {
        let master = try masterKey(idBytes: Array(key.masterKeyID.utf8)[...])
        do {
            let box = try AES.GCM.SealedBox(combined: key.wrapped)
            let bytes = try AES.GCM.open(box, using: master.key, authenticating: ScopeKeyBinding.associatedData(id: key.id, scope: key.scope, masterKeyID: master.id))
            return Secret(bytes: Array(bytes))
        } catch {
            throw .unreadable(.authenticationFailed)
        }
    }

    public func close() async {}

    // MARK: Keyring changes

    /// Re-reads the keyring file if it changed on disk; returns whether the keyring changed.
    /// A file that cannot be read keeps the keyring already loaded.
    @discardableResult
    public func reloadIfChanged() -> Bool {
        guard let source, let file = source.file else { return false }
        let stamp = file.stamp()
        let current = state.withLock { $0.stamp }
        guard stamp != current, let keyring = try? source.load() else { return false }
        state.withLock { $0 = State(keyring: keyring, stamp: stamp) }
        return true
    }

    /// Replaces the keyring in memory (after this process rewrote its file).
    public func replaceKeyring(_ keyring: Keyring) {
        let stamp = source?.file?.stamp()
        state.withLock { $0 = State(keyring: keyring, stamp: stamp) }
    }

    /// The master key with this id (as bytes from a header), reloading the file once when it is not known.
    func masterKey(idBytes: ArraySlice<UInt8>) throws(VaultError) -> MasterKey {
        if let known = state.withLock({ $0.keyring.key(idBytes: idBytes) }) { return known }
        if reloadIfChanged(), let reloaded = state.withLock({ $0.keyring.key(idBytes: idBytes) }) { return reloaded }
        throw .unreadable(.unknownMasterKey)
    }
}
