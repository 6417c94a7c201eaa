import Foundation
import KeywardenCore

/// Which PKCS#11 module, token and key to use, and the user PIN that unlocks the token.
///
/// Its description shows the module, token and key; the PIN is a ``Secret`` and never shown.
public struct PKCS11Configuration: Sendable, CustomStringConvertible {
    /// The module: the path of the vendor's PKCS#11 shared library (`/usr/lib/softhsm/libsofthsm2.so`).
    public let modulePath: String
    /// The token's label (`CKA_LABEL` of the token, without the padding blanks).
    public let tokenLabel: String
    /// The user PIN.
    public let pin: Secret
    /// The label (`CKA_LABEL`) of the AES secret key on the token.
    public let keyLabel: String

    /// The environment variables ``fromEnvironment(_:)`` reads.
    public enum Variable {
        /// The module's path.
        public static let module = "KEYWARDEN_MASTER_KEY_PKCS11_MODULE"
        /// The token's label.
        public static let token = "KEYWARDEN_MASTER_KEY_PKCS11_TOKEN"
        /// A file holding the user PIN (one trailing newline is ignored).
        public static let pinFile = "KEYWARDEN_MASTER_KEY_PKCS11_PIN_FILE"
        /// The key's label.
        public static let keyLabel = "KEYWARDEN_MASTER_KEY_PKCS11_KEY_LABEL"
    }

    /// The longest PIN file read: PINs are short, so anything longer is not a PIN file.
    static let maxPINFileBytes = 4096

    /// A configuration as given. Throws ``PKCS11Error/configuration(setting:problem:)`` for an empty value, a label
    /// longer than a token label's 32 bytes, or a relative module path.
    public init(modulePath: String, tokenLabel: String, pin: Secret, keyLabel: String) throws(PKCS11Error) {
        try self.init(modulePath: modulePath, tokenLabel: tokenLabel, pin: pin, keyLabel: keyLabel, names: .parameters)
    }

    /// Reads the variables from `environment` (pass `ProcessInfo.processInfo.environment`):
    /// `KEYWARDEN_MASTER_KEY_PKCS11_MODULE`, `KEYWARDEN_MASTER_KEY_PKCS11_TOKEN`, `KEYWARDEN_MASTER_KEY_PKCS11_PIN_FILE`
    /// (the PIN is read from that file now) and `KEYWARDEN_MASTER_KEY_PKCS11_KEY_LABEL`.
    ///
    /// An empty variable counts as unset. A missing or invalid one, or a PIN file that cannot be read or is empty, throws
    /// ``PKCS11Error/configuration(setting:problem:)`` naming it.
    public static func fromEnvironment(_ environment: [String: String]) throws(PKCS11Error) -> PKCS11Configuration {
        func required(_ name: String) throws(PKCS11Error) -> String {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else {
                throw .configuration(setting: name, problem: "is not set")
            }
            return text
        }
        let module = try required(Variable.module)
        let token = try required(Variable.token)
        let pinFile = try required(Variable.pinFile)
        let keyLabel = try required(Variable.keyLabel)
        let pin = try readPIN(file: pinFile, setting: Variable.pinFile)
        return try PKCS11Configuration(modulePath: module, tokenLabel: token, pin: pin, keyLabel: keyLabel, names: .environment)
    }

    /// The PIN in `file`: its bytes without a trailing newline (`\n` or `\r\n`). The file's contents never appear in an
    /// error; a missing, unreadable, over-long (> 4 KiB) or empty file is a ``PKCS11Error/configuration(setting:problem:)``.
    public static func readPIN(file path: String, setting: String = Variable.pinFile) throws(PKCS11Error) -> Secret {
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "not readable" : "no such file"
            throw .configuration(setting: setting, problem: "names a file that cannot be read (\(path): \(reason))")
        }
        defer { try? handle.close() }
        var bytes: [UInt8]
        do {
            bytes = Array(try handle.read(upToCount: maxPINFileBytes + 1) ?? Data())
        } catch {
            throw .configuration(setting: setting, problem: "names a file that cannot be read (\(path))")
        }
        guard bytes.count <= maxPINFileBytes else {
            throw .configuration(setting: setting, problem: "names a file over \(maxPINFileBytes) bytes (\(path)): not a PIN file")
        }
        if bytes.last == 0x0A { bytes.removeLast() }
        if bytes.last == 0x0D { bytes.removeLast() }
        guard !bytes.isEmpty else { throw .configuration(setting: setting, problem: "names an empty file (\(path))") }
        return Secret(bytes: bytes)
    }

    /// What each setting is called in errors: the environment variable or the parameter.
    struct Names {
        var module: String
        var token: String
        var pin: String
        var keyLabel: String

        static let parameters = Names(module: "modulePath", token: "tokenLabel", pin: "pin", keyLabel: "keyLabel")
        static let environment = Names(module: Variable.module, token: Variable.token, pin: Variable.pinFile, keyLabel: Variable.keyLabel)
    }

    private init(modulePath: String, tokenLabel: String, pin: Secret, keyLabel: String, names: Names) throws(PKCS11Error) {
        guard modulePath.hasPrefix("/") else {
            throw .configuration(setting: names.module, problem: "must be the absolute path of the PKCS#11 library (a .so)")
        }
        guard !tokenLabel.isEmpty, tokenLabel.utf8.count <= 32 else {
            throw .configuration(setting: names.token, problem: "must be a token label of 1 to 32 bytes")
        }
        guard !pin.isEmpty else { throw .configuration(setting: names.pin, problem: "is empty") }
        guard !keyLabel.isEmpty, keyLabel.utf8.count <= 256 else {
            throw .configuration(setting: names.keyLabel, problem: "must be a key label of 1 to 256 bytes")
        }
        self.modulePath = modulePath
        self.tokenLabel = tokenLabel
        self.pin = pin
        self.keyLabel = keyLabel
    }

    /// The key, token and module; the PIN shown as `<redacted>`.
    public var description: String {
        "PKCS#11 key '\(keyLabel)' on token '\(tokenLabel)' through \(modulePath) (PIN \(Secret.redacted))"
    }
}
