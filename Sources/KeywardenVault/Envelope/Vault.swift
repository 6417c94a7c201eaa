import Crypto
import Foundation
import KeywardenCore
import Synchronization

/// Seals and opens secrets with envelope encryption: a fresh AES-256-GCM data key per secret,
/// wrapped by the keyring's active master key.
///
/// When the keyring lives in a file, the vault notices when another process (a
/// `rotate-master-key` run) rewrote it: before sealing, and when a header names a key it does not
/// know. So a server keeps serving through a rotation.
public final class Vault: Sendable {
    private struct State {
        var keyring: Keyring
        var stamp: KeyringFile.FileStamp?
    }

    private let source: KeyringSource?
    private let state: Mutex<State>

    private static let dataKeyPurpose: StaticString = "keywarden.data-key.v1"
    private static let secretPurpose: StaticString = "keywarden.secret.v1"

    /// A vault over a fixed keyring.
    public init(keyring: Keyring) {
        self.source = nil
        self.state = Mutex(State(keyring: keyring, stamp: nil))
    }

    /// A vault that loads its keyring from `source` and reloads it when its file changes.
    public init(source: KeyringSource) throws(KeyringError) {
        let stamp = source.file?.stamp()
        let keyring = try source.load()
        self.source = source
        self.state = Mutex(State(keyring: keyring, stamp: stamp))
    }

    /// The keyring as last loaded.
    public var keyring: Keyring { state.withLock { $0.keyring } }

    /// The id of the master key that wraps new data keys.
    public var activeKeyID: String { state.withLock { $0.keyring.active.id } }

    // MARK: Seal, open, rewrap

    /// Seals `secret` for the row and field described by `context`.
    public func seal(_ secret: Secret, in context: SecretContext) throws(VaultError) -> SealedSecret {
        reloadIfChanged()
        let master = state.withLock { $0.keyring.active }
        let dataKey = SymmetricKey(size: .bits256)
        do {
            let box = try secret.withPlaintext { plaintext in
                try AES.GCM.seal(plaintext, using: dataKey, authenticating: context.associatedData(purpose: Self.secretPurpose))
            }
            guard let combined = box.combined else { throw VaultError.sealFailed }
            var ciphertext: [UInt8] = [EnvelopeFormat.version]
            ciphertext.append(contentsOf: combined)
            let wrappedKey = try Self.wrap(dataKey, with: master, in: context)
            return SealedSecret(wrappedKey: wrappedKey, ciphertext: ciphertext)
        } catch {
            throw .sealFailed
        }
    }

    /// Opens a sealed secret; any failure is ``VaultError/unreadable(_:)``.
    public func open(_ sealed: SealedSecret, in context: SecretContext) throws(VaultError) -> Secret {
        let dataKey = try unwrapDataKey(sealed, in: context)
        let body = sealed.ciphertext
        guard body.count >= 1 + EnvelopeFormat.nonceLength + EnvelopeFormat.tagLength, body[0] == EnvelopeFormat.version else {
            throw .unreadable(.malformed)
        }
        do {
            let box = try AES.GCM.SealedBox(combined: body[1...])
            let plaintext = try AES.GCM.open(box, using: dataKey, authenticating: context.associatedData(purpose: Self.secretPurpose))
            return Secret(bytes: Array(plaintext))
        } catch {
            throw .unreadable(.authenticationFailed)
        }
    }

    /// Re-wraps the data key under the active master key; the secret's ciphertext is not touched.
    /// Returns `sealed` unchanged when it is already wrapped by the active key.
    public func rewrap(_ sealed: SealedSecret, in context: SecretContext) throws(VaultError) -> SealedSecret {
        let master = state.withLock { $0.keyring.active }
        guard sealed.masterKeyID != master.id else { return sealed }
        let dataKey = try unwrapDataKey(sealed, in: context)
        do {
            return SealedSecret(wrappedKey: try Self.wrap(dataKey, with: master, in: context), ciphertext: sealed.ciphertext)
        } catch {
            throw .sealFailed
        }
    }

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

    // MARK: Data keys

    private static func wrap(_ dataKey: SymmetricKey, with master: MasterKey, in context: SecretContext) throws -> [UInt8] {
        let id = Array(master.id.utf8)
        let box = try dataKey.withUnsafeBytes { bytes in
            try AES.GCM.seal(bytes, using: master.key, authenticating: context.associatedData(purpose: dataKeyPurpose, extra: master.id))
        }
        guard let combined = box.combined, id.count <= Int(UInt8.max) else { throw VaultError.sealFailed }
        var wrapped: [UInt8] = [EnvelopeFormat.version, UInt8(id.count)]
        wrapped.reserveCapacity(2 + id.count + combined.count)
        wrapped.append(contentsOf: id)
        wrapped.append(contentsOf: combined)
        return wrapped
    }

    private func unwrapDataKey(_ sealed: SealedSecret, in context: SecretContext) throws(VaultError) -> SymmetricKey {
        let wrapped = sealed.wrappedKey
        guard wrapped.count >= 2, wrapped[0] == EnvelopeFormat.version else { throw .unreadable(.malformed) }
        let headerLength = 2 + Int(wrapped[1])
        guard wrapped[1] > 0, wrapped.count == headerLength + EnvelopeFormat.nonceLength + EnvelopeFormat.dataKeyLength + EnvelopeFormat.tagLength else {
            throw .unreadable(.malformed)
        }
        let idBytes = wrapped[2..<headerLength]
        let master: MasterKey
        if let known = state.withLock({ $0.keyring.key(idBytes: idBytes) }) {
            master = known
        } else if reloadIfChanged(), let reloaded = state.withLock({ $0.keyring.key(idBytes: idBytes) }) {
            master = reloaded
        } else {
            throw .unreadable(.unknownMasterKey)
        }
        do {
            let box = try AES.GCM.SealedBox(combined: wrapped[headerLength...])
            let bytes = try AES.GCM.open(box, using: master.key, authenticating: context.associatedData(purpose: Self.dataKeyPurpose, extra: master.id))
            return SymmetricKey(data: bytes)
        } catch {
            throw .unreadable(.authenticationFailed)
        }
    }
}
