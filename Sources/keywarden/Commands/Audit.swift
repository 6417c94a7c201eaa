import KeywardenApp
import ArgumentParser
import KeywardenStore

/// `keywarden audit`: the audit log's tools.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Inspect the audit log.", subcommands: [Verify.self])

    /// `keywarden audit verify`: walks the audit log's hash chain and each workspace's custody log, and names the first
    /// broken entry.
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check the audit log's and the custody logs' hash chains; exits 1 and names the first broken entry if one was tampered with.")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            var intact = true
            try await reportingFailures {
                let logger = global.makeLogger()
                let (app, _) = try await AppServices.open(try global.storeConfiguration(), createIfMissing: false, logger: logger)
                let result: AuditLog.Verification
                let custody: CustodyLog.Verification
                do {
                    result = try await app.audit.verify(app.engine)
                    custody = try await app.custody.verify()
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
                if let broken = custody.firstBroken {
                    say("Custody log of \(broken.workspaceID) broken at entry \(broken.seq): \(broken.reason).")
                    intact = false
                } else {
                    say("Custody logs intact: \(custody.entries) entries in \(custody.chains) workspace(s) verified.")
                }
            }
            if !intact { throw ExitCode(1) }
        }
    }
}
