import KeywardenApp
import ArgumentParser
import KeywardenStore
import KeywardenVault

/// `keywarden rotate-master-key`: a new active master key, and every data key re-wrapped under it.
struct RotateMasterKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-master-key",
        abstract: "Add a new active master key and re-wrap every stored data key with it (resumable; the server may keep running).",
        discussion: """
        Several instances: add the new key everywhere as a previous key first, then promote it everywhere, then run \
        this once (docs/vault.md, "Several instances"). With the generated keyring file (or KEYWARDEN_MASTER_KEY_FILE pointing at a keyring), a new key is \
        generated and saved first; the old key stays decrypt-only. With KEYWARDEN_MASTER_KEY, set it to the \
        new key and list the old one in KEYWARDEN_MASTER_KEY_PREVIOUS, then run this command. \
        An interrupted run continues where it stopped when run again. \
        --retire removes decrypt-only keys that no stored secret uses any more.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(name: .long, help: "Remove decrypt-only master keys that nothing refers to (refuses while any secret still uses one).")
    var retire = false

    @Option(name: .long, help: "Secrets re-wrapped per transaction.")
    var batchSize: Int = 10_000

    func validate() throws {
        guard batchSize > 0, batchSize <= 100_000 else {
            throw ValidationError("--batch-size must be between 1 and 100000")
        }
    }

    func run() async throws {
        try await reportingFailures {
            let logger = global.makeLogger()
            let (app, _) = try await AppServices.open(try global.storeConfiguration(), createIfMissing: false, logger: logger)
            do {
                let rotation = app.rotation()
                if retire {
                    let retired = try await rotation.retire(actor: "cli")
                    if retired.isEmpty {
                        say("No decrypt-only master key to retire.")
                    } else if app.configuration.masterKeyDevice != nil {
                        say("Nothing stored uses \(retired.joined(separator: ", ")) any more: remove it from the previous keys' setting (and the keyring, if one is kept), then destroy it in the device.")
                    } else if case .environment = app.configuration.keyringSource {
                        say("No stored secret uses \(retired.joined(separator: ", ")) any more: remove it from \(KeyringSource.previousKeysVariable).")
                    } else {
                        say("Retired \(retired.joined(separator: ", ")).")
                    }
                } else {
                    let bar = ProgressBar(label: "Re-wrapping")
                    let report = try await rotation.run(actor: "cli", batchSize: batchSize) { progress in
                        bar.update(done: progress.rewrapped + progress.unreadable, total: progress.total)
                    }
                    bar.finish()
                    say("\(report.resumed ? "Resumed and finished" : "Finished") rotation to \(report.targetKeyID): \(report.progress.rewrapped) key(s) re-wrapped (workspace keys, and data keys moved from the old format).")
                    if report.progress.unreadable > 0 {
                        say("\(report.progress.unreadable) key(s) do not open with any master key and were left as they are (their secrets show as unreadable).")
                    }
                    if report.keysStillInUse.isEmpty {
                        say("Old master keys are now unused: run `keywarden rotate-master-key --retire` to remove them.")
                    } else {
                        say("Still in use: " + report.keysStillInUse.map { "\($0.key) (\($0.value))" }.sorted().joined(separator: ", "))
                    }
                }
            } catch {
                await app.close()
                throw error
            }
            await app.close()
        }
    }
}
