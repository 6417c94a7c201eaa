import ArgumentParser
import KeywardenStore

/// `keywarden init`: creates the data directory, keyring, database and the first admin token.
struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create the data directory, keyring and database, and print the first platform-admin token.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures {
            let logger = global.makeLogger()
            let (store, report) = try await Store.open(try global.storeConfiguration(), createIfMissing: true, logger: logger)
            let path = store.configuration.dataDirectory.path
            if let token = report.adminToken {
                say("Initialised \(path).")
                say("Keyring: \(store.configuration.keyringSource)")
                say("Platform admin token (shown only this once; store it now):")
                say("  \(token.value)")
            } else {
                say("\(path) was already initialised; nothing was overwritten.")
                if !report.seed.inserted.isEmpty { say("Added providers: \(report.seed.inserted.joined(separator: ", "))") }
            }
            await store.close()
        }
    }
}
