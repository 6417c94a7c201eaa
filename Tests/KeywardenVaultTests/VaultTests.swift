import Crypto
import Foundation
import KeywardenCore
import Testing
@testable import KeywardenVault

/// After Vault's barrier tests (`barrier_aes_gcm_test.go`) and Tink's AEAD tests.
@Suite("Vault envelope encryption")
struct VaultTests {
    let canary = "sk-canary-KW-2f8e61d0a9b4c7e3"
    let context = SecretContext(scope: .workspace("ws_a"), ownerID: "key_1", field: "api_key")
    /// The stored workspace keys (the database's table, in memory); fresh for each test.
    let keys = InMemoryScopeKeyDirectory()

    @Test("a sealed secret opens to the same value")
    func roundTrip() async throws {
        let vault = Vault(keyring: .generate())
        let sealed = try await vault.seal(Secret(canary), in: context, keys: keys)
        #expect(try await vault.open(sealed, in: context, keys: keys).unprotectedString == canary)
    }

    @Test("an empty secret and a long one round-trip")
    func roundTripEdges() async throws {
        let vault = Vault(keyring: .generate())
        for value in ["", String(repeating: "x", count: 100_000)] {
            #expect(try await vault.open(try await vault.seal(Secret(value), in: context, keys: keys), in: context, keys: keys).unprotectedString == value)
        }
    }

    @Test("the stored bytes do not contain the plaintext")
    func confidentiality() async throws {
        let vault = Vault(keyring: .generate())
        let sealed = try await vault.seal(Secret(canary), in: context, keys: keys)
        let needle = Array(canary.utf8)
        for haystack in [sealed.wrappedKey, sealed.ciphertext, sealed.wrappedKey + sealed.ciphertext] {
            #expect(!contains(haystack, needle))
            #expect(!contains(haystack, Array(needle.prefix(8))))
        }
        #expect(!sealed.description.contains(canary))
    }

    @Test("one flipped bit anywhere in either part makes the secret unreadable")
    func everyBitFlipIsDetected() async throws {
        let vault = Vault(keyring: .generate())
        let sealed = try await vault.seal(Secret(canary), in: context, keys: keys)
        var checked = 0
        for part in 0..<2 {
            let bytes = part == 0 ? sealed.wrappedKey : sealed.ciphertext
            for index in bytes.indices {
                for bit in 0..<8 {
                    var tampered = bytes
                    tampered[index] ^= UInt8(1 << bit)
                    let candidate = part == 0
                        ? SealedSecret(wrappedKey: tampered, ciphertext: sealed.ciphertext)
                        : SealedSecret(wrappedKey: sealed.wrappedKey, ciphertext: tampered)
                    await #expect(throws: VaultError.self) { try await vault.open(candidate, in: context, keys: keys) }
                    checked += 1
                }
            }
        }
        #expect(checked == 8 * (sealed.wrappedKey.count + sealed.ciphertext.count))
    }

    @Test("truncated or extended ciphertexts are unreadable, not a crash")
    func truncation() async throws {
        let vault = Vault(keyring: .generate())
        let sealed = try await vault.seal(Secret(canary), in: context, keys: keys)
        for length in 0..<sealed.wrappedKey.count {
            let candidate = SealedSecret(wrappedKey: Array(sealed.wrappedKey.prefix(length)), ciphertext: sealed.ciphertext)
            await #expect(throws: VaultError.self) { try await vault.open(candidate, in: context, keys: keys) }
        }
        for length in 0..<sealed.ciphertext.count {
            let candidate = SealedSecret(wrappedKey: sealed.wrappedKey, ciphertext: Array(sealed.ciphertext.prefix(length)))
            await #expect(throws: VaultError.self) { try await vault.open(candidate, in: context, keys: keys) }
        }
        let extended = SealedSecret(wrappedKey: sealed.wrappedKey + [0], ciphertext: sealed.ciphertext)
        await #expect(throws: VaultError.self) { try await vault.open(extended, in: context, keys: keys) }
    }

