import Foundation

/// Where the keyring comes from, in order of precedence:
/// `KEYWARDEN_MASTER_KEY` (with `KEYWARDEN_MASTER_KEY_PREVIOUS`), then `KEYWARDEN_MASTER_KEY_FILE`,
/// then the keyring file that `init` generates in the data directory.
public enum KeyringSource: Sendable, CustomStringConvertible {
    /// An active base64 key and, for a rotation, the previous keys (decrypt-only).
    case environment(active: String, previous: [String])
    /// A keyring document, or a file holding one base64 key.
    case file(URL, generated: Bool)

    /// The variable that holds the active master key.
    public static let masterKeyVariable = "KEYWARDEN_MASTER_KEY"
    /// A comma-separated list of earlier master keys, kept decrypt-only during a rotation.
    public static let previousKeysVariable = "KEYWARDEN_MASTER_KEY_PREVIOUS"
    /// The path of a keyring file (or of a file with one base64 key).
    public static let masterKeyFileVariable = "KEYWARDEN_MASTER_KEY_FILE"
    /// The name of the generated keyring file in the data directory.
    public static let defaultFileName = "keyring.json"

    /// Chooses the source from configuration.
    public static func resolve(environment: [String: String], dataDirectory: URL) -> KeyringSource {
        if let key = environment[masterKeyVariable], !key.isEmpty {
            let previous = Self.list(environment[previousKeysVariable])
            return .environment(active: key, previous: previous)
        }
        if let path = environment[masterKeyFileVariable], !path.isEmpty {
            return .file(URL(fileURLWithPath: path), generated: false)
        }
        return .file(dataDirectory.appendingPathComponent(defaultFileName), generated: true)
    }

    /// Loads the keyring.
    public func load() throws(KeyringError) -> Keyring {
        switch self {
        case .environment(let active, let previous):
            var keys = [try MasterKey(base64: active, state: .active)]
            for text in previous {
                let key = try MasterKey(base64: text, state: .decryptOnly)
                if key.id != keys[0].id { keys.append(key) }
            }
            return try Keyring(keys: keys)
        case .file(let url, _):
            return try KeyringFile(url: url).read()
        }
    }

    /// The keyring file, when the keyring lives in one.
    public var file: KeyringFile? {
        if case .file(let url, _) = self { return KeyringFile(url: url) }
        return nil
    }

    /// Whether Keywarden may create this keyring (only the generated file in the data directory).
    public var isGenerated: Bool {
        if case .file(_, true) = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .environment: return "\(Self.masterKeyVariable)"
        case .file(let url, true): return url.path
        case .file(let url, false): return "\(Self.masterKeyFileVariable) (\(url.path))"
        }
    }
}

extension KeyringSource {
    /// A comma-separated setting (earlier keys, key labels, key ids), its items trimmed, empty ones dropped.
    static func list(_ text: String?) -> [String] {
        (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
