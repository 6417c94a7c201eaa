import ArgumentParser
import KeywardenCore
import KeywardenApp
import KeywardenStore

/// `keywarden routes list|set|delete`: chat routes of the platform or of a workspace, through the service the API uses
/// (validated against the catalog, audited as route.set / route.removed).
struct Routes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage chat routes (a call names one as \"model\": \"route:<name>\").",
        subcommands: [List.self, Save.self, Delete.self]
    )

    /// Whose routes: a workspace's, or (without --workspace) the platform's.
    struct Owner: ParsableArguments {
        @Option(help: "The workspace id (omit for the platform's routes).") var workspace: String?

        var owner: RouteService.Owner { workspace.map { .workspace($0) } ?? .platform }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List routes and their steps.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var target: Owner

        func run() async throws {
            try await reportingFailures {
                let routes = try await global.withStore { app in try await app.routes.list(target.owner, principal: .commandLine) }
                say(TextTable.render(
                    header: ["NAME", "STEPS"],
                    rows: routes.map { [$0.name, Routes.describe($0.steps)] }
                ))
            }
        }
    }

    struct Save: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Create or replace a route.",
            discussion: "Steps are tried in order, e.g. `keywarden routes set support anthropic/claude-opus-4-7 openai/gpt-5.4-mini --workspace ws_123`."
        )
        @OptionGroup var global: GlobalOptions
        @OptionGroup var target: Owner
        @Argument(help: "The route's name (lowercase letters, digits, '-' or '_').") var name: String
        @Argument(help: "The steps in order, each provider/model (the model may itself contain '/').") var steps: [String] = []

        func run() async throws {
            try await reportingFailures {
                let parsed = try steps.map { text in
                    let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
                    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                        throw ValidationError("a step is provider/model, e.g. openai/gpt-5.4-mini; got '\(text)'")
                    }
                    return ChatRoute.Step(provider: String(parts[0]), model: String(parts[1]))
                }
                let route = try await global.withStore { app in
                    try await app.routes.set(target.owner, name: name, steps: parsed, principal: .commandLine)
                }
                say("Route \(route.name) saved: \(Routes.describe(route.steps))")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a route.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var target: Owner
        @Argument(help: "The route's name.") var name: String

        func run() async throws {
            try await reportingFailures {
                try await global.withStore { app in try await app.routes.delete(target.owner, name: name, principal: .commandLine) }
                say("Route \(name) deleted")
            }
        }
    }

    /// Steps as the list shows them: `anthropic/claude-opus-4-7 > openai/gpt-5.4-mini` (as the audit log does).
    static func describe(_ steps: [ChatRoute.Step]) -> String {
        steps.map { "\($0.provider)/\($0.model)" }.joined(separator: " > ")
    }
}

extension Principal {
    /// The operator at the command line: whoever can open the data directory operates the whole platform, as every
    /// other command does (they act as "cli"). Services that authorize a principal themselves get this platform admin;
    /// it is recorded in the audit log as `token:cli`.
    static let commandLine = Principal(tokenID: "cli", kind: .platformAdmin, workspaceID: nil, role: nil, permissions: [], name: "cli")
}
