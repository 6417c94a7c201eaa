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

    @Test("a sealed secret opens to the same value")
    func roundTrip() throws {
        let vault = Vault(keyring: .generate())
        let sealed = try vault.seal(Secret(canary), in: context)
        #expect(try vault.open(sealed, in: context).unprotectedString == canary)
    }

    @Test("an empty secret and a long one round-trip")
    func roundTripEdges() throws {
        let vault = Vault(keyring: .generate())
        for value in ["", String(repeating: "x", count: 100_000)] {
            #expect(try vault.open(vault.seal(Secret(value), in: context), in: context).unprotectedString == value)
        }
    }

    @Test("the stored bytes do not contain the plaintext")
    func confidentiality() throws {
        let vault = Vault(keyring: .generate())
        let sealed = try vault.seal(Secret(canary), in: context)
        let needle = Array(canary.utf8)
        for haystack in [sealed.wrappedKey, sealed.ciphertext, sealed.wrappedKey + sealed.ciphertext] {
            #expect(!contains(haystack, needle))
            #expect(!contains(haystack, Array(needle.prefix(8))))
        }
        #expect(!sealed.description.contains(canary))
    }

    @Test("one flipped bit anywhere in either part makes the secret unreadable")
    func everyBitFlipIsDetected() throws {
        let vault = Vault(keyring: .generate())
        let sealed = try vault.seal(Secret(canary), in: context)
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
                    #expect(throws: VaultError.self) { try vault.open(candidate, in: context) }
                    checked += 1
                }
            }
        }
        #expect(checked == 8 * (sealed.wrappedKey.count + sealed.ciphertext.count))
    }

    @Test("truncated or extended ciphertexts are unreadable, not a crash")
    func truncation() throws {
        let vault = Vault(keyring: .generate())
        let sealed = try vault.seal(Secret(canary), in: context)
        for length in 0..<sealed.wrappedKey.count {
            let candidate = SealedSecret(wrappedKey: Array(sealed.wrappedKey.prefix(length)), ciphertext: sealed.ciphertext)
            #expect(throws: VaultError.self) { try vault.open(candidate, in: context) }
        }
        for length in 0..<sealed.ciphertext.count {
            let candidate = SealedSecret(wrappedKey: sealed.wrappedKey, ciphertext: Array(sealed.ciphertext.prefix(length)))
            #expect(throws: VaultError.self) { try vault.open(candidate, in: context) }
        }
        let extended = SealedSecret(wrappedKey: sealed.wrappedKey + [0], ciphertext: sealed.ciphertext)
        #expect(throws: VaultError.self) { try vault.open(extended, in: context) }
    }

    @Test("a ciphertext moved to another credential, field, scope or workspace does not open")
    func movedEntriesDoNotOpen() throws {
        let vault = Vault(keyring: .generate())
        let sealed = try vault.seal(Secret(canary), in: context)
        let elsewhere = [
            SecretContext(scope: .workspace("ws_a"), ownerID: "key_2", field: "api_key"),
            SecretContext(scope: .workspace("ws_a"), ownerID: "key_1", field: "extras"),
            SecretContext(scope: .workspace("ws_b"), ownerID: "key_1", field: "api_key"),
            SecretContext(scope: .platform, ownerID: "key_1", field: "api_key"),
        ]
        for other in elsewhere {
            #expect(throws: VaultError.unreadable(.authenticationFailed)) { try vault.open(sealed, in: other) }
        }
        // Swapping only the wrapped data keys of two rows fails too.
        let other = SecretContext(scope: .workspace("ws_a"), ownerID: "key_2", field: "api_key")
        let second = try vault.seal(Secret("another"), in: other)
        let swapped = SealedSecret(wrappedKey: second.wrappedKey, ciphertext: sealed.ciphertext)
        #expect(throws: VaultError.self) { try vault.open(swapped, in: context) }
    }

    @Test("two seals of one secret differ, and nonces never repeat over many seals")
    func sealsAreRandomized() throws {
        let vault = Vault(keyring: .generate())
        let a = try vault.seal(Secret(canary), in: context)
        let b = try vault.seal(Secret(canary), in: context)
        #expect(a.ciphertext != b.ciphertext && a.wrappedKey != b.wrappedKey)

        var secretNonces = Set<[UInt8]>()
        var keyNonces = Set<[UInt8]>()
        let headerLength = 2 + a.wrappedKey[1]
        for _ in 0..<5000 {
            let sealed = try vault.seal(Secret(canary), in: context)
            secretNonces.insert(Array(sealed.ciphertext[1..<13]))
            keyNonces.insert(Array(sealed.wrappedKey[Int(headerLength)..<Int(headerLength) + 12]))
        }
        #expect(secretNonces.count == 5000 && keyNonces.count == 5000)
    }

    @Test("the header names the master key, so opening never guesses")
    func headerCarriesMasterKeyID() throws {
        let keyring = Keyring.generate()
        let vault = Vault(keyring: keyring)
        let sealed = try vault.seal(Secret(canary), in: context)
        #expect(sealed.masterKeyID == keyring.active.id)
        #expect(sealed.wrappedKey[0] == 1 && sealed.ciphertext[0] == 1)
    }

    @Test("a wrong keyring reports unreadable for each secret, and nothing crashes")
    func wrongKeyring() throws {
        let sealedSecrets = try (0..<20).map { index in
            try Vault(keyring: .generate()).seal(Secret("secret-\(index)"), in: context)
        }
        let stranger = Vault(keyring: .generate())
        for sealed in sealedSecrets {
            #expect(throws: VaultError.unreadable(.unknownMasterKey)) { try stranger.open(sealed, in: context) }
        }
    }

    @Test("after a rotation every old secret opens, re-wrapped or not, and re-wrapping keeps the ciphertext")
    func rotateThenReadOld() throws {
        var keyring = Keyring.generate()
        let oldID = keyring.active.id
        let vault = Vault(keyring: keyring)
        let contexts = (0..<10).map { SecretContext(scope: .platform, ownerID: "key_\($0)", field: "api_key") }
        let sealed = try contexts.map { try vault.seal(Secret("value-\($0.ownerID)"), in: $0) }

        keyring.promote(MasterKey.generate())
        vault.replaceKeyring(keyring)
        #expect(vault.activeKeyID != oldID)
        #expect(keyring.decryptOnlyIDs == [oldID])

        for (context, old) in zip(contexts, sealed) {
            #expect(try vault.open(old, in: context).unprotectedString == "value-\(context.ownerID)")
            let rewrapped = try vault.rewrap(old, in: context)
            #expect(rewrapped.masterKeyID == vault.activeKeyID)
            #expect(rewrapped.ciphertext == old.ciphertext)
            #expect(try vault.open(rewrapped, in: context).unprotectedString == "value-\(context.ownerID)")
            #expect(try vault.rewrap(rewrapped, in: context) == rewrapped)
        }

        // Once the old key is retired, only re-wrapped secrets open.
        try keyring.retire(id: oldID)
        vault.replaceKeyring(keyring)
        #expect(throws: VaultError.unreadable(.unknownMasterKey)) { try vault.open(sealed[0], in: contexts[0]) }
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
