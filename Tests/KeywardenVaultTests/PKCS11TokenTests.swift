import CKeywardenPKCS11
import Foundation
import KeywardenCore
import KeywardenTestSupport
import Testing
@testable import KeywardenVault
#if canImport(Glibc)
import Glibc
#endif

/// The PKCS#11 error a call threw (nil when it did not throw).
func pkcs11Error<T>(_ body: () throws(PKCS11Error) -> T) -> PKCS11Error? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}

@Suite("PKCS#11 configuration and errors")
struct PKCS11ConfigurationTests {
    @Test("the configuration comes from the four variables, the PIN from its file without the trailing newline; a missing one is named")
    func fromEnvironment() throws {
        let file = try pinFile("1234-canary-pin", trailing: "\r\n")
        let full = ["KEYWARDEN_MASTER_KEY_PKCS11_MODULE": "/usr/lib/softhsm/libsofthsm2.so", "KEYWARDEN_MASTER_KEY_PKCS11_TOKEN": "keywarden",
                    "KEYWARDEN_MASTER_KEY_PKCS11_PIN_FILE": file, "KEYWARDEN_MASTER_KEY_PKCS11_KEY_LABEL": "master-1"]
        let configuration = try PKCS11Configuration.fromEnvironment(full)
        #expect(configuration.modulePath == "/usr/lib/softhsm/libsofthsm2.so")
        #expect(configuration.tokenLabel == "keywarden")
        #expect(configuration.keyLabel == "master-1")
        #expect(configuration.pin == Secret("1234-canary-pin"))
        for shown in ["\(configuration)", String(reflecting: configuration)] {
            #expect(!shown.contains("canary"), "\(shown)")
        }
        #expect(try PKCS11Configuration.fromEnvironment(full.merging(["KEYWARDEN_MASTER_KEY_PKCS11_PIN_FILE": try pinFile("0000", trailing: "")]) { $1 })
            .pin == Secret("0000"))
        // Only a newline goes: a PIN may end with a space.
        #expect(try PKCS11Configuration.readPIN(file: try pinFile("12 34 ", trailing: "\n")) == Secret("12 34 "))

