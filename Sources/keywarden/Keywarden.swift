import ArgumentParser

/// The `keywarden` command: one binary for the server and its operations.
@main
struct Keywarden: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keywarden",
        abstract: "A self-hosted vault and gateway for AI provider keys.",
        subcommands: [
            Serve.self, Init.self, Providers.self, Workspaces.self, Keys.self, Tokens.self, RotateMasterKey.self, Audit.self, Usage.self, Routes.self, MigrateStore.self,
        ],
        defaultSubcommand: nil
    )
}
