import Foundation
import KeywardenCore
import KeywardenStore
import KeywardenVault

/// Reads Keywarden's configuration from the command line and the environment.
public enum RuntimeConfiguration {
    /// The data directory when neither `--data` nor `KEYWARDEN_DATA` is given.
    public static let defaultDataDirectory = "./keywarden-data"
    public static let dataVariable = "KEYWARDEN_DATA"
    public static let catalogFileVariable = "KEYWARDEN_CATALOG_FILE"

    /// The data directory: `--data`, else `KEYWARDEN_DATA`, else `./keywarden-data`.
    public static func dataDirectory(option: String?, environment: [String: String]) -> URL {
        let path = option ?? environment[dataVariable].flatMap { $0.isEmpty ? nil : $0 } ?? defaultDataDirectory
        return URL(fileURLWithPath: path).standardizedFileURL
    }

    /// The catalog: the bundled one (or `KEYWARDEN_CATALOG_FILE`), with `KEYWARDEN_UPSTREAM_<ID>` overrides applied.
    public static func catalog(environment: [String: String]) throws -> ProviderCatalog {
        let file = environment[catalogFileVariable].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
        return try ProviderCatalog.load(file: file).applyingUpstreamOverrides(from: environment)
    }

    /// Everything the store needs.
    public static func store(dataOption: String?, environment: [String: String]) throws -> StoreConfiguration {
        let directory = dataDirectory(option: dataOption, environment: environment)
        return StoreConfiguration(
            dataDirectory: directory,
            keyringSource: KeyringSource.resolve(environment: environment, dataDirectory: directory),
            catalog: try catalog(environment: environment)
        )
    }
}
