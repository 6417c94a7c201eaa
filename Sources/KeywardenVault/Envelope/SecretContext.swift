import KeywardenCore

/// Where a sealed secret lives; bound to its ciphertext as associated data, so a ciphertext
/// copied to another row, field or workspace does not open. Not secret: never put a secret in it.
public struct SecretContext: Sendable, Hashable, CustomStringConvertible {
    public let scope: Scope
    /// The id of the row that owns the secret (a credential id, a webhook id).
    public let ownerID: String
    /// The field of that row (`api_key`, `extras`, `signing_secret`).
    public let field: String

    public init(scope: Scope, ownerID: String, field: String) {
        self.scope = scope
        self.ownerID = ownerID
        self.field = field
    }

    public var description: String { "\(scope)/\(ownerID)/\(field)" }

    /// Length-prefixed encoding of a purpose label and the context, so no two contexts share bytes.
    func associatedData(purpose: StaticString, extra: String? = nil) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64 + ownerID.utf8.count + field.utf8.count + (extra?.utf8.count ?? 0) + (scope.workspaceID?.utf8.count ?? 0))
        purpose.withUTF8Buffer { bytes.appendLengthPrefixed($0) }
        switch scope {
        case .platform:
            bytes.appendLengthPrefixed("platform".utf8)
        case .workspace(let id):
            // The same bytes as `scope.description` ("workspace:<id>"), without building the string.
            let prefix = "workspace:".utf8
            bytes.appendLength(prefix.count + id.utf8.count)
            bytes.append(contentsOf: prefix)
            bytes.append(contentsOf: id.utf8)
        }
        bytes.appendLengthPrefixed(ownerID.utf8)
        bytes.appendLengthPrefixed(field.utf8)
        if let extra { bytes.appendLengthPrefixed(extra.utf8) }
        return bytes
    }
}

extension [UInt8] {
    mutating func appendLength(_ length: Int) {
        let n = UInt32(truncatingIfNeeded: length)
        append(UInt8(truncatingIfNeeded: n >> 24))
        append(UInt8(truncatingIfNeeded: n >> 16))
        append(UInt8(truncatingIfNeeded: n >> 8))
        append(UInt8(truncatingIfNeeded: n))
    }

    mutating func appendLengthPrefixed(_ part: some Collection<UInt8>) {
        appendLength(part.count)
        append(contentsOf: part)
    }
}