        for name in ["KEYWARDEN_MASTER_KEY_PKCS11_MODULE", "KEYWARDEN_MASTER_KEY_PKCS11_TOKEN", "KEYWARDEN_MASTER_KEY_PKCS11_PIN_FILE",
                     "KEYWARDEN_MASTER_KEY_PKCS11_KEY_LABEL"] {
            var missing = full
            missing[name] = nil
            #expect(throws: PKCS11Error.configuration(setting: name, problem: "is not set")) { try PKCS11Configuration.fromEnvironment(missing) }
            missing[name] = " \n"
            #expect(throws: PKCS11Error.configuration(setting: name, problem: "is not set")) { try PKCS11Configuration.fromEnvironment(missing) }
        }
        let empty = try pinFile("", trailing: "\n")
        for (name, value) in [("KEYWARDEN_MASTER_KEY_PKCS11_PIN_FILE", "/nonexistent/pin"), ("KEYWARDEN_MASTER_KEY_PKCS11_PIN_FILE", empty),
                              ("KEYWARDEN_MASTER_KEY_PKCS11_MODULE", "libsofthsm2.so"),
                              ("KEYWARDEN_MASTER_KEY_PKCS11_TOKEN", String(repeating: "t", count: 33))] {
            var bad = full
            bad[name] = value
            let error = pkcs11Error { () throws(PKCS11Error) in try PKCS11Configuration.fromEnvironment(bad) }
            guard case .configuration(let setting, _)? = error else { Issue.record("\(name)=\(value): \(String(describing: error))"); continue }
            #expect(setting == name)
            #expect(error?.code == "pkcs11_configuration")
        }
    }

    @Test("return values are classified: PIN refused or locked, device gone, anything else with its code in hex")
    func classification() {
        #expect(PKCS11Error.classify(CK_RV(CKR_PIN_INCORRECT), operation: "C_Login") == .wrongPIN)
        #expect(PKCS11Error.classify(CK_RV(CKR_PIN_LEN_RANGE), operation: "C_Login") == .wrongPIN)
        #expect(PKCS11Error.classify(CK_RV(CKR_PIN_LOCKED), operation: "C_Login") == .pinLocked)
        for gone in [CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED, CKR_CRYPTOKI_NOT_INITIALIZED] {
            let error = PKCS11Error.classify(CK_RV(gone), operation: "C_Encrypt")
            #expect(error.code == "pkcs11_device_gone")
            #expect(error.isTransient)
        }
        let other = PKCS11Error.classify(CK_RV(CKR_MECHANISM_INVALID), operation: "C_EncryptInit")
        #expect(other == .failed(operation: "C_EncryptInit", returnValue: PKCS11ReturnValue(0x70)))
        #expect("\(other)".contains("CKR_MECHANISM_INVALID (0x00000070)"))
        #expect("\(PKCS11Error.classify(0x8000_0001, operation: "C_Login"))".contains("CKR 0x80000001"))
        #expect(!other.isTransient)
        let codes: [PKCS11Error] = [.configuration(setting: "", problem: ""), .moduleNotLoadable(path: "", reason: ""), .tokenNotFound(label: ""),
                                    .wrongPIN, .pinLocked, .keyNotFound(label: ""), .keyLabelNotUnique(label: "", count: 2),
                                    .keyNotUsable(label: "", reason: ""), .decryptionFailed(detail: ""),
                                    .deviceGone(operation: "", returnValue: PKCS11ReturnValue(0x32)), .closed,
                                    .failed(operation: "", returnValue: PKCS11ReturnValue(5))]
        #expect(codes.map(\.code) == ["pkcs11_configuration", "pkcs11_module_not_loadable", "pkcs11_token_not_found", "pkcs11_wrong_pin",
                                      "pkcs11_pin_locked", "pkcs11_key_not_found", "pkcs11_key_label_not_unique", "pkcs11_key_not_usable",
                                      "pkcs11_decryption_failed", "pkcs11_device_gone", "pkcs11_closed", "pkcs11_failed"])
    }

    @Test("a missing module, or a library that is not a PKCS#11 module, is module_not_loadable")
    func moduleNotLoadable() throws {
        for path in ["/nonexistent/libpkcs11.so", "/lib/x86_64-linux-gnu/libz.so.1"] where path.hasPrefix("/nonexistent")
            || FileManager.default.fileExists(atPath: path) {
            let configuration = try PKCS11Configuration(modulePath: path, tokenLabel: "keywarden", pin: Secret("123456"), keyLabel: "k")
            let error = pkcs11Error { () throws(PKCS11Error) in try PKCS11Token(configuration: configuration) }
            guard case .moduleNotLoadable(let named, let reason)? = error else { Issue.record("\(path): \(String(describing: error))"); continue }
            #expect(named == path)
            #expect(!reason.isEmpty)
        }
    }

    @Test("CI installs SoftHSM2: when KEYWARDEN_TEST_REQUIRE_SOFTHSM2 is set, its absence fails instead of skipping")
    func softHSMPresentWhereRequired() {
        if ProcessInfo.processInfo.environment["KEYWARDEN_TEST_REQUIRE_SOFTHSM2"].map({ !$0.isEmpty && $0 != "0" }) ?? false {
            #expect(SoftHSM.available, "\(SoftHSM.absent)")
        }
    }
}

@Suite("PKCS#11 token on SoftHSM2", .serialized, .enabled(if: SoftHSM.available, Comment(rawValue: SoftHSM.absent)))
struct PKCS11TokenTests {
    let pin = "pin-canary-8d2f"

