/// The master keys Keywarden holds: exactly one active, any number decrypt-only.
public struct Keyring: Sendable {
    public private(set) var keys: [MasterKey]

    /// Builds a keyring, checking that exactly one key is active and ids are unique.
    public init(keys: [MasterKey]) throws(KeyringError) {
        guard keys.filter({ $0.state == .active }).count == 1 else { throw .noActiveKey }
        var seen = Set<String>()
        for key in keys where !seen.insert(key.id).inserted {
            throw .fileMalformed(path: "(keyring)", detail: "master key \(key.id) appears twice")
        }
        self.keys = keys
    }

    /// A keyring of one new random active key.
    public static func generate() -> Keyring {
        // One active key always satisfies the invariant.
        guard let keyring = try? Keyring(keys: [MasterKey.generate()]) else {
            preconditionFailure("a keyring of one active key is valid")
        }
        return keyring
    }

    /// The key that wraps new data keys.
    public var active: MasterKey {
        // The initializer guarantees exactly one active key and mutations keep it.
        guard let key = keys.first(where: { $0.state == .active }) else {
            preconditionFailure("a keyring always has an active key")
        }
        return key
    }

    /// The key with this id, active or decrypt-only.
    public func key(id: String) -> MasterKey? {
        keys.first { $0.id == id }
    }

    /// The key whose id has these UTF-8 bytes (read from a ciphertext header without building a string).
    func key(idBytes: ArraySlice<UInt8>) -> MasterKey? {
        keys.first { $0.idBytes.elementsEqual(idBytes) }
    }

    /// The ids of keys kept only to open old data keys.
    public var decryptOnlyIDs: [String] {
        keys.filter { $0.state == .decryptOnly }.map(\.id)
    }

    /// Adds `key` as the active key; the previous active key becomes decrypt-only.
    public mutating func promote(_ key: MasterKey) {
        var promoted = key
        promoted.state = .active
        keys = keys.filter { $0.id != key.id }.map { existing in
            var demoted = existing
            demoted.state = .decryptOnly
            return demoted
        } + [promoted]
    }

    /// Removes a decrypt-only key.
    public mutating func retire(id: String) throws(KeyringError) {
        guard let key = key(id: id) else { throw .unknownKey(id: id) }
        guard key.state == .decryptOnly else {
            throw .notRotatable(reason: "master key \(id) is the active key and cannot be retired")
        }
        keys.removeAll { $0.id == id }
    }
}
