import SQLKit

/// One versioned change to the schema, applied once, inside a transaction.
public struct Migration: Sendable {
    /// Strictly increasing from 1.
    public let version: Int
    public let name: String
    public let apply: @Sendable (any SQLDatabase) async throws -> Void

    public init(version: Int, name: String, apply: @escaping @Sendable (any SQLDatabase) async throws -> Void) {
        self.version = version
        self.name = name
        self.apply = apply
    }
}
