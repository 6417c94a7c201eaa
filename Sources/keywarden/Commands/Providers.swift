import ArgumentParser
import Foundation
import KeywardenCore
import KeywardenServer

/// `keywarden providers list`: the catalog this build ships (with any upstream overrides).
struct Providers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect the provider catalog.",
        subcommands: [List.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the providers of the catalog.")

        @Flag(name: .long, help: "Print JSON instead of a table.")
        var json = false

        func run() async throws {
            try await reportingFailures {
                let catalog = try RuntimeConfiguration.catalog(environment: ProcessInfo.processInfo.environment)
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                    say(String(decoding: try encoder.encode(catalog.providers), as: UTF8.self))
                    return
                }
                let rows = catalog.providers.map { p in
                    [p.id, p.displayName, p.category.rawValue, p.defaultModel ?? "-", "\(p.models.count)",
                     p.verification.available ? "\(p.verification.method ?? "") \(p.verification.path ?? "")" : "not available"]
                }
                say(TextTable.render(header: ["ID", "NAME", "CATEGORY", "DEFAULT MODEL", "MODELS", "VERIFICATION"], rows: rows))
            }
        }
    }
}
