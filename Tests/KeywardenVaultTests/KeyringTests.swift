import Foundation
import KeywardenCore
import Crypto
import Testing
@testable import KeywardenVault

@Suite("Keyring")
struct KeyringTests {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("kw-keyring-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test("a generated keyring file is mode 0600 and reads back the same keys")
    func fileRoundTrip() throws {
        let url = try temporaryDirectory().appendingPathComponent("keyring.json")
        let file = KeyringFile(url: url)
        let keyring = try file.create()
        let mode = try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let read = try file.read()
        #expect(read.active.id == keyring.active.id)
        #expect(throws: KeyringError.fileExists(path: url.path)) { try file.create() }
    }

    @Test("a master key's id is derived from the key, the same from a file or the environment")
    func idIsStableAcrossSources() throws {
        let material = (0..<32).map { UInt8($0) }
        let base64 = Data(material).base64EncodedString()
        let fromEnvironment = try KeyringSource.environment(active: base64, previous: []).load()
        let url = try temporaryDirectory().appendingPathComponent("key.b64")
        try (base64 + "\n").write(to: url, atomically: true, encoding: .utf8)
        let fromFile = try KeyringSource.file(url, generated: false).load()
        #expect(fromEnvironment.active.id == fromFile.active.id)
        #expect(fromEnvironment.active.id.hasPrefix("mk-") && fromEnvironment.active.id.count == 15)
        #expect(!fromEnvironment.active.id.contains(base64.prefix(6)))
    }

    @Test("a master key of the wrong length or not base64 is a clear error")
    func badMasterKeys() {
        let short = Data(repeating: 1, count: 16).base64EncodedString()
        #expect(throws: KeyringError.wrongKeyLength(actual: 16)) { try MasterKey(base64: short, state: .active) }
        #expect(throws: KeyringError.invalidBase64) { try MasterKey(base64: "not*base64!", state: .active) }
        #expect(KeyringError.wrongKeyLength(actual: 16).description.contains("32 bytes"))
    }

    @Test("an unreadable, malformed or edited keyring file is a clear error")
    func badKeyringFiles() throws {
        let directory = try temporaryDirectory()
        let missing = KeyringFile(url: directory.appendingPathComponent("nope.json"))
        #expect(throws: KeyringError.self) { try missing.read() }
        do {
            _ = try missing.read()
        } catch {
            #expect(error.code == "keyring_unreadable")
        }

        let malformedURL = directory.appendingPathComponent("bad.json")
        try #"{"format": "keywarden-keyring", "version": 1, "keys": [}"#.write(to: malformedURL, atomically: true, encoding: .utf8)
        #expect(throws: KeyringError.self) { try KeyringFile(url: malformedURL).read() }

        let editedURL = directory.appendingPathComponent("edited.json")
        let file = KeyringFile(url: editedURL)
        let keyring = try file.create()
        let text = try String(contentsOf: editedURL, encoding: .utf8)
            .replacingOccurrences(of: keyring.active.id, with: "mk-000000000000")
        try text.write(to: editedURL, atomically: true, encoding: .utf8)
        #expect(throws: KeyringError.idMismatch(id: "mk-000000000000")) { try file.read() }
    }

    @Test("KEYWARDEN_MASTER_KEY wins over KEYWARDEN_MASTER_KEY_FILE, which wins over the generated file")
    func sourcePrecedence() {
        let data = URL(fileURLWithPath: "/var/lib/kw")
        let key = Data(repeating: 7, count: 32).base64EncodedString()
        if case .environment(let active, let previous) = KeyringSource.resolve(
            environment: ["KEYWARDEN_MASTER_KEY": key, "KEYWARDEN_MASTER_KEY_FILE": "/x", "KEYWARDEN_MASTER_KEY_PREVIOUS": "a, b"],
            dataDirectory: data
        ) {
            #expect(active == key && previous == ["a", "b"])
        } else {
            Issue.record("expected the environment source")
        }
        let file = KeyringSource.resolve(environment: ["KEYWARDEN_MASTER_KEY_FILE": "/run/secrets/kw"], dataDirectory: data)
        #expect(file.file?.url.path == "/run/secrets/kw" && !file.isGenerated)
        let generated = KeyringSource.resolve(environment: [:], dataDirectory: data)
        #expect(generated.file?.url.path == "/var/lib/kw/keyring.json" && generated.isGenerated)
    }

    @Test("a vault notices when another process rewrote its keyring file")
    func vaultReloadsChangedFile() async throws {
        let url = try temporaryDirectory().appendingPathComponent("keyring.json")
        let file = KeyringFile(url: url)
        var keyring = try file.create()
        let vault = try Vault(source: .file(url, generated: true))
        let firstID = vault.activeKeyID

        // "Another process" rotates: a new active key on disk.
        keyring.promote(MasterKey.generate())
        try file.write(keyring)
        let context = SecretContext(scope: .platform, ownerID: "k", field: "api_key")
        let keys = InMemoryScopeKeyDirectory()
        let sealedByOther = try await Vault(keyring: keyring).seal(Secret("v"), in: context, keys: keys)

        // Opening a secret whose workspace key is under the unknown new key reloads the file.
        #expect(try await vault.open(sealedByOther, in: context, keys: keys).unprotectedString == "v")
        #expect(vault.activeKeyID == keyring.active.id && vault.activeKeyID != firstID)
    }

    @Test("issued tokens have the kw_ form and only their digest is kept")
    func tokens() {
        let token = AccessToken.generate()
        #expect(token.value.hasPrefix("kw_") && token.value.count == 46)
        #expect(AccessToken.looksLikeToken(token.value))
        #expect(token.digest.count == 64 && !token.digest.contains(token.value))
        #expect(!token.description.contains(String(token.value.dropFirst(10))))
        #expect(AccessToken.digestsMatch(token.digest, AccessToken.digest(of: token.value)))
        #expect(!AccessToken.digestsMatch(token.digest, AccessToken.generate().digest))
    }

    @Test("fingerprints are keyed: the same secret under two keys differs")
    func fingerprints() {
        let secret = Secret("sk-same")
        let a = SecretFingerprinter(key: SecretFingerprinter.generateKey())
        let b = SecretFingerprinter(key: SecretFingerprinter.generateKey())
        #expect(a.fingerprint(of: secret) == a.fingerprint(of: Secret("sk-same")))
        #expect(a.fingerprint(of: secret) != b.fingerprint(of: secret))
        #expect(a.fingerprint(of: secret).hasPrefix("fp_"))
    }

    @Test("a signature under a derived key is no fingerprint: storing a key with the signed text as its secret reveals nothing of it")
    func derivedSignatures() {
        let key = SecretFingerprinter.generateKey()
        let a = SecretFingerprinter(key: key)
        let text = "keywarden.upload-session.v1|gemini"
        let signature = a.signature(of: text, purpose: "upload-session-grant")
        #expect(signature.count == 64 && signature == a.signature(of: text, purpose: "upload-session-grant"))
        // What the audit log shows for a key whose secret is that text: no part of the signature.
        let fingerprint = a.fingerprint(of: Secret(text)).dropFirst(3)
        #expect(!signature.contains(fingerprint))
        // The raw HMAC under the fingerprint key is not the signature either.
        let raw = key.withPlaintext { Hex.encode(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: $0))) }
        #expect(raw != signature)
        #expect(a.signature(of: text, purpose: "another") != signature)
        #expect(SecretFingerprinter(key: SecretFingerprinter.generateKey()).signature(of: text, purpose: "upload-session-grant") != signature)
    }
}