    @Test("a ciphertext moved to another credential, field, scope or workspace does not open")
    func movedEntriesDoNotOpen() async throws {
        let vault = Vault(keyring: .generate())
        let sealed = try await vault.seal(Secret(canary), in: context, keys: keys)
        let elsewhere = [
            SecretContext(scope: .workspace("ws_a"), ownerID: "key_2", field: "api_key"),
            SecretContext(scope: .workspace("ws_a"), ownerID: "key_1", field: "extras"),
            SecretContext(scope: .workspace("ws_b"), ownerID: "key_1", field: "api_key"),
            SecretContext(scope: .platform, ownerID: "key_1", field: "api_key"),
        ]
        for other in elsewhere {
            await #expect(throws: VaultError.unreadable(.authenticationFailed)) { try await vault.open(sealed, in: other, keys: keys) }
        }
        // Swapping only the wrapped data keys of two rows fails too.
        let other = SecretContext(scope: .workspace("ws_a"), ownerID: "key_2", field: "api_key")
        let second = try await vault.seal(Secret("another"), in: other, keys: keys)
        let swapped = SealedSecret(wrappedKey: second.wrappedKey, ciphertext: sealed.ciphertext)
        await #expect(throws: VaultError.self) { try await vault.open(swapped, in: context, keys: keys) }
    }

    @Test("two seals of one secret differ, and nonces never repeat over many seals")
    func sealsAreRandomized() async throws {
        let vault = Vault(keyring: .generate())
        let a = try await vault.seal(Secret(canary), in: context, keys: keys)
        let b = try await vault.seal(Secret(canary), in: context, keys: keys)
        #expect(a.ciphertext != b.ciphertext && a.wrappedKey != b.wrappedKey)

        var secretNonces = Set<[UInt8]>()
        var keyNonces = Set<[UInt8]>()
        let headerLength = 2 + a.wrappedKey[1]
        for _ in 0..<5000 {
            let sealed = try await vault.seal(Secret(canary), in: context, keys: keys)
            secretNonces.insert(Array(sealed.ciphertext[1..<13]))
            keyNonces.insert(Array(sealed.wrappedKey[Int(headerLength)..<Int(headerLength) + 12]))
        }
        #expect(secretNonces.count == 5000 && keyNonces.count == 5000)
    }

    @Test("the data key's header names the workspace key, whose record names the master key: opening never guesses")
    func headerCarriesKeyIDs() async throws {
        let keyring = Keyring.generate()
        let vault = Vault(keyring: keyring)
        let sealed = try await vault.seal(Secret(canary), in: context, keys: keys)
        let stored = try #require(try await keys.activeKey(for: context.scope))
        #expect(sealed.scopeKeyID == stored.id && sealed.masterKeyID == nil)
        #expect(stored.masterKeyID == keyring.active.id && stored.id.hasPrefix("wk-") && stored.id.utf8.count == 15)
        #expect(sealed.wrappedKey[0] == 2 && sealed.ciphertext[0] == 1)
        // One workspace key per scope: a second secret of the scope is sealed under the same one, another scope gets its own.
        _ = try await vault.seal(Secret("b"), in: SecretContext(scope: context.scope, ownerID: "key_2", field: "api_key"), keys: keys)
        _ = try await vault.seal(Secret("c"), in: SecretContext(scope: .workspace("ws_b"), ownerID: "key_3", field: "api_key"), keys: keys)
        #expect(keys.all.count == 2)
    }

    @Test("a wrong keyring reports unreadable for each secret, and nothing crashes")
    func wrongKeyring() async throws {
        let stranger = Vault(keyring: .generate())
        for index in 0..<20 {
            let directory = InMemoryScopeKeyDirectory()
            let sealed = try await Vault(keyring: .generate()).seal(Secret("secret-\(index)"), in: context, keys: directory)
            await #expect(throws: VaultError.unreadable(.unknownMasterKey)) { try await stranger.open(sealed, in: context, keys: directory) }
        }
    }