    /// A fresh token with the test's PIN, and a configuration for it naming `key`.
    func token(_ prefix: String, key: String = "master", pin pinOverride: String? = nil) throws -> PKCS11Configuration {
        let label = SoftHSM.label(prefix)
        try SoftHSM.makeToken(label: label, pin: pin)
        return try PKCS11Configuration(modulePath: try #require(SoftHSM.module), tokenLabel: label, pin: Secret(pinOverride ?? pin), keyLabel: key)
    }

    /// The same configuration with another PIN, token or key label.
    func variant(_ configuration: PKCS11Configuration, pin: String? = nil, token: String? = nil,
                 key: String? = nil) throws(PKCS11Error) -> PKCS11Configuration {
        try PKCS11Configuration(modulePath: configuration.modulePath, tokenLabel: token ?? configuration.tokenLabel,
                                pin: pin.map { Secret($0) } ?? configuration.pin, keyLabel: key ?? configuration.keyLabel)
    }

    @Test("a generated key seals and opens with its associated data; each seal has its own IV")
    func roundTrip() throws {
        let configuration = try token("round")
        let token = try PKCS11Token(configuration: configuration, requireKey: false)
        defer { token.close() }
        try token.generateKey(label: "master")
        let plaintext = Secret("workspace-key-\(UUID().uuidString)")
        let aad = Array("workspace=ws_1;field=kek".utf8)
        let sealed = try token.encrypt(plaintext: plaintext, aad: aad)
        #expect(sealed.count == plaintext.byteCount + PKCS11Token.overhead)
        #expect(try token.decrypt(sealed, aad: aad) == plaintext)
        let again = try token.encrypt(plaintext: plaintext, aad: aad)
        #expect(again != sealed)
        #expect(again.prefix(12) != sealed.prefix(12))
        #expect(try token.decrypt(again, aad: aad) == plaintext)
        // No associated data, a 32-byte key and a 64 KiB value.
        let key = Secret(bytes: (0..<32).map { UInt8($0) })
        #expect(try token.decrypt(try token.encrypt(plaintext: key, aad: []), aad: []) == key)
        let large = Secret(bytes: [UInt8](repeating: 0xA5, count: PKCS11Token.maxInputBytes))
        #expect(try token.decrypt(try token.encrypt(plaintext: large, aad: aad), aad: aad) == large)
        #expect(pkcs11Error { () throws(PKCS11Error) in try token.encrypt(plaintext: Secret(""), aad: aad) }?.code == "pkcs11_configuration")
    }

    @Test("other associated data, a flipped bit anywhere, a truncated or short value: decryption_failed")
    func tampering() throws {
        let configuration = try token("tamper")
        let token = try PKCS11Token(configuration: configuration, requireKey: false)
        defer { token.close() }
        try token.generateKey(label: "master")
        let aad = Array("credential=cr_1".utf8)
        let sealed = try token.encrypt(plaintext: Secret("sk-canary-plaintext-77"), aad: aad)
        var failures: [PKCS11Error?] = [pkcs11Error { () throws(PKCS11Error) in try token.decrypt(sealed, aad: Array("credential=cr_2".utf8)) },
                                        pkcs11Error { () throws(PKCS11Error) in try token.decrypt(sealed, aad: []) }]
        for index in [0, 11, 12, sealed.count - 17, sealed.count - 1] {
            var flipped = sealed
            flipped[index] ^= 0x01
            failures.append(pkcs11Error { () throws(PKCS11Error) in try token.decrypt(flipped, aad: aad) })
        }
        failures.append(pkcs11Error { () throws(PKCS11Error) in try token.decrypt(Array(sealed.dropLast()), aad: aad) })
        failures.append(pkcs11Error { () throws(PKCS11Error) in try token.decrypt(Array(sealed.prefix(27)), aad: aad) })
        for failure in failures {
            #expect(failure?.code == "pkcs11_decryption_failed", "\(String(describing: failure))")
            #expect(!"\(String(describing: failure))".contains("canary"))
        }
        // The session is still good after every refusal.
        #expect(try token.decrypt(sealed, aad: aad) == Secret("sk-canary-plaintext-77"))
    }

    @Test("the key is a sensitive, non-extractable token object: the token refuses to give its value")
    func notExtractable() throws {
        let configuration = try token("extract")
        let token = try PKCS11Token(configuration: configuration, requireKey: false)
        defer { token.close() }
        try token.generateKey(label: "master")
        let protection = try token.keyProtection()
        #expect(protection == PKCS11Token.KeyProtection(token: true, isPrivate: true, sensitive: true, extractable: false,
                                                        alwaysSensitive: true, neverExtractable: true))
        #expect(try token.keyValueRequestAnswer() == PKCS11ReturnValue(UInt(CKR_ATTRIBUTE_SENSITIVE)))
    }

    @Test("a restart (module finalized, initialized again) and a second session open by label what the first sealed")
    func restart() throws {
        let configuration = try token("restart")
        let first = try PKCS11Token(configuration: configuration, requireKey: false)
        try first.generateKey(label: "master")
        let sealed = try first.encrypt(plaintext: Secret("kek-1"), aad: [1, 2, 3])
        // While the first is open, a second token object (another session) opens it too.
        let second = try PKCS11Token(configuration: configuration)
        #expect(try second.decrypt(sealed, aad: [1, 2, 3]) == Secret("kek-1"))
        second.close()
        #expect(try first.decrypt(sealed, aad: [1, 2, 3]) == Secret("kek-1"))
        first.close()
        #expect(!first.isOpen)
        #expect(pkcs11Error { () throws(PKCS11Error) in try first.decrypt(sealed, aad: [1, 2, 3]) } == .closed)
        first.close()

        // The last user gone, the module was finalized; opening again initializes it and reads the token from its files.
        let reopened = try PKCS11Token(configuration: configuration)
        defer { reopened.close() }
        #expect(try reopened.decrypt(sealed, aad: [1, 2, 3]) == Secret("kek-1"))
        #expect(pkcs11Error { () throws(PKCS11Error) in try reopened.decrypt(sealed, aad: [1, 2, 4]) }?.code == "pkcs11_decryption_failed")
    }

    @Test("a wrong PIN, an unknown token, an unknown key, a label taken twice: each its own error")
    func refusals() throws {
        let configuration = try token("refuse")
        do {
            let setup = try PKCS11Token(configuration: configuration, requireKey: false)
            defer { setup.close() }
            try setup.generateKey(label: "master")
            #expect(pkcs11Error { () throws(PKCS11Error) in try setup.generateKey(label: "master") } == .keyLabelNotUnique(label: "master", count: 1))
        }
        #expect(pkcs11Error { () throws(PKCS11Error) in try PKCS11Token(configuration: try variant(configuration, pin: "wrong-pin")) } == .wrongPIN)
        #expect(pkcs11Error { () throws(PKCS11Error) in try PKCS11Token(configuration: try variant(configuration, pin: "1")) } == .wrongPIN)
        let unknownToken = SoftHSM.label("absent")
        #expect(pkcs11Error { () throws(PKCS11Error) in try PKCS11Token(configuration: try variant(configuration, token: unknownToken)) }
            == .tokenNotFound(label: unknownToken))
        #expect(pkcs11Error { () throws(PKCS11Error) in try PKCS11Token(configuration: try variant(configuration, key: "other")) }
            == .keyNotFound(label: "other"))
        // Opened for setup, the key is looked for at each use until it exists.
        let setup = try PKCS11Token(configuration: try variant(configuration, key: "later"), requireKey: false)
        defer { setup.close() }
        #expect(pkcs11Error { () throws(PKCS11Error) in try setup.encrypt(plaintext: Secret("x"), aad: []) } == .keyNotFound(label: "later"))
        try setup.generateKey(label: "later")
        #expect(try setup.decrypt(try setup.encrypt(plaintext: Secret("x"), aad: []), aad: []) == Secret("x"))
        // After all that, the right PIN still works (SoftHSM2 never locks the PIN).
        let right = try PKCS11Token(configuration: configuration)
        right.close()
    }

    @Test("a key whose attributes forbid encryption is key_not_usable; a session lost behind our back is device_gone")
    func unusableKeyAndLostSession() throws {
        let configuration = try token("unusable")
        let setup = try PKCS11Token(configuration: configuration, requireKey: false)
        try setup.generateKey(label: "no-encrypt", encrypt: false, decrypt: false)
        try setup.generateKey(label: "master")
        let sealed = try setup.encrypt(plaintext: Secret("kek"), aad: [])
        setup.close()

        let unusable = try PKCS11Token(configuration: try variant(configuration, key: "no-encrypt"))
        let refused = pkcs11Error { () throws(PKCS11Error) in try unusable.encrypt(plaintext: Secret("kek"), aad: []) }
        guard case .keyNotUsable(let label, let reason)? = refused else { Issue.record("\(String(describing: refused))"); return }
        #expect(label == "no-encrypt")
        #expect(reason.contains("CKR_KEY_FUNCTION_NOT_PERMITTED"))
        #expect(pkcs11Error { () throws(PKCS11Error) in try unusable.decrypt(sealed, aad: []) }?.code == "pkcs11_key_not_usable")
        unusable.close()

        let token = try PKCS11Token(configuration: configuration)
        token.loseSession()
        let gone = pkcs11Error { () throws(PKCS11Error) in try token.decrypt(sealed, aad: []) }
        #expect(gone?.code == "pkcs11_device_gone")
        #expect(gone?.isTransient == true)
        #expect("\(String(describing: gone))".contains("CKR_SESSION_HANDLE_INVALID"))
        token.close()
        let again = try PKCS11Token(configuration: configuration)
        defer { again.close() }
        #expect(try again.decrypt(sealed, aad: []) == Secret("kek"))
    }

    @Test("calls from many tasks at once are serialized on the one session")
    func concurrentCalls() async throws {
        let configuration = try token("parallel")
        let token = try PKCS11Token(configuration: configuration, requireKey: false)
        defer { token.close() }
        try token.generateKey(label: "master")
        let opened = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<32 {
                group.addTask {
                    let plaintext = Secret("secret-\(index)")
                    let aad = Array("row-\(index)".utf8)
                    return try token.decrypt(try token.encrypt(plaintext: plaintext, aad: aad), aad: aad) == plaintext
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(opened == 32)
    }

    @Test("the PIN and the plaintexts never appear in an error, a description or a log line")
    func canaries() throws {
        let logs = LogCapture()
        let configuration = try token("leak")
        let plaintext = Secret("plaintext-canary-51c9")
        var errors: [PKCS11Error?] = []
        let token = try PKCS11Token(configuration: configuration, requireKey: false, logger: logs.logger)
        try token.generateKey(label: "master")
        let sealed = try token.encrypt(plaintext: plaintext, aad: Array("aad".utf8))
        errors.append(pkcs11Error { () throws(PKCS11Error) in try token.decrypt(sealed, aad: Array("other".utf8)) })
        errors.append(pkcs11Error { () throws(PKCS11Error) in try token.generateKey(label: "master") })
        token.loseSession()
        errors.append(pkcs11Error { () throws(PKCS11Error) in try token.encrypt(plaintext: plaintext, aad: []) })
        token.close()
        errors.append(pkcs11Error { () throws(PKCS11Error) in try token.encrypt(plaintext: plaintext, aad: []) })
        for wrong in ["pin-canary-wrong", "\(pin)x"] {
            let other = try variant(configuration, pin: wrong)
            errors.append(pkcs11Error { () throws(PKCS11Error) in try PKCS11Token(configuration: other, logger: logs.logger) })
            #expect(!"\(other)".contains("canary"))
        }
        errors.append(pkcs11Error { () throws(PKCS11Error) in
            try PKCS11Token(configuration: try variant(configuration, token: "no-such-token"), logger: logs.logger)
        })
        errors.append(pkcs11Error { () throws(PKCS11Error) in
            try PKCS11Token(configuration: try variant(configuration, key: "no-such-key"), logger: logs.logger)
        })
        #expect(errors.allSatisfy { $0 != nil })
        let shown = errors.map { "\(String(describing: $0)) \(String(reflecting: $0))" }.joined(separator: "\n") + "\n" + logs.text
        #expect(shown.contains("pkcs11_wrong_pin"))
        for canary in ["canary-8d2f", "pin-canary", "plaintext-canary", "canary-51c9"] {
            #expect(!shown.contains(canary), "\(canary) in: \(shown)")
        }
    }
}
