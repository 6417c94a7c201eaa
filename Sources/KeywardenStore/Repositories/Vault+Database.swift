import KeywardenCore
import KeywardenVault
import SQLKit

extension Vault {
    /// Seals `secret` under its scope's key as `db` sees it (made in `db`'s transaction if the scope has none).
    public func seal(_ secret: Secret, in context: SecretContext, on db: any SQLDatabase) async throws -> SealedSecret {
        try await seal(secret, in: context, keys: ScopeKeyRepository().directory(on: db))
    }

    /// Opens `sealed`, reading its scope key (when not held) on `db`.
    public func open(_ sealed: SealedSecret, in context: SecretContext, on db: any SQLDatabase) async throws -> Secret {
        try await open(sealed, in: context, keys: ScopeKeyRepository().directory(on: db))
    }
}
