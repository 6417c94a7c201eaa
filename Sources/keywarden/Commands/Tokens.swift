import ArgumentParser
import KeywardenCore
import KeywardenApp
import KeywardenStore

/// `keywarden tokens create`: service tokens (workspace or platform) and platform-admin tokens.
struct Tokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Issue tokens.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue a token and print it once.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "A name that says what the token is for.") var name: String
        @Option(help: "Bind a service token to this workspace (otherwise it is platform-bound).") var workspace: String?
        @Option(parsing: .singleValue, help: "A permission of the service token (repeatable), e.g. gateway.use.") var permission: [String] = []
        @Flag(help: "Issue a platform-admin token instead of a service token.") var admin = false

        func run() async throws {
            try await reportingFailures {
                let permissions = try permission.map { text in
                    guard let permission = Permission(rawValue: text) else { throw ValidationError("unknown permission '\(text)'") }
                    return permission
                }
                let value = try await global.withStore { app -> String in
                    if admin {
                        guard workspace == nil, permissions.isEmpty else { throw ValidationError("--admin takes no --workspace or --permission") }
                        return try await app.engine.transaction { db in
                            try await app.issueToken(name: name, kind: .platformAdmin, actor: "cli", on: db).0.value
                        }
                    }
                    let (_, token) = try await app.workspaceService.createServiceToken(
                        workspaceID: workspace, name: name, permissions: permissions, mayGrantReveal: true, actor: "cli"
                    )
                    return token.value
                }
                say("Token (shown only this once; store it now):")
                say("  \(value)")
            }
        }
    }
}
