import KeywardenApp
import ArgumentParser
import KeywardenServer
import KeywardenStore

/// `keywarden serve`: starts the server, initialising the data directory on the first run.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start the Keywarden server (initialises the data directory on first run).")

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "The address to listen on.")
    var host: String = "127.0.0.1"

    @Option(name: .long, help: "The port to listen on (0 picks a free one).")
    var port: Int = 8080

    func run() async throws {
        try await reportingFailures {
            let logger = global.makeLogger()
            let settings = try RuntimeConfiguration.server(host: host, port: port, environment: global.environment)
            let (app, report) = try await AppServices.open(try global.storeConfiguration(), createIfMissing: true, logger: logger)
            let database = app.engine.name == "sqlite" ? "Data directory: \(app.configuration.dataDirectory.path)" : "Database: \(app.engine.location)"
            let token = report.adminToken
            try await runServer(app: app, settings: settings, logger: logger) { host, port in
                say("Keywarden is listening on http://\(host):\(port)")
                say(database)
                if let token {
                    // Set apart, and last: the log lines that follow go to standard error and do not bury it.
                    sayBoxed([
                        "First run: the platform admin token, shown only this once. Store it now.",
                        "",
                        token.value,
                        "",
                        "Sign in at http://\(host):\(port)/login with it, or send it as a bearer token to /api/v1.",
                    ])
                }
            }
        }
    }
}
