import Crypto
import Foundation
import KeywardenCore
import Synchronization

/// Seals and opens secrets with envelope encryption in three levels: the master key (held by a custodian: the keyring,
/// a PKCS#11 token or a KMS) wraps one key per scope (a workspace, or the platform), which wraps a fresh AES-256-GCM
/// data key per secret.
///
/// A scope key is unwrapped by the custodian once, then held in a bounded cache for a bounded time, so the device is
/// not called per secret or per gateway call. Wrapped scope keys live in a ``ScopeKeyDirectory`` handed to each call
/// (the store's table, inside the caller's transaction when there is one). Data keys sealed before scope keys existed
/// (format 1, wrapped by a master key directly) still open with the keyring; a rotation moves them to scope keys.
public final class Vault: Sendable {
    /// Where the master key lives.
    public let custodian: any MasterKeyCustodian
    /// The keyring, when there is one: the custodian itself, or the keyring kept beside a device to open format-1 data keys.
    public let localKeyring: LocalKeyring?
    /// Workspaces' own KMS keys, when the platform lets workspaces bring one (``CustomerKeyConfiguration``).
    public let customerKeys: CustomerKeys?
    let cache: ScopeKeyCache
    /// Refusals of customer keys (revocations, not outages), by workspace-key id, remembered for a short time: a
    /// workspace whose customer revoked access does not have every call ask the customer's KMS again (and the customer's
    /// re-enabling is seen within it).
    private let refusals = Mutex<[String: (error: VaultError, until: ContinuousClock.Instant)]>([:])
    /// How long a customer key's refusal is remembered: the cache's time to live, at most 10 seconds.
    public let customerKeyRetryInterval: Duration
    /// The unwraps under way, by scope-key id: calls that miss the same key together wait for one device call.
    private let unwrapping = Mutex<[Flight: Task<Secret, any Error>]>([:])

    /// One unwrap under way: the whole record, so only callers of the very same record share it.
    private struct Flight: Hashable {
        let id: String
        let masterKeyID: String
        let scope: Scope
        let wrapped: [UInt8]
    }

    private static let legacyDataKeyPurpose: StaticString = "keywarden.data-key.v1"
    private static let dataKeyPurpose: StaticString = "keywarden.data-key.v2"
    private static let secretPurpose: StaticString = "keywarden.secret.v1"

    /// How long an unwrapped scope key is held by default (`KEYWARDEN_WORKSPACE_KEY_CACHE_SECONDS`).
    public static let defaultCacheTimeToLive: Duration = .seconds(300)
    /// How many unwrapped scope keys are held at most by default.
    public static let defaultCacheCapacity = 20_000

    /// A vault whose master key is held by `custodian`; `legacyKeyring` opens data keys of format 1.
    public init(custodian: any MasterKeyCustodian, legacyKeyring: LocalKeyring? = nil, customerKeys: CustomerKeys? = nil,
                cacheTimeToLive: Duration = defaultCacheTimeToLive, cacheCapacity: Int = defaultCacheCapacity) {
        self.custodian = custodian
        self.localKeyring = legacyKeyring ?? (custodian as? LocalKeyring)
        self.customerKeys = customerKeys
        self.cache = ScopeKeyCache(timeToLive: cacheTimeToLive, capacity: cacheCapacity)
        self.customerKeyRetryInterval = min(cacheTimeToLive, .seconds(10))
    }

    /// A vault over a fixed keyring.
    public convenience init(keyring: Keyring) {
        self.init(custodian: LocalKeyring(keyring: keyring))
    }

    /// A vault whose keyring comes from `source` (reloaded when its file changes).
    public convenience init(source: KeyringSource) throws(KeyringError) {
        self.init(custodian: try LocalKeyring(source: source))
    }

    /// The id of the master key that wraps new scope keys.
    public var activeKeyID: String { custodian.activeKeyID }