    @Test("a data key naming a workspace key that does not exist (shredded) is unreadable")
    func shreddedScopeKey() async throws {
        let vault = Vault(keyring: .generate())
        let sealed = try await vault.seal(Secret(canary), in: context, keys: keys)
        keys.removeAll(of: context.scope)
        vault.forget(scope: context.scope)
        await #expect(throws: VaultError.unreadable(.unknownScopeKey)) { try await vault.open(sealed, in: context, keys: keys) }
    }

    @Test("a master-key rotation re-wraps workspace keys only: data keys and ciphertexts stay, and the old key can go")
    func rotateThenReadOld() async throws {
        var keyring = Keyring.generate()
        let oldID = keyring.active.id
        let local = LocalKeyring(keyring: keyring)
        let vault = Vault(custodian: local)
        let contexts = (0..<10).map { SecretContext(scope: .workspace("ws_\($0 % 3)"), ownerID: "key_\($0)", field: "api_key") }
        var sealed: [SealedSecret] = []
        for context in contexts { sealed.append(try await vault.seal(Secret("value-\(context.ownerID)"), in: context, keys: keys)) }

        keyring.promote(MasterKey.generate())
        local.replaceKeyring(keyring)
        #expect(vault.activeKeyID != oldID)
        for stored in keys.all {
            let rewrapped = try await vault.rewrapScopeKey(stored)
            #expect(rewrapped.id == stored.id && rewrapped.masterKeyID == vault.activeKeyID && rewrapped.wrapped != stored.wrapped)
            #expect(try await vault.rewrapScopeKey(rewrapped) == rewrapped)
            keys.replace(rewrapped)
        }
        // Retired: nothing under the old key is needed any more.
        try keyring.retire(id: oldID)
        local.replaceKeyring(keyring)
        vault.forgetAll()
        for (context, old) in zip(contexts, sealed) {
            #expect(try await vault.open(old, in: context, keys: keys).unprotectedString == "value-\(context.ownerID)")
        }
    }

    @Test("a secret of format 1 (a data key under the master key) opens, and moves to its workspace key")
    func formatOneMovesToScopeKeys() async throws {
        var keyring = Keyring.generate()
        let oldID = keyring.active.id
        let local = LocalKeyring(keyring: keyring)
        let vault = Vault(custodian: local)
        let old = try vault.sealInFormat1(Secret(canary), in: context)
        #expect(old.masterKeyID == oldID && old.scopeKeyID == nil)
        #expect(try await vault.open(old, in: context, keys: keys).unprotectedString == canary)
        let moved = try await vault.rewrap(old, in: context, keys: keys)
        #expect(moved.scopeKeyID != nil && moved.ciphertext == old.ciphertext)
        #expect(try await vault.rewrap(moved, in: context, keys: keys) == moved)
        // A format-1 data key moved to another row does not move.
        await #expect(throws: VaultError.self) {
            try await vault.rewrap(old, in: SecretContext(scope: .workspace("ws_b"), ownerID: "key_1", field: "api_key"), keys: keys)
        }

        keyring.promote(MasterKey.generate())
        try keyring.retire(id: oldID)
        local.replaceKeyring(keyring)
        await #expect(throws: VaultError.unreadable(.unknownMasterKey)) { try await vault.open(old, in: context, keys: keys) }
        // The moved one still opens: its workspace key is held (a rotation would have re-wrapped it before the retirement).
        #expect(try await vault.open(moved, in: context, keys: keys).unprotectedString == canary)
    }

    @Test("the active key cannot be retired")
    func activeKeyCannotBeRetired() {
        var keyring = Keyring.generate()
        let id = keyring.active.id
        #expect(throws: KeyringError.self) { try keyring.retire(id: id) }
    }

    func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) where Array(haystack[start..<start + needle.count]) == needle {
            return true
        }
        return false
    }
}
