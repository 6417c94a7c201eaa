import KeywardenApp
import KeywardenCore
import ArgumentParser
import KeywardenStore

/// `keywarden workspaces create|list|set-platform-fallback`: the same service the API uses, on the data directory.
struct Workspaces: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create and list workspaces.",
                                                    subcommands: [Create.self, List.self, SetPlatformFallback.self, RotateKey.self])

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

    /// A new key for one workspace, its secrets' data keys moved to it, its older key deleted (audited as
    /// workspace.key_rotated). The master key and the other workspaces are not touched.
    struct RotateKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-key", abstract: "Rotate one workspace's key: its secrets' data keys move to a new one."
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The workspace id.") var workspace: String

        func run() async throws {
            try await reportingFailures {
                let report = try await global.withStore { app in try await app.workspaceKeyRotation.run(workspaceID: workspace, actor: "cli") }
                say("Workspace \(workspace) now seals under \(report.newKeyID): \(report.rewrapped) data key(s) moved"
                    + (report.retired.isEmpty ? "." : "; retired \(report.retired.joined(separator: ", ")).")
                    + (report.unreadable > 0 ? " \(report.unreadable) secret(s) open under no key and were left as they are." : ""))
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
                    header: ["ID", "NAME", "BYOK", "EXCLUSIVE", "PLATFORM FALLBACK", "CREATED"],
                    rows: workspaces.map {
                        [$0.id, $0.name, $0.byokAllowed ? "yes" : "no", $0.exclusive ? "yes" : "no", $0.platformFallback?.rawValue ?? "plan", $0.createdAt]
                    }
                ))
            }
        }
    }

    /// Who pays when a workspace's own keys cannot serve: the platform's money, set as a platform admin would (audited as
    /// workspace.updated).
    struct SetPlatformFallback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-platform-fallback",
            abstract: "Set when the platform's keys stand in for a workspace's own keys.",
            discussion: """
            never: its own keys, or an error. on_failure: when its own keys fail, not when their budget is spent. \
            on_failure_or_budget: also when their budget is spent (the platform pays). plan: back to its plan's setting, \
            else the platform's default. E.g. `keywarden workspaces set-platform-fallback ws_123 never`.
            """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The workspace id.") var workspace: String
        @Argument(help: "never, on_failure, on_failure_or_budget, or plan (clears the workspace's own).") var value: String

        func run() async throws {
            try await reportingFailures {
                let fallback: PlatformFallback?
                if value == "plan" {
                    fallback = nil
                } else if let parsed = PlatformFallback(rawValue: value) {
                    fallback = parsed
                } else {
                    throw KeywardenError.invalid("platform_fallback", "platform_fallback is never, on_failure, on_failure_or_budget or plan; got '\(value)'.")
                }
                let (effective, source) = try await global.withStore { app in
                    let updated = try await app.workspaceService.update(workspace, WorkspaceChanges(platformFallback: .some(fallback)), actor: "cli")
                    if let own = updated.platformFallback { return (own, "set for this workspace") }
                    if let name = updated.plan, let planned = try await app.plans.find(name)?.platformFallback { return (planned, "from plan \(name)") }
                    return (app.store.configuration.platformFallback, "the platform's default")
                }
                say("Workspace \(workspace): platform_fallback \(effective.rawValue) (\(source)). \(effective.explanation)")
            }
        }
    }
}