    /// Holds `scope`'s key unwrapped, when it has one, outside any transaction: a seal in a transaction after it then
    /// calls no device while it holds the database's write lock. (A scope's first key is still made in the seal's
    /// transaction, once in the scope's life: made here, it would outlive a transaction that fails.)
    public func prepare(_ scope: Scope, keys: some ScopeKeyDirectory) async throws {
        if let stored = try await keys.activeKey(for: scope) { _ = try await unwrap(stored) }
    }

    /// How long an unwrapped scope key is held.
    public var cacheTimeToLive: Duration { cache.timeToLive }

    // MARK: Seal, open, rewrap

    /// Seals `secret` for the row and field described by `context`, under its scope's key (made now if the scope has none).
    public func seal(_ secret: Secret, in context: SecretContext, keys: some ScopeKeyDirectory) async throws -> SealedSecret {
        let scopeKey = try await activeScopeKey(for: context.scope, keys: keys)
        let dataKey = SymmetricKey(size: .bits256)
        let ciphertext: [UInt8]
        let wrappedKey: [UInt8]
        do {
            let box = try secret.withPlaintext { plaintext in
                try AES.GCM.seal(plaintext, using: dataKey, authenticating: context.associatedData(purpose: Self.secretPurpose))
            }
            guard let combined = box.combined else { throw VaultError.sealFailed }
            ciphertext = [EnvelopeFormat.version] + combined
            wrappedKey = try Self.wrap(dataKey, with: scopeKey, in: context)
        } catch {
            throw VaultError.sealFailed
        }
        return SealedSecret(wrappedKey: wrappedKey, ciphertext: ciphertext)
    }

    /// Opens a sealed secret. A ciphertext that does not open is ``VaultError/unreadable(_:)``; a scope key the device
    /// cannot unwrap now is ``VaultError/custodyUnavailable(deviceCode:detail:)``; the directory's own errors pass through.
    public func open(_ sealed: SealedSecret, in context: SecretContext, keys: some ScopeKeyDirectory) async throws -> Secret {
        let dataKey = try await unwrapDataKey(sealed, in: context, keys: keys)
        let body = sealed.ciphertext
        guard body.count >= 1 + EnvelopeFormat.nonceLength + EnvelopeFormat.tagLength, body[0] == EnvelopeFormat.version else {
            throw VaultError.unreadable(.malformed)
        }
        do {
            let box = try AES.GCM.SealedBox(combined: body[1...])
            let plaintext = try AES.GCM.open(box, using: dataKey, authenticating: context.associatedData(purpose: Self.secretPurpose))
            return Secret(bytes: Array(plaintext))
        } catch {
            throw VaultError.unreadable(.authenticationFailed)
        }
    }

    /// Moves a data key of format 1 (under a master key) to its scope's key; the secret's ciphertext is not touched.
    /// Returns `sealed` unchanged when it is already under a scope key.
    public func rewrap(_ sealed: SealedSecret, in context: SecretContext, keys: some ScopeKeyDirectory) async throws -> SealedSecret {
        try await rewrap(sealed, in: context) { try await self.activeScopeKey(for: context.scope, keys: keys) }
    }

    /// Moves a data key of format 1 to the scope key `scopeKey` gives (asked only once the data key opened: a
    /// rotation's walk reads each scope's key once, and a row that does not open makes none).
    public func rewrap(_ sealed: SealedSecret, in context: SecretContext, scopeKey: () async throws -> ScopeKey) async throws -> SealedSecret {
        guard sealed.format == EnvelopeFormat.legacyVersion else { return sealed }
        let dataKey = try unwrapLegacyDataKey(sealed, in: context)
        let key = try await scopeKey()
        guard key.scope == context.scope else { throw VaultError.sealFailed }
        return try Self.rewrapped(sealed, dataKey: dataKey, under: key, in: context)
    }

    private static func rewrapped(_ sealed: SealedSecret, dataKey: SymmetricKey, under scopeKey: ScopeKey, in context: SecretContext) throws -> SealedSecret {
        do {
            return SealedSecret(wrappedKey: try wrap(dataKey, with: scopeKey, in: context), ciphertext: sealed.ciphertext)
        } catch {
            throw VaultError.sealFailed
        }
    }

