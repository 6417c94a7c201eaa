import ArgumentParser
import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenServer
import KeywardenStore

extension Keys {
    /// `keywarden keys rotate stage|test|promote|finish|cancel`: the guided rotation of a key under its stable id.
    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rotate a key under its id: stage the new secret, test it, promote it (the old one stays its fallback for a grace period), finish.",
            subcommands: [Stage.self, Test.self, Promote.self, Finish.self, Cancel.self, Status.self]
        )

        /// The key a rotation step is about: `--workspace W KEY` or `--platform --provider P`.
        struct KeyArguments: ParsableArguments {
            @OptionGroup var global: GlobalOptions
            @OptionGroup var target: Target
            @Option(help: "The provider (with --platform).") var provider: String?
            @Argument(help: "The key id (with --workspace).") var key: String?

            func reference() throws -> KeyRotationService.Reference {
                if target.platform {
                    guard let provider else { throw ValidationError("--provider is required with --platform") }
                    return .platform(providerID: provider)
                }
                guard let workspace = target.workspace, let key else { throw ValidationError("give the key id") }
                return .workspace(workspaceID: workspace, keyID: key)
            }
        }

        struct Stage: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Stage the new secret (read from --api-key-file, standard input, or a prompt).")
            @OptionGroup var key: KeyArguments
            @Option(help: "A file holding the new key.") var apiKeyFile: String?

            func run() async throws {
                try await reportingFailures {
                    let reference = try key.reference()
                    let secret = Secret(try SecretInput.read(file: apiKeyFile, prompt: "New API key: "))
                    try await key.global.withStore { app in
                        let credential = try await app.keyRotation.stage(reference, key: secret, actor: "cli")
                        say("New key staged for \(credential.id) (\(credential.lifecycle.staged?.hint ?? "")); test it with `keywarden keys rotate test`.")
                    }
                }
            }
        }

        struct Test: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Test the staged secret with one read-only call to the vendor.")
            @OptionGroup var key: KeyArguments

            func run() async throws {
                try await reportingFailures {
                    let reference = try key.reference()
                    try await key.global.withStore { app in
                        let settings = try RuntimeConfiguration.server(host: "127.0.0.1", port: 0, environment: key.global.environment)
                        let services = try await ServerServices.make(app: app, settings: settings, logger: key.global.makeLogger())
                        do {
                            let (result, _) = try await services.verification.testStaged(reference, actor: "cli")
                            await services.shutdown()
                            say("\(result.status.rawValue): \(result.message.isEmpty ? result.status.hint() : result.message)")
                            if result.status != .valid { throw ExitCode(1) }
                        } catch {
                            await services.shutdown()
                            throw error
                        }
                    }
                }
            }
        }

        struct Promote: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Promote the staged secret; the old one stays the key's fallback for the grace period.")
            @OptionGroup var key: KeyArguments
            @Option(help: "Hours the old secret stays the fallback (0 removes it at once).") var graceHours: Int = KeyRotationService.defaultGraceHours
            @Flag(help: "Promote even though the staged secret has not passed its test.") var force = false

            func run() async throws {
                try await reportingFailures {
                    let reference = try key.reference()
                    try await key.global.withStore { app in
                        let credential = try await app.keyRotation.promote(reference, graceHours: graceHours, force: force, actor: "cli")
                        if let previous = credential.lifecycle.previous {
                            say("Promoted: \(credential.id) now uses \(credential.hint); \(previous.hint) serves as its fallback until \(Timestamp.string(previous.until)).")
                        } else {
                            say("Promoted: \(credential.id) now uses \(credential.hint); the old secret is removed.")
                        }
                    }
                }
            }
        }

        struct Finish: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "End the grace period now: the old secret is removed.")
            @OptionGroup var key: KeyArguments

            func run() async throws {
                try await reportingFailures {
                    let reference = try key.reference()
                    try await key.global.withStore { app in
                        let credential = try await app.keyRotation.finish(reference, actor: "cli")
                        say("Rotation of \(credential.id) finished; the old secret is removed.")
                    }
                }
            }
        }

        struct Cancel: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Discard the staged secret; the current one keeps serving.")
            @OptionGroup var key: KeyArguments

            func run() async throws {
                try await reportingFailures {
                    let reference = try key.reference()
                    try await key.global.withStore { app in
                        let credential = try await app.keyRotation.cancel(reference, actor: "cli")
                        say("Staged key of \(credential.id) discarded.")
                    }
                }
            }
        }

        struct Status: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Show a key's expiry, rotate-by age and rotation under way.")
            @OptionGroup var key: KeyArguments

            func run() async throws {
                try await reportingFailures {
                    let reference = try key.reference()
                    try await key.global.withStore { app in
                        let credential = try await app.engine.read { db in try await app.keyRotation.credential(reference, on: db) }
                        let l = credential.lifecycle
                        say("key:        \(credential.id) (\(credential.hint.isEmpty ? "no key" : credential.hint), \(credential.status.rawValue))")
                        say("stored at:  \(l.keySetAt.map(Timestamp.string) ?? "-")")
                        say("expires at: \(l.expiresAt.map(Timestamp.string) ?? "-")")
                        say("rotate by:  \(l.rotationDueAt.map(Timestamp.string) ?? "-")\(l.rotateByDays.map { " (every \($0) days)" } ?? "")")
                        if let staged = l.staged { say("staged:     \(staged.hint), \(staged.status.rawValue)\(staged.message.map { ": \($0)" } ?? "")") }
                        if let previous = l.previous { say("previous:   \(previous.hint), fallback until \(Timestamp.string(previous.until))") }
                    }
                }
            }
        }
    }

    /// `keywarden keys lifecycle`: a key's expiry date and rotate-by age.
    struct Lifecycle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a key's expiry date and rotate-by age (key.expiring and key.rotation_due events).")
        @OptionGroup var key: Rotate.KeyArguments
        @Option(help: "The expiry date (2027-03-01 or an RFC 3339 time); 'none' clears it.") var expiresAt: String?
        @Option(help: "Days a secret may serve before it is due for rotation; 0 clears it.") var rotateByDays: Int?

        func run() async throws {
            try await reportingFailures {
                let reference = try key.reference()
                let expiry: Date?? = try expiresAt.map { text in
                    if text == "none" { return nil }
                    return try LifecycleInput.date(text)
                }
                let days: Int?? = rotateByDays.map { $0 == 0 ? nil : $0 }
                try await key.global.withStore { app in
                    switch reference {
                    case .platform(let provider):
                        _ = try await app.platformCards.save(provider, PlatformCardUpdate(expiresAt: expiry, rotateByDays: days), actor: "cli")
                    case .workspace(let workspace, let keyID):
                        _ = try await app.keys.update(workspaceID: workspace, keyID: keyID, CredentialChanges(expiresAt: expiry, rotateByDays: days), actor: "cli")
                    }
                    say("Lifecycle saved.")
                }
            }
        }
    }
}
