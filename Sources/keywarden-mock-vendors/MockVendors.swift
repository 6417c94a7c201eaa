import ArgumentParser
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// Test doubles of the vendors' APIs: one process, one port per vendor.
///
/// Each mock checks the vendor's own auth header, answers with the vendor's success and error
/// shapes, and records every request (`GET /__mock/requests`, `DELETE /__mock/requests`).
/// Its behaviour is chosen by the key it receives:
///
/// | key contains | answer |
/// | --- | --- |
/// | `revoked` | 401 with the vendor's invalid-key error |
/// | `forbidden` | 403 |
/// | `ratelimited` | 429 with `Retry-After: 7` (`Retry-After: N` when it also contains `retryN`) |
/// | `noquota` | the vendor's out-of-quota error |
/// | `servererror` | 500 |
/// | `slow` | answers after 30 s (past any client timeout) |
/// | `midstream` | a streamed answer breaks off after two events |
/// | anything else | success |
@main
struct MockVendors: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "keywarden-mock-vendors", abstract: "Test doubles of AI vendors' APIs.")

    @Option(parsing: .upToNextOption, help: "Vendors to serve, as name or name=family (families: \(Family.allCases.map(\.rawValue).joined(separator: ", "))).")
    var vendor: [String] = Family.allCases.map(\.rawValue)

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Flag(help: "Do not record requests (for benchmarks).")
    var noRecord = false

    func run() async throws {
        var logger = Logger(label: "mock-vendors")
        logger.logLevel = .warning
        var services: [any Service] = []
        for entry in vendor {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            let name = parts[0]
            guard let family = Family(rawValue: parts.count == 2 ? parts[1] : name) else {
                throw ValidationError("unknown family for '\(entry)'")
            }
            var mock = MockVendor(name: name, family: family)
            mock.recording = !noRecord
            let app = Application(
                router: mock.router(),
                configuration: .init(address: .hostname(host, port: 0), serverName: "mock-\(name)"),
                onServerRunning: { channel in
                    FileHandle.standardOutput.write(Data("mock \(name) http://\(host):\(channel.localAddress?.port ?? 0)\n".utf8))
                },
                logger: logger
            )
            services.append(app)
        }
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