    /// Seals in format 1 (a data key wrapped by the keyring's active master key directly), as builds before scope keys
    /// did: for tests of the move to scope keys.
    package func sealInFormat1(_ secret: Secret, in context: SecretContext) throws -> SealedSecret {
        guard let master = localKeyring?.keyring.active else { throw VaultError.sealFailed }
        let dataKey = SymmetricKey(size: .bits256)
        let box = try secret.withPlaintext { try AES.GCM.seal($0, using: dataKey, authenticating: context.associatedData(purpose: Self.secretPurpose)) }
        let wrapped = try dataKey.withUnsafeBytes { bytes in
            try AES.GCM.seal(bytes, using: master.key, authenticating: context.associatedData(purpose: Self.legacyDataKeyPurpose, extra: master.id))
        }
        guard let secretBox = box.combined, let keyBox = wrapped.combined else { throw VaultError.sealFailed }
        return SealedSecret(wrappedKey: [EnvelopeFormat.legacyVersion, UInt8(master.idBytes.count)] + master.idBytes + keyBox,
                            ciphertext: [EnvelopeFormat.version] + secretBox)
    }

    // MARK: Scope keys

    /// The key new secrets of `scope` are sealed under, made (and stored in `keys`) when the scope has none.
    public func activeScopeKey(for scope: Scope, keys: some ScopeKeyDirectory) async throws -> ScopeKey {
        if let stored = try await keys.activeKey(for: scope) {
            return try await unwrap(stored)
        }
        return try await makeScopeKey(for: scope, keys: keys)
    }

    /// Makes a new key for `scope`, wrapped by the master key (or by the workspace's own KMS key `customerKey`) and
    /// stored in `keys`: the scope's newest, so new secrets are sealed under it (a workspace-key rotation moves the older
    /// secrets to it).
    public func makeScopeKey(for scope: Scope, keys: some ScopeKeyDirectory, customerKey: CustomerKeyARN? = nil) async throws -> ScopeKey {
        let material = SymmetricKey(size: .bits256)
        let id = ScopeKey.makeID()
        let secret = material.withUnsafeBytes { Secret(bytes: Array($0)) }
        let masterKeyID: String
        let wrapped: [UInt8]
        if let customerKey {
            guard let customerKeys, scope.workspaceID != nil else { throw Self.customerKeysNotConfigured }
            (masterKeyID, wrapped) = (customerKey.wrappingKeyID, try await customerKeys.wrap(secret, id: id, scope: scope, under: customerKey))
        } else {
            (masterKeyID, wrapped) = try await custodian.wrap(secret, id: id, scope: scope)
        }
        try await checkRoundTrip(WrappedScopeKey(id: id, scope: scope, masterKeyID: masterKeyID, wrapped: wrapped, createdAt: ""), material: secret)
        // Newer than the scope's newest, even within its millisecond: the newest seals (read after the device calls,
        // just before the insert).
        var createdAt = Date()
        if let newest = try await keys.activeKey(for: scope), let time = Timestamp.date(newest.createdAt), time >= createdAt.addingTimeInterval(-0.001) {
            createdAt = time.addingTimeInterval(0.001)
        }
        let stored = WrappedScopeKey(id: id, scope: scope, masterKeyID: masterKeyID, wrapped: wrapped, createdAt: Timestamp.string(createdAt))
        try await keys.insert(stored)
        let key = ScopeKey(id: id, scope: scope, key: material)
        // Held by id only: a key whose row is rolled back is never named by a committed data key.
        cache.hold(key)
        return key
    }

    /// Moves a data key (of either format) to `scopeKey`, a newer key of its scope; the secret's ciphertext is not touched.
    public func rewrap(_ sealed: SealedSecret, in context: SecretContext, to scopeKey: ScopeKey, keys: some ScopeKeyDirectory) async throws -> SealedSecret {
        guard sealed.scopeKeyID != scopeKey.id else { return sealed }
        guard scopeKey.scope == context.scope else { throw VaultError.sealFailed }
        return try Self.rewrapped(sealed, dataKey: try await unwrapDataKey(sealed, in: context, keys: keys), under: scopeKey, in: context)
    }

