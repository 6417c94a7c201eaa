import Foundation

extension ProviderCatalog {
    /// The name SwiftPM gives the resource bundle that carries `catalog.json`.
    public static let resourceBundleName = "Keywarden_KeywardenCore.resources"

    /// Where the bundled catalog is looked for: beside the running executable (how `swift run`,
    /// `swift test` and a copied release build all lay it out).
    public static func bundledCatalogCandidates(executableDirectory: URL? = nil) -> [URL] {
        var directories: [URL] = []
        if let executableDirectory { directories.append(executableDirectory) }
        directories.append(Bundle.main.bundleURL)
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            directories.append(executable.deletingLastPathComponent())
        }
        return directories.map {
            $0.appendingPathComponent(resourceBundleName).appendingPathComponent("catalog.json")
        }
    }

    /// Loads the catalog shipped with Keywarden, or the one at `file` when given.
    public static func load(file: URL? = nil) throws -> ProviderCatalog {
        let url: URL
        if let file {
            url = file
        } else {
            let candidates = bundledCatalogCandidates()
            guard let found = candidates.first(where: { FileManager.default.isReadableFile(atPath: $0.path) }) else {
                throw CatalogError(
                    entry: nil,
                    problem: "the bundled catalog was not found (looked in \(candidates.map(\.path).joined(separator: ", "))); keep \(resourceBundleName) beside the keywarden binary or set KEYWARDEN_CATALOG_FILE"
                )
            }
            url = found
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw CatalogError(entry: nil, problem: "cannot read \(url.path): \(error.localizedDescription)")
        }
        return try ProviderCatalog(json: data)
    }
}
