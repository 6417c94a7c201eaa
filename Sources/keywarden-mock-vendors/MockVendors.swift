import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdWebSocket
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
///
/// Hostile vendors (`Hostile.swift`; error bodies in OpenAI's shape for every family), checked before the
/// markers above:
///
/// | key contains | answer |
/// | --- | --- |
/// | `hostileretry<N>` | 429 whose `Retry-After` is the N-th (from 1) of: 1 `inf`, 2 `nan`, 3 `1e999`, 4 `-5`, 5 `123456789012345678901234567890`, 6 `Sun, 06 Nov 1994 08:49:37 GMT`, 7 `Fri, 31 Dec 9999 23:59:59 GMT`, 8 `garbage`, 9 `1.5`, 10 `0x10`, 11 ` 7 ` (spaces around), 12 `99999999999999999999999999999999999999999999`; 400 for any other N |
/// | `hugeerror` | 401 with a JSON error body of exactly 4 MiB, the key (JSON-escaped) near its start and at its end; `hugeerror500`: the same as a 500 |
/// | `badutf8` | 401 labelled `application/json; charset=utf-8` whose body is not UTF-8: stray, overlong, surrogate and cut-off sequences around the key, and the key cut in two by stray bytes |
/// | `echokey` | 401 echoing the key raw, JSON-escaped (`/` as `\/`), percent-encoded and base64 in one JSON body (raw unescaped: a key with `"` or `\` breaks the JSON) |
/// | `echoheaders<STATUS>` | an answer with that status (200 if none) echoing the key in its headers (raw `X-Debug-Key`, a `Location` with the key percent-encoded in its query, `X-Key-Base64`, `X-Key-Upper`, a header named `X-Echo-<key in base64url>`, and one named `X-<the key's first characters in alternating case>`) and in its body (a chat completion whose `model` is the key and whose content is the key half `\u`-escaped, or an error) |
/// | `widetext` | 200 chat completion in UTF-16LE without a byte-order mark or charset, the key as its content |
/// | `echostream` | 200 `text/event-stream` whose content is the key half `\u`-escaped, written in two parts 50 ms apart that cut the key in two |
/// | `neverendingstream` | 200 `text/event-stream`, one OpenAI-shaped chunk every 100 ms until the client goes away |
/// | `floodstream` | 200 `text/event-stream` that never ends, OpenAI-shaped chunks of ~16 KiB written as fast as the client takes them, until it goes away |
/// | `gzipsurprise` | the ordinary answer (200, or 401 with `revoked` too, …) with `Content-Encoding: gzip` nobody asked for, really gzip (a fixed-Huffman deflate block: a key in it is not visible as is) |
/// | `gzipsurprisefake` | the same, labelled gzip but sent as it is |
///
/// A response head that never ends cannot be written through Hummingbird: `--vendor hostile-raw` (or
/// `name=hostile-raw`; not among the defaults) starts a raw TCP listener on its own port, printed as
/// `mock hostile-raw <url>`; point a provider's base URL at it. Any request gets `HTTP/1.1 200 OK` and then
/// a header line every 100 ms forever (`neverendingheaders`); a request containing `partialhead` (in its
/// key or path) gets half a header line and then silence. See `HostileRawListener`. On an ordinary mock
/// a `neverendingheaders` key gets a 421 saying so.
@main
struct MockVendors: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "keywarden-mock-vendors", abstract: "Test doubles of AI vendors' APIs.")

    @Option(parsing: .upToNextOption, help: "Vendors to serve, as name or name=family (families: \(Family.allCases.map(\.rawValue).joined(separator: ", ")); also \(MockVendors.hostileRaw), a raw listener whose response head never ends).")
    var vendor: [String] = Family.allCases.map(\.rawValue)

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    /// The raw listener's family name, not a `Family`: it is no vendor, and not served by default.
    static let hostileRaw = "hostile-raw"

    @Flag(help: "Do not record requests (for benchmarks).")
    var noRecord = false

    func run() async throws {
        var logger = Logger(label: "mock-vendors")
        logger.logLevel = .warning
        var services: [any Service] = []
        for entry in vendor {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            let name = parts[0]
            if (parts.count == 2 ? parts[1] : name) == Self.hostileRaw {
                services.append(HostileRawListener(name: name, host: host))
                continue
            }
            guard let family = Family(rawValue: parts.count == 2 ? parts[1] : name) else {
                throw ValidationError("unknown family for '\(entry)'")
            }
            var mock = MockVendor(name: name, family: family)
            mock.recording = !noRecord
            let webSocketMock = mock
            let app = Application(
                router: mock.router(),
                server: .http1WebSocketUpgrade(configuration: .init(ws: .init(maxFrameSize: 16 * 1024 * 1024))) { head, _, _ in
                    webSocketMock.shouldUpgrade(head)
                },
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