    /// The stored scope key in the clear: from the cache, else unwrapped by the custodian and held.
    public func unwrap(_ stored: WrappedScopeKey) async throws(VaultError) -> ScopeKey {
        if let held = cache.key(id: stored.id), held.scope == stored.scope { return held }
        let material: Secret
        if stored.isUnderCustomerKey {
            if let refused = recentRefusal(of: stored.id) { throw refused }
            material = try await customerKeyMaterial(stored) { () async throws(VaultError) -> Secret in try await self.unwrapOnce(stored) }
        } else {
            material = try await unwrapOnce(stored)
        }
        return try hold(material, of: stored)
    }

    /// `material` as the scope key `stored` wraps, held in the cache.
    private func hold(_ material: Secret, of stored: WrappedScopeKey) throws(VaultError) -> ScopeKey {
        guard material.byteCount == EnvelopeFormat.dataKeyLength else { throw .unreadable(.malformed) }
        let key = ScopeKey(id: stored.id, scope: stored.scope, key: material.withPlaintext { SymmetricKey(data: $0) })
        cache.hold(key)
        return key
    }

    /// Wraps a stored scope key again under the custodian's active master key (a master-key rotation: the scope key,
    /// and so every data key under it, stays the same). Returns `stored` unchanged when it is already under it.
    /// A key under a workspace's own KMS key is not the master key's: it is returned unchanged.
    public func rewrapScopeKey(_ stored: WrappedScopeKey) async throws(VaultError) -> WrappedScopeKey {
        guard stored.masterKeyID != custodian.activeKeyID, !stored.isUnderCustomerKey else { return stored }
        let material = try await unwrapMaterial(stored)
        let (masterKeyID, wrapped) = try await custodian.wrap(material, id: stored.id, scope: stored.scope)
        let rewrapped = WrappedScopeKey(id: stored.id, scope: stored.scope, masterKeyID: masterKeyID, wrapped: wrapped, createdAt: stored.createdAt)
        // The old wrapping is overwritten and its master key may be destroyed after: the new one must open first.
        try await checkRoundTrip(rewrapped, material: material)
        return rewrapped
    }

    /// The material of `stored`, with one device call for every caller that misses the same key at once (a busy
    /// workspace's calls all miss together when its key's time is up). Keyed by the whole record: one that differs in
    /// anything (a tampered row) is unwrapped on its own.
    private func unwrapOnce(_ stored: WrappedScopeKey) async throws(VaultError) -> Secret {
        let flight = Flight(id: stored.id, masterKeyID: stored.masterKeyID, scope: stored.scope, wrapped: stored.wrapped)
        let (task, leads) = unwrapping.withLock { running -> (Task<Secret, any Error>, Bool) in
            if let task = running[flight] { return (task, false) }
            let task = Task { [self] () async throws -> Secret in try await self.unwrapMaterial(stored) }
            running[flight] = task
            return (task, true)
        }
        defer { if leads { unwrapping.withLock { $0[flight] = nil } } }
        do {
            return try await task.value
        } catch let error as VaultError {
            throw error
        } catch {
            throw .custodyUnavailable(deviceCode: "unwrap_failed", detail: "the workspace key's unwrap ended without an answer")
        }
    }

    /// A stored scope key's material: by the custodian, or — for a key wrapped by the keyring before a device held the
    /// master key (`mk-…`) — by the keyring kept beside it, until a rotation moves it under the device.
    private func unwrapMaterial(_ stored: WrappedScopeKey) async throws(VaultError) -> Secret {
        if stored.isUnderCustomerKey {
            guard let customerKeys else { throw Self.customerKeysNotConfigured }
            return try await customerKeys.unwrap(stored)
        }
        if let localKeyring, localKeyring !== (custodian as? LocalKeyring), stored.masterKeyID.hasPrefix(MasterKey.idPrefix) {
            return try await localKeyring.unwrap(stored)
        }
        return try await custodian.unwrap(stored)
    }

