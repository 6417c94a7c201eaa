import KeywardenApp
import ArgumentParser
import KeywardenStore

/// `keywarden audit`: the audit log's tools.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Inspect the audit log.", subcommands: [Verify.self])

    /// `keywarden audit verify`: walks the hash chain and names the first broken entry.
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check the audit log's hash chain; exits 1 and names the first broken entry if it was tampered with.")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            var intact = true
            try await reportingFailures {
                let logger = global.makeLogger()
                let (app, _) = try await AppServices.open(try global.storeConfiguration(), createIfMissing: false, logger: logger)
                let result: AuditLog.Verification
                do {
                    result = try await app.audit.verify(app.engine)
                } catch {
                    await app.close()
                    throw error
                }
                await app.close()
                if let broken = result.firstBroken {
                    say("Audit log broken at entry \(broken.seq): \(broken.reason). \(result.entries) entries before it are intact.")
                    intact = false
                } else {
                    say("Audit log intact: \(result.entries) entries verified.")
                }
            }
            if !intact { throw ExitCode(1) }
        }
    }
}
