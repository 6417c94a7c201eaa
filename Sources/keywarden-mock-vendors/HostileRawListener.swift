import Foundation
import NIOCore
import NIOPosix
import ServiceLifecycle

/// `hostile-raw`: a plain TCP listener for what Hummingbird will not send, a response head that never
/// finishes. Started with `--vendor hostile-raw` (or `name=hostile-raw`), it prints `mock <name> <url>`
/// like the others; tests point a provider's base URL at it. Once a request's head has arrived it answers
/// `HTTP/1.1 200 OK` and then one more header line every 100 ms, forever (`neverendingheaders`), or, when
/// the request contains `partialhead` (in the key, the path, anywhere), half a header line and then
/// nothing; with `silenthead`, nothing at all; with `stallstream`, one event of a stream and then nothing. It reads on
/// meanwhile, stops when the client closes the connection, and prints `closed after <ms> ms: <request line>`.
struct HostileRawListener: Service {
    let name: String
    let host: String

    static let headerInterval = Duration.milliseconds(100)
    /// Past this many bytes without the end of a head, it answers anyway.
    static let maximumRequestHead = 64 * 1024

    func run() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        FileHandle.standardOutput.write(Data("mock \(name) http://\(host):\(server.channel.localAddress?.port ?? 0)\n".utf8))
        do {
            try await cancelWhenGracefulShutdown {
                try await server.executeThenClose { connections in
                    try await withThrowingDiscardingTaskGroup { group in
                        for try await connection in connections {
                            group.addTask { try? await Self.serve(connection) }
                        }
                    }
                }
            }
        } catch where Task.isShuttingDownGracefully {
            // Cancelled by the shutdown, with every open connection: a clean end.
        }
    }

    static func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var head: [UInt8] = []
            while !head.containsHeadEnd, head.count < maximumRequestHead {
                guard var chunk = try await iterator.next() else { return }
                head += chunk.readBytes(length: chunk.readableBytes) ?? []
            }
            let text = String(decoding: head, as: UTF8.self)
            let partial = text.contains("partialhead")
            let requestLine = text.prefix { $0 != "\r" && $0 != "\n" }
            let opened = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    if text.contains("silenthead") {
                        // Nothing at all, until the client leaves.
                        try await Task.sleep(for: .seconds(86_400 * 365))
                    } else if text.contains("stallstream") {
                        // One event of a stream, then nothing.
                        try await outbound.write(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"))
                        let event = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
                        try await outbound.write(ByteBuffer(string: String(event.utf8.count, radix: 16) + "\r\n" + event + "\r\n"))
                        try await Task.sleep(for: .seconds(86_400 * 365))
                    } else if partial {
                        try await outbound.write(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: applica"))
                        try await Task.sleep(for: .seconds(86_400 * 365))
                    } else {
                        try await outbound.write(ByteBuffer(string: "HTTP/1.1 200 OK\r\n"))
                        var line = 0
                        while true {
                            try await Task.sleep(for: headerInterval)
                            try await outbound.write(ByteBuffer(string: "X-Never-Ending-\(line): the head of this answer does not end\r\n"))
                            line += 1
                        }
                    }
                }
                // Whatever else the client sends (a body) is read and dropped; its end (the client gone) ends the answer.
                while try await iterator.next() != nil {}
                group.cancelAll()
                // Tests learn when a caller gave up on a silent vendor from this line.
                let waited = ContinuousClock.now - opened
                FileHandle.standardOutput.write(Data("closed after \(waited.components.seconds * 1000 + waited.components.attoseconds / 1_000_000_000_000_000) ms: \(requestLine)\n".utf8))
            }
        }
    }
}

extension [UInt8] {
    /// Whether the bytes contain the blank line that ends an HTTP head.
    fileprivate var containsHeadEnd: Bool {
        guard count >= 4 else { return false }
        for index in 0...(count - 4) where self[index] == 13 && self[index + 1] == 10 && self[index + 2] == 13 && self[index + 3] == 10 {
            return true
        }
        return false
    }
}