    /// Unwraps what was just wrapped and compares it with `material`: a device that wraps wrongly now and then is caught
    /// before anything depends on what it wrote.
    private func checkRoundTrip(_ stored: WrappedScopeKey, material: Secret) async throws(VaultError) {
        let opened = try await unwrapMaterial(stored)
        guard opened == material else {
            throw .custodyUnavailable(deviceCode: "wrap_check_failed", detail: "the master key's device returned a wrapping that does not open to the key it was given")
        }
    }

    /// Asks the customer's KMS now whether a workspace key under a customer key opens, past the cache and any remembered
    /// refusal: what a change of the workspace's wrapping checks first (a key revoked a moment ago must not be moved off
    /// with the copy still held in memory). A refusal drops the copy held, so calls stop using it at once; an answer
    /// holds the key afresh (the change that follows uses it without asking again).
    public func checkCustomerKey(_ stored: WrappedScopeKey) async throws(VaultError) {
        guard stored.isUnderCustomerKey else { return }
        _ = try hold(try await customerKeyMaterial(stored) { () async throws(VaultError) -> Secret in try await self.unwrapMaterial(stored) }, of: stored)
    }

    /// A customer-wrapped key's material from `unwrapping`: a revocation is remembered (and the copy held dropped), an
    /// answer forgets an earlier one.
    private func customerKeyMaterial(_ stored: WrappedScopeKey, _ unwrapping: () async throws(VaultError) -> Secret) async throws(VaultError) -> Secret {
        do throws(VaultError) {
            let material = try await unwrapping()
            refusals.withLock { $0[stored.id] = nil }
            return material
        } catch {
            remember(error, of: stored)
            throw error
        }
    }

    /// Remembers a customer key's revocation (not an outage: one throttled or slow answer must not stop a workspace's
    /// own keys for seconds), and drops the copy of the key held.
    private func remember(_ error: VaultError, of stored: WrappedScopeKey) {
        guard error.isCustomerKeyRevoked else { return }
        cache.forget(id: stored.id)
        let until = ContinuousClock.now.advanced(by: customerKeyRetryInterval)
        refusals.withLock { refusals in
            if refusals.count >= 10_000 { refusals.removeAll() }
            refusals[stored.id] = (error, until)
        }
    }

    /// The refusal of a customer key remembered for `id`, while it is recent.
    private func recentRefusal(of id: String) -> VaultError? {
        let now = ContinuousClock.now
        return refusals.withLock { refusals in
            guard let refusal = refusals[id] else { return nil }
            guard refusal.until > now else {
                refusals[id] = nil
                return nil
            }
            return refusal.error
        }
    }

    /// What an instance without ``CustomerKeyConfiguration`` says of a key under a customer's KMS key.
    static let customerKeysNotConfigured = VaultError.custodyUnavailable(
        deviceCode: "customer_keys_not_configured",
        detail: "a workspace key is wrapped by the workspace's own KMS key, and this instance is not configured to reach customer keys (\(CustomerKeyConfiguration.modeVariable))"
    )

    /// Drops the keys of `scope` from memory (its workspace was deleted: its secrets are shredded).
    public func forget(scope: Scope) {
        cache.forget(scope: scope)
    }

    /// Drops every unwrapped scope key from memory.
    public func forgetAll() {
        cache.removeAll()
    }

    /// Has the custodian wrap and unwrap a probe, so a device that is unreachable or refuses is said at start.
    public func checkCustody() async throws(VaultError) {
        let probe = Secret(bytes: Array(repeating: 0, count: EnvelopeFormat.dataKeyLength))
        let id = "probe"
        let (masterKeyID, wrapped) = try await custodian.wrap(probe, id: id, scope: .platform)
        _ = try await custodian.unwrap(WrappedScopeKey(id: id, scope: .platform, masterKeyID: masterKeyID, wrapped: wrapped, createdAt: Timestamp.now))
    }

