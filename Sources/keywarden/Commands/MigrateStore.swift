import ArgumentParser
import Foundation
import KeywardenApp
import KeywardenStore

/// `keywarden migrate-store --to postgres://…`: moves a SQLite data directory into an empty PostgreSQL database.
struct MigrateStore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate-store",
        abstract: "Copy this data directory's SQLite database into an empty PostgreSQL database (resumable).",
        discussion: """
        Stop every server on the data directory first. Sealed secrets are copied as they are (keep the same keyring: \
        the keyring file, or KEYWARDEN_MASTER_KEY), the audit chain and the usage ledger are kept. An interrupted run \
        continues where it stopped when run again with the same target; a target that holds data of its own is refused. \
        Afterwards, start the servers with KEYWARDEN_DATABASE_URL set to the target.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "The PostgreSQL database to copy into (postgres://user:password@host:port/db?sslmode=…); or set KEYWARDEN_TARGET_DATABASE_URL, which keeps the password out of the process list.")
    var to: String?

    @Option(name: .long, help: "Rows per transaction.")
    var batchSize: Int = 500

    func validate() throws {
        guard (1...100_000).contains(batchSize) else { throw ValidationError("--batch-size must be between 1 and 100000") }
        guard targetURL != nil else { throw ValidationError("name the target with --to or KEYWARDEN_TARGET_DATABASE_URL") }
    }

    /// The target from `--to`, else from the environment.
    var targetURL: String? {
        to ?? ProcessInfo.processInfo.environment["KEYWARDEN_TARGET_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func run() async throws {
        try await reportingFailures {
            let logger = global.makeLogger()
            var sourceConfiguration = try global.storeConfiguration()
            sourceConfiguration.postgresURL = nil
            let (source, _) = try await AppServices.open(sourceConfiguration, createIfMissing: false, logger: logger)
            let target: PostgresEngine
            do {
                target = try await PostgresEngine(url: targetURL ?? "", logger: logger)
            } catch {
                await source.close()
                throw error
            }
            let bar = ProgressBar(label: "Copying")
            let report: StoreCopy.Report
            do {
                report = try await StoreCopy(batchSize: batchSize).run(from: source.engine, to: target, logger: logger) { progress in
                    bar.update(done: progress.copied, total: progress.total, label: "Copying \(progress.table)")
                }
                bar.finish()
            } catch {
                bar.finish()
                await source.close()
                await target.close()
                throw error
            }
            let verification = try await source.audit.verify(target)
            await source.close()
            await target.close()
            let rows = report.rows.values.reduce(0, +)
            say("\(report.resumed ? "Resumed and copied" : "Copied") \(rows) row(s) into \(target.location): "
                + StoreCopy.tables.map { "\($0.name) \(report.rows[$0.name] ?? 0)" }.joined(separator: ", ") + ".")
            if let broken = verification.firstBroken {
                say("The audit chain on the target is broken at entry \(broken.seq): \(broken.reason).")
                throw ExitCode(1)
            }
            say("Audit chain on the target: \(verification.entries) entries verified. Start the servers with KEYWARDEN_DATABASE_URL set to it.")
        }
    }
}
