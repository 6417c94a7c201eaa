import ArgumentParser
import Foundation
import KeywardenCore
import KeywardenApp
import KeywardenStore

/// `keywarden keys add|list|rm|activate|deactivate`: workspace keys and platform cards, through the
/// services the API uses. Keys are read from a file, standard input or a silent prompt, never from
/// an argument (arguments end up in shell history and `ps`).
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage stored keys.",
        subcommands: [Add.self, List.self, Remove.self, Activate.self, Deactivate.self, Rotate.self, Lifecycle.self]
    )

    /// Where a key lives: a workspace, or the platform's card.
    struct Target: ParsableArguments {
        @Option(help: "The workspace id.") var workspace: String?
        @Flag(help: "The platform's own key (its provider card) instead of a workspace key.") var platform = false

        func validate() throws {
            guard (workspace != nil) != platform else { throw ValidationError("give exactly one of --workspace or --platform") }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Store a key (read from --api-key-file, standard input, or a prompt).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var target: Target
        @Option(help: "The provider id (see `keywarden providers list`).") var provider: String
        @Option(help: "The key's description (workspace keys).") var description: String?
        @Option(help: "A file holding the key.") var apiKeyFile: String?
        @Option(parsing: .singleValue, help: "An extra as field=value (repeatable), e.g. organization_id=org-123.") var extra: [String] = []
        @Option(help: "primary, fallback or pool.") var role: String?
        @Option(help: "The default model.") var defaultModel: String?
        @Flag(help: "Store the workspace key inactive.") var inactive = false
        @Flag(help: "In exclusive mode, deactivate the other active provider.") var `switch` = false

        func run() async throws {
            try await reportingFailures {
                var extras: [String: Secret] = [:]
                for pair in extra {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2 else { throw ValidationError("--extra takes field=value, got '\(pair)'") }
                    extras[String(parts[0])] = Secret(String(parts[1]))
                }
                let role = try role.map { text in
                    guard let role = CredentialRole(rawValue: text) else { throw ValidationError("--role is primary, fallback or pool") }
                    return role
                }
                let key = Secret(try SecretInput.read(file: apiKeyFile, prompt: "API key for \(provider): "))
                try await global.withStore { app in
                    if target.platform {
                        let card = try await app.platformCards.save(provider, PlatformCardUpdate(apiKey: key, extras: extras, defaultModel: defaultModel), actor: "cli")
                        say("\(card.provider.displayName) settings saved (key \(card.credential?.hint ?? "-")).")
                    } else if let workspace = target.workspace {
                        guard let description else { throw ValidationError("--description is required for a workspace key") }
                        let details = try await app.keys.create(workspaceID: workspace, NewKeyRequest(
                            providerID: provider, description: description, apiKey: key, extras: extras,
                            defaultModel: defaultModel, role: role, active: !inactive
                        ), switchExclusive: `switch`, actor: "cli")
                        say("API key created successfully: \(details.credential.id) (\(details.credential.hint), \(details.credential.role.rawValue))")
                    }
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (masked).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var target: Target
        @Option(help: "Only descriptions containing this text.") var search: String?
        @Option(help: "Only this provider.") var provider: String?

        func run() async throws {
            try await reportingFailures {
                try await global.withStore { app in
                    if target.platform {
                        let (cards, stats) = try await app.platformCards.cards()
                        say(TextTable.render(
                            header: ["PROVIDER", "KEY", "STATUS", "ACTIVE", "READY", "DEFAULT MODEL"],
                            rows: cards.map { [$0.provider.id, $0.hasKey ? ($0.credential?.hint ?? "") : "No key", $0.status.rawValue,
                                               $0.state.active ? "yes" : "no", $0.ready ? "yes" : "no", $0.state.defaultModel ?? "-"] }
                        ))
                        say("Providers \(stats.providers) · Active \(stats.active) · Ready \(stats.ready) · No key set \(stats.noKey)")
                    } else if let workspace = target.workspace {
                        var rows: [[String]] = []
                        var page = 1
                        while true {
                            let (items, total) = try await app.keys.list(workspaceID: workspace, query: CredentialQuery(
                                search: search, providerIDs: provider.map { [$0] }, page: page, perPage: Pagination.maximumPerPage
                            ))
                            rows += items.map { d in
                                [d.credential.id, d.credential.providerID, d.credential.description, d.hasKey ? d.credential.hint : "No key",
                                 d.status.rawValue, d.credential.role.rawValue, d.credential.active ? "yes" : "no"]
                            }
                            if rows.count >= total || items.isEmpty { break }
                            page += 1
                        }
                        say(TextTable.render(header: ["ID", "PROVIDER", "DESCRIPTION", "KEY", "STATUS", "ROLE", "ACTIVE"], rows: rows))
                    }
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete a workspace key.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The workspace id.") var workspace: String
        @Argument(help: "The key id.") var key: String

        func run() async throws {
            try await reportingFailures {
                try await global.withStore { app in try await app.keys.delete(workspaceID: workspace, keyID: key, actor: "cli") }
                say("API key deleted successfully")
            }
        }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Activate a workspace key, or a platform card with --platform --provider.")
        @OptionGroup var toggle: Toggle
        @Flag(help: "In exclusive mode, deactivate the other active provider.") var `switch` = false

        func run() async throws { try await toggle.run(active: true, switchExclusive: `switch`) }
    }

    struct Deactivate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deactivate a workspace key, or a platform card with --platform --provider.")
        @OptionGroup var toggle: Toggle

        func run() async throws { try await toggle.run(active: false, switchExclusive: false) }
    }

    /// What activate and deactivate share: the target and the one call each makes.
    struct Toggle: ParsableArguments {
        @OptionGroup var global: GlobalOptions
        @OptionGroup var target: Target
        @Option(help: "The provider (with --platform).") var provider: String?
        @Argument(help: "The key id (with --workspace).") var key: String?

        func run(active: Bool, switchExclusive: Bool) async throws {
            try await reportingFailures {
                try await global.withStore { app in
                    if target.platform {
                        guard let provider else { throw ValidationError("--provider is required with --platform") }
                        let card = active
                            ? try await app.platformCards.activate(provider, actor: "cli")
                            : try await app.platformCards.deactivate(provider, actor: "cli")
                        say("\(card.provider.displayName) \(active ? "activated" : "deactivated").")
                    } else if let workspace = target.workspace {
                        guard let key else { throw ValidationError("give the key id") }
                        if active {
                            _ = try await app.keys.activate(workspaceID: workspace, keyID: key, switchExclusive: switchExclusive, actor: "cli")
                        } else {
                            _ = try await app.keys.deactivate(workspaceID: workspace, keyID: key, actor: "cli")
                        }
                        say("API key \(active ? "activated" : "deactivated")")
                    }
                }
            }
        }
    }
}