    /// Releases the custodian's device session or client.
    public func close() async {
        cache.removeAll()
        await custodian.close()
        await customerKeys?.close()
    }

    // MARK: Data keys

    private static func wrap(_ dataKey: SymmetricKey, with scopeKey: ScopeKey, in context: SecretContext) throws -> [UInt8] {
        let id = Array(scopeKey.id.utf8)
        let box = try dataKey.withUnsafeBytes { bytes in
            try AES.GCM.seal(bytes, using: scopeKey.key, authenticating: context.associatedData(purpose: dataKeyPurpose, extra: scopeKey.id))
        }
        guard let combined = box.combined, id.count <= Int(UInt8.max) else { throw VaultError.sealFailed }
        var wrapped: [UInt8] = [EnvelopeFormat.scopedVersion, UInt8(id.count)]
        wrapped.reserveCapacity(2 + id.count + combined.count)
        wrapped.append(contentsOf: id)
        wrapped.append(contentsOf: combined)
        return wrapped
    }

    /// The length of a wrapped data key's header (`version ‖ id length ‖ id`), checking that a whole box of a data key
    /// follows it (either format).
    private static func headerLength(of wrapped: [UInt8]) throws(VaultError) -> Int {
        guard wrapped.count >= 2, wrapped[1] > 0 else { throw .unreadable(.malformed) }
        let headerLength = 2 + Int(wrapped[1])
        guard wrapped.count == headerLength + EnvelopeFormat.nonceLength + EnvelopeFormat.dataKeyLength + EnvelopeFormat.tagLength else {
            throw .unreadable(.malformed)
        }
        return headerLength
    }

    /// Opens a data key of format 1 with the keyring's master key its header names.
    private func unwrapLegacyDataKey(_ sealed: SealedSecret, in context: SecretContext) throws(VaultError) -> SymmetricKey {
        let wrapped = sealed.wrappedKey
        guard sealed.format == EnvelopeFormat.legacyVersion else { throw .unreadable(.malformed) }
        let headerLength = try Self.headerLength(of: wrapped)
        guard let localKeyring else { throw .unreadable(.unknownMasterKey) }
        let master = try localKeyring.masterKey(idBytes: wrapped[2..<headerLength])
        do {
            let box = try AES.GCM.SealedBox(combined: wrapped[headerLength...])
            let bytes = try AES.GCM.open(box, using: master.key, authenticating: context.associatedData(purpose: Self.legacyDataKeyPurpose, extra: master.id))
            return SymmetricKey(data: bytes)
        } catch {
            throw .unreadable(.authenticationFailed)
        }
    }

    private func unwrapDataKey(_ sealed: SealedSecret, in context: SecretContext, keys: some ScopeKeyDirectory) async throws -> SymmetricKey {
        guard sealed.format == EnvelopeFormat.scopedVersion else { return try unwrapLegacyDataKey(sealed, in: context) }
        let wrapped = sealed.wrappedKey
        let headerLength = try Self.headerLength(of: wrapped)
        let id = String(decoding: wrapped[2..<headerLength], as: UTF8.self)
        let scopeKey: ScopeKey
        if let held = cache.key(id: id) {
            scopeKey = held
        } else {
            guard let stored = try await keys.key(id: id) else { throw VaultError.unreadable(.unknownScopeKey) }
            // Another scope's key is not even unwrapped (a header naming it costs no device call).
            guard stored.scope == context.scope else { throw VaultError.unreadable(.authenticationFailed) }
            scopeKey = try await unwrap(stored)
        }
        // A scope key opens only its own scope's data keys (the associated data says so too).
        guard scopeKey.scope == context.scope else { throw VaultError.unreadable(.authenticationFailed) }
        do {
            let box = try AES.GCM.SealedBox(combined: wrapped[headerLength...])
            let bytes = try AES.GCM.open(box, using: scopeKey.key, authenticating: context.associatedData(purpose: Self.dataKeyPurpose, extra: id))
            return SymmetricKey(data: bytes)
        } catch {
            throw VaultError.unreadable(.authenticationFailed)
        }
    }
}
