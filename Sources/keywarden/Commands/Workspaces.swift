import KeywardenApp
import ArgumentParser
import KeywardenStore

/// `keywarden workspaces create|list`: the same service the API uses, on the data directory.
struct Workspaces: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create and list workspaces.", subcommands: [Create.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a workspace and print its id.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The workspace's name.") var name: String
        @Flag(help: "The plan does not allow bringing its own keys.") var noByok = false
        @Flag(help: "At most one provider may be active at a time.") var exclusive = false

        func run() async throws {
            try await reportingFailures {
                let workspace = try await global.withStore { app in
                    try await app.workspaceService.create(name: name, byokAllowed: !noByok, exclusive: exclusive, actor: "cli")
                }
                say(workspace.id)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List workspaces.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await reportingFailures {
                let workspaces = try await global.withStore { app in try await app.workspaceService.list() }
                say(TextTable.render(
                    header: ["ID", "NAME", "BYOK", "EXCLUSIVE", "CREATED"],
                    rows: workspaces.map { [$0.id, $0.name, $0.byokAllowed ? "yes" : "no", $0.exclusive ? "yes" : "no", $0.createdAt] }
                ))
            }
        }
    }
}
