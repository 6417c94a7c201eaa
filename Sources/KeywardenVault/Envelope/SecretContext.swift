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
        bytes.reserveCapacity(96)
        func append(_ part: some Sequence<UInt8>) {
            let start = bytes.count
            bytes.append(contentsOf: [0, 0, 0, 0])
            bytes.append(contentsOf: part)
            let length = UInt32(bytes.count - start - 4)
            bytes[start] = UInt8(truncatingIfNeeded: length >> 24)
            bytes[start + 1] = UInt8(truncatingIfNeeded: length >> 16)
            bytes[start + 2] = UInt8(truncatingIfNeeded: length >> 8)
            bytes[start + 3] = UInt8(truncatingIfNeeded: length)
        }
        append(UnsafeBufferPointer(start: purpose.utf8Start, count: purpose.utf8CodeUnitCount))
        append(scope.description.utf8)
        append(ownerID.utf8)
        append(field.utf8)
        if let extra { append(extra.utf8) }
        return bytes
    }
}
