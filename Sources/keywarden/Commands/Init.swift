import KeywardenApp
import ArgumentParser
import KeywardenStore

/// `keywarden init`: creates the data directory, keyring, database and the first admin token.
struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create the data directory, keyring and database, and print the first platform-admin token.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures {
            let logger = global.makeLogger()
            let (app, report) = try await AppServices.open(try global.storeConfiguration(), createIfMissing: true, logger: logger)
            let path = app.engine.name == "sqlite" ? app.configuration.dataDirectory.path : app.engine.location
            if let token = report.adminToken {
                say("Initialised \(path).")
                say("Keyring: \(app.configuration.keyringSource)")
                sayBoxed(["Platform admin token, shown only this once. Store it now.", "", token.value])
            } else {
                say("\(path) was already initialised; nothing was overwritten.")
                if !report.seed.inserted.isEmpty { say("Added providers: \(report.seed.inserted.joined(separator: ", "))") }
            }
            await app.close()
        }
    }
}
