import ArgumentParser
import Foundation
import KeywardenServer
import KeywardenStore
import Logging

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "The data directory (database, keyring). Default: $KEYWARDEN_DATA or ./keywarden-data.")
    var data: String?

    @Option(name: .long, help: "A PostgreSQL database shared by several instances (postgres://user:password@host:port/db?sslmode=require). Default: $KEYWARDEN_DATABASE_URL, else SQLite in the data directory.")
    var databaseURL: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical. Default: $KEYWARDEN_LOG_LEVEL or info.")
    var logLevel: String?

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// Sets up logging to standard error and returns the root logger.
    func makeLogger() -> Logger {
        let level = (logLevel ?? environment["KEYWARDEN_LOG_LEVEL"]).flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingBootstrap.once(level: level)
        var logger = Logger(label: "keywarden")
        logger.logLevel = level
        return logger
    }

    func storeConfiguration() throws -> StoreConfiguration {
        try RuntimeConfiguration.store(dataOption: data, databaseOption: databaseURL, environment: environment)
    }
}

enum LoggingBootstrap {
    private static let done = LockedFlag()

    static func once(level: Logger.Level) {
        guard done.setIfUnset() else { return }
        LoggingSystem.bootstrap { label in
            var handler = LazyMetadataLogHandler(StreamLogHandler.standardError(label: label))
            handler.logLevel = level
            return handler
        }
    }
}

/// `StreamLogHandler`'s lines, with metadata formatted only for a line that is written.
///
/// `StreamLogHandler` formats its metadata again whenever a key is set; the server sets a request id and a token id
/// on every request's logger, which cost ~2 % of a gateway call's CPU even when nothing is logged.
struct LazyMetadataLogHandler: LogHandler {
    private var stream: StreamLogHandler
    var metadata = Logger.Metadata()

    init(_ stream: StreamLogHandler) {
        self.stream = stream
    }

    var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { stream.metadataProvider }
        set { stream.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line = stream
        line.metadata = metadata
        line.log(event: event)
    }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    /// Sets the flag; returns whether it was unset before.
    func setIfUnset() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if value { return false }
        value = true
        return true
    }
}
