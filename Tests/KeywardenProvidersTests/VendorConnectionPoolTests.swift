import AsyncHTTPClient
import Foundation
import KeywardenTestSupport
import KeywardenProviders
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import Testing

/// A vendor on a raw TCP socket: each request (head and `Content-Length` body) gets what the script says, byte for byte.
final class ScriptedVendorServer: Sendable {
    /// What the vendor does with one request.
    enum Reply: Sendable {
        /// Writes these bytes (each after its delay), then keeps the connection open or closes it.
        case send([(delay: TimeAmount, text: String)], close: Bool = false)
        /// Closes the connection without a word.
        case close
        /// Says nothing, keeps the connection.
        case silence
        /// Writes `first`, then `rest` once the test opens `gate` (so a test can prove `first` arrived alone).
        case gated(first: String, rest: String, gate: Gate)
    }

    /// A flag a test sets when the vendor may go on.
    final class Gate: Sendable {
        private let open = Mutex(false)
        var isOpen: Bool { open.withLock { $0 } }
        func release() { open.withLock { $0 = true } }
    }

    /// One request as the vendor read it.
    struct Seen: Sendable {
        let connection: Int
        let indexOnConnection: Int
        let text: String
    }

    /// What the vendor saw, shared with its connections' handlers.
    final class Record: Sendable {
        let seen = Mutex<[Seen]>([])
        let connections = Mutex(0)
    }

    private let channel: any Channel
    private let record: Record
    let port: Int

    init(tls: NIOSSLContext? = nil, _ script: @escaping @Sendable (Seen) -> Reply) async throws {
        let record = Record()
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let number = record.connections.withLock { count -> Int in
                    count += 1
                    return count
                }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(RawRequestHandler(connection: number, record: record, script: script))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
        self.record = record
    }

    var seen: [Seen] { record.seen.withLock { $0 } }
    var connectionCount: Int { record.connections.withLock { $0 } }
    func url(_ path: String = "/v1/x", scheme: String = "http", host: String = "127.0.0.1") -> VendorURL {
        VendorURL("\(scheme)://\(host):\(port)\(path)")!
    }

    func stop() async { try? await channel.close() }

    final class RawRequestHandler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let connection: Int
        let record: Record
        let script: @Sendable (Seen) -> Reply
        var pending: [UInt8] = []
        var index = 0

        init(connection: Int, record: Record, script: @escaping @Sendable (Seen) -> Reply) {
            self.connection = connection
            self.record = record
            self.script = script
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            pending += unwrapInboundIn(data).readableBytesView
            while let end = Self.requestEnd(pending) {
                let text = String(decoding: pending[..<end], as: UTF8.self)
                pending.removeFirst(end)
                index += 1
                let seen = Seen(connection: connection, indexOnConnection: index, text: text)
                record.seen.withLock { $0.append(seen) }
                switch script(seen) {
                case .close:
                    context.close(promise: nil)
                    return
                case .silence:
                    break
                case .gated(let first, let rest, let gate):
                    context.writeAndFlush(NIOAny(ByteBuffer(string: first)), promise: nil)
                    let later = ByteBuffer(string: rest)
                    let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                    context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(10), delay: .milliseconds(10)) { task in
                        guard gate.isOpen else { return }
                        task.cancel()
                        bound.value.writeAndFlush(NIOAny(later), promise: nil)
                    }
                case .send(let parts, let close):
                    var delay = TimeAmount.zero
                    let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                    for part in parts {
                        delay = delay + part.delay
                        let buffer = ByteBuffer(string: part.text)
                        context.eventLoop.scheduleTask(in: delay) { bound.value.writeAndFlush(NIOAny(buffer), promise: nil) }
                    }
                    if close { context.eventLoop.scheduleTask(in: delay + .milliseconds(5)) { bound.value.close(promise: nil) } }
                }
            }
        }

        /// Where the first whole request in `bytes` ends (its head and `Content-Length` body), or `nil`.
        static func requestEnd(_ bytes: [UInt8]) -> Int? {
            let separator: [UInt8] = Array("\r\n\r\n".utf8)
            guard bytes.count >= 4, let headEnd = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else { return nil }
            let head = String(decoding: bytes[..<headEnd], as: UTF8.self).lowercased()
            let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
            let end = headEnd + 4 + length
            return bytes.count >= end ? end : nil
        }
    }
}

/// An answer with a body of `text`, kept alive unless told.
func answer(_ text: String, status: String = "200 OK", extra: String = "") -> String {
    "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(text.utf8.count)\r\n\(extra)\r\n\(text)"
}

@Suite("Vendor connection pool against a raw vendor", .serialized)
struct VendorConnectionPoolTests {
    static func pool(readTimeout: TimeAmount = .seconds(60), connectTimeout: TimeAmount = .seconds(30),
                     trusting roots: [NIOSSLCertificate]? = nil) throws -> VendorConnectionPool {
        var configuration = VendorConnectionPool.Configuration()
        configuration.readTimeout = readTimeout
        configuration.connectTimeout = connectTimeout
        if let roots { configuration.tls.trustRoots = .certificates(roots) }
        return try VendorConnectionPool(configuration: configuration)
    }

    static func text(_ response: VendorResponse) async throws -> String {
        switch response.body {
        case .complete(let buffer): String(buffer: buffer)
        case .stream(let parts): String(buffer: try await parts.collect(upTo: 64 * 1024 * 1024))
        }
    }

    /// The body as parts, whole or streaming (a whole body is one part).
    static func parts(_ response: VendorResponse) -> HTTPClientResponse.Body {
        switch response.body {
        case .complete(let buffer): .bytes(buffer)
        case .stream(let parts): parts
        }
    }

    /// Whether the answer streams (its body did not all come with its head).
    static func streams(_ response: VendorResponse) -> Bool {
        if case .stream = response.body { return true }
        return false
    }

    static func post(_ pool: VendorConnectionPool, _ url: VendorURL, body: String = #"{"a":1}"#, method: HTTPMethod = .POST,
                     headers: HTTPHeaders = ["content-type": "application/json"], within: TimeAmount = .seconds(60)) async throws -> VendorResponse {
        try await pool.execute(method: method, url: url, headers: headers, body: body.isEmpty ? nil : ByteBuffer(string: body), deadline: .now() + within)
    }

    /// Waits until `condition` holds (the pool learns of a close on the connection's loop, a moment later).
    static func eventually(_ condition: () -> Bool) async throws -> Bool {
        for _ in 0..<1_000 {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    @Test("keep-alive answers reuse one connection; the request carries Host, Content-Length and the caller's headers, once each")
    func keepAliveConnectionIsReused() async throws {
        let vendor = try await ScriptedVendorServer { _ in .send([(.zero, answer(#"{"ok":true}"#))]) }
        let pool = try Self.pool()
        for _ in 0..<3 {
            let response = try await Self.post(pool, vendor.url(), headers: ["content-type": "application/json", "authorization": "Bearer k"])
            #expect(response.status == .ok)
            // Head and body came in one write, so in one read: the answer is whole at its head.
            #expect(!Self.streams(response))
            #expect(try await Self.text(response) == #"{"ok":true}"#)
        }
        #expect(vendor.connectionCount == 1)
        #expect(pool.counts.open == 1 && pool.counts.idle == 1)
        let head = vendor.seen[0].text.lowercased()
        #expect(head.hasPrefix("post /v1/x http/1.1\r\n"))
        #expect(head.contains("\r\nhost: 127.0.0.1:\(vendor.port)\r\n"))
        #expect(head.components(separatedBy: "content-length: 7\r\n").count == 2)
        #expect(head.contains("authorization: bearer k\r\n"))
        await pool.shutdown()
        await vendor.stop()
    }

    @Test("a caller on an event loop is served by that loop's connections only (a new one there when it has none), each loop keeping its own up to the idle limit; a caller off the loops takes any kept one")
    func callersOnALoopKeepToItsConnections() async throws {
        // Answers wait for the gate in force when their request came (open unless a test step closes one).
        let open = ScriptedVendorServer.Gate()
        open.release()
        let gate = Mutex(open)
        let vendor = try await ScriptedVendorServer { _ in .gated(first: "", rest: answer(#"{"ok":true}"#), gate: gate.withLock { $0 }) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { group.shutdownGracefully { _ in } }
        var configuration = VendorConnectionPool.Configuration()
        configuration.maximumIdlePerOrigin = 1
        let pool = try VendorConnectionPool(configuration: configuration, group: group)
        let loops = Array(group.makeIterator())
        /// One call from a task on `loop` (nil: off the loops); whether it ran there.
        @Sendable func call(on loop: (any EventLoop)?) async throws -> Bool {
            let work: @Sendable () async throws -> Bool = {
                let response = try await Self.post(pool, vendor.url())
                #expect(try await Self.text(response) == #"{"ok":true}"#)
                return loop.map { $0.inEventLoop } ?? true
            }
            guard let loop else { return try await work() }
            return try await Task(executorPreference: EventLoopTaskExecutor(loop)) { try await work() }.value
        }
        #expect(try await call(on: loops[0]) && vendor.connectionCount == 1)
        #expect(try await call(on: loops[0]) && vendor.connectionCount == 1, "the loop's kept connection is reused")
        // The other loop does not borrow loop 0's connection: it gets one of its own, and keeps it beside loop 0's (the
        // limit of one idle connection holds per loop, so callers alternating between loops make no new ones).
        #expect(try await call(on: loops[1]) && vendor.connectionCount == 2)
        for index in [1, 0, 1, 0] { #expect(try await call(on: loops[index]) && vendor.connectionCount == 2) }
        // Off the loops, any kept connection serves.
        #expect(try await call(on: nil) && vendor.connectionCount == 2)
        #expect(try await Self.eventually { pool.counts.idle == 2 })

        // Three calls at once on loop 0 (their answers held until all three reached the vendor): one takes the kept
        // connection, two make new ones; past the limit, loop 0 keeps one and closes two, and loop 1's stays.
        let held = ScriptedVendorServer.Gate()
        gate.withLock { $0 = held }
        let before = vendor.seen.count
        async let first = call(on: loops[0])
        async let second = call(on: loops[0])
        async let third = call(on: loops[0])
        #expect(try await Self.eventually { vendor.seen.count == before + 3 })
        gate.withLock { $0 = open }
        held.release()
        _ = try await (first, second, third)
        #expect(vendor.connectionCount == 4)
        #expect(try await Self.eventually { pool.counts.idle == 2 && pool.counts.open == 2 })
        #expect(try await call(on: loops[1]) && vendor.connectionCount == 4, "loop 1's connection was not displaced by loop 0's")
        #expect(try await call(on: loops[0]) && vendor.connectionCount == 4)
        await pool.shutdown()
        await vendor.stop()
    }

    @Test("a kept connection the vendor closed before answering: a GET or a POST with an Idempotency-Key is sent once more on a new one; a plain POST is not, and a new connection that closes is an error")
    func staleConnectionIsRetriedOnlyWhenSafe() async throws {
        // The second request on every connection meets a close: the vendor's idle timeout, met at the worst moment.
        let vendor = try await ScriptedVendorServer { seen in
            seen.indexOnConnection == 1 ? .send([(.zero, answer("one"))]) : .close
        }
        let pool = try Self.pool()
        #expect(try await Self.text(Self.post(pool, vendor.url())) == "one")
        #expect(try await Self.text(Self.post(pool, vendor.url(), body: "", method: .GET)) == "one")
        #expect(vendor.connectionCount == 2)
        let keyed: HTTPHeaders = ["content-type": "application/json", "idempotency-key": "k-1"]
        #expect(try await Self.text(Self.post(pool, vendor.url(), headers: keyed)) == "one")
        #expect(vendor.connectionCount == 3)
        // A plain POST the vendor may have acted on is not sent twice: the caller learns the close.
        await #expect(throws: HTTPClientError.remoteConnectionClosed) { try await Self.post(pool, vendor.url()) }
        #expect(vendor.connectionCount == 3)
        #expect(vendor.seen.count == 6)

        let closing = try await ScriptedVendorServer { _ in .close }
        await #expect(throws: HTTPClientError.remoteConnectionClosed) { try await Self.post(pool, closing.url(), body: "", method: .GET) }
        #expect(closing.connectionCount == 1)
        await pool.shutdown()
        await vendor.stop()
        await closing.stop()
    }

    @Test("a caller that stops reading early closes the connection: the rest of that answer never reaches the next caller")
    func callerLeavingEarlyClosesTheConnection() async throws {
        let big = String(repeating: "x", count: 2_000_000)
        let vendor = try await ScriptedVendorServer { seen in
            seen.connection == 1 ? .send([(.zero, answer(big))]) : .send([(.zero, answer("small"))])
        }
        let pool = try Self.pool()
        do {
            let response = try await Self.post(pool, vendor.url())
            var iterator = Self.parts(response).makeAsyncIterator()
            #expect(try await iterator.next() != nil)
        }
        #expect(try await Self.eventually { pool.counts.open == 0 })
        #expect(try await Self.text(Self.post(pool, vendor.url())) == "small")
        #expect(vendor.connectionCount == 2)
        await pool.shutdown()
        await vendor.stop()
    }

    @Test("bytes after an answer's end (a second, unasked answer) close the connection; the next caller gets its own answer")
    func unaskedBytesNeverReachTheNextCaller() async throws {
        let vendor = try await ScriptedVendorServer { seen in
            seen.connection == 1
                ? .send([(.zero, answer("mine") + answer(#"{"smuggled":true}"#))])
                : .send([(.zero, answer("yours"))])
        }
        let pool = try Self.pool()
        #expect(try await Self.text(Self.post(pool, vendor.url())) == "mine")
        // However the race between the unasked bytes and the next lease falls, the next caller never reads them.
        for _ in 0..<3 {
            let text = try await Self.text(Self.post(pool, vendor.url()))
            #expect(text == "yours")
        }
        #expect(vendor.connectionCount >= 2)
        await pool.shutdown()
        await vendor.stop()
    }

    @Test("no head before the deadline is deadlineExceeded, and that connection is not reused")
    func silentVendorMeetsTheDeadline() async throws {
        let vendor = try await ScriptedVendorServer { _ in .silence }
        let pool = try Self.pool()
        let started = ContinuousClock.now
        await #expect(throws: HTTPClientError.deadlineExceeded) { try await Self.post(pool, vendor.url(), within: .seconds(8)) }
        #expect(ContinuousClock.now - started < .seconds(40))
        // The request was written (a connection that met its deadline before a byte was sent stays usable).
        #expect(try await Self.eventually { vendor.seen.count == 1 })
        #expect(try await Self.eventually { pool.counts.open == 0 })
        await pool.shutdown()
        await vendor.stop()
    }

    @Test("a body that stops coming is readTimeout; a body shorter than its Content-Length is an error, not a short answer")
    func stalledAndShortBodiesFail() async throws {
        let stalled = try await ScriptedVendorServer { _ in
            .send([(.zero, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")])
        }
        let pool = try Self.pool(readTimeout: .milliseconds(300))
        let response = try await Self.post(pool, stalled.url())
        await #expect(throws: HTTPClientError.readTimeout) { _ = try await Self.text(response) }

        let short = try await ScriptedVendorServer { _ in
            .send([(.zero, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")], close: true)
        }
        let cut = try await Self.post(pool, short.url())
        await #expect(throws: (any Error).self) { _ = try await Self.text(cut) }
        #expect(try await Self.eventually { pool.counts.open == 0 })
        await pool.shutdown()
        await stalled.stop()
        await short.stop()
    }

    @Test("an answer that breaks in the read that brought its head reaches the caller as a head and a failing body, not as a failed request")
    func brokenAnswerInOneReadIsACutBody() async throws {
        let vendor = try await ScriptedVendorServer { _ in
            .send([(.zero, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n")])
        }
        let pool = try Self.pool()
        let response = try await Self.post(pool, vendor.url())
        #expect(response.status == .ok && Self.streams(response))
        await #expect(throws: (any Error).self) { _ = try await Self.text(response) }
        #expect(try await Self.eventually { pool.counts.open == 0 })
        await pool.shutdown()
        await vendor.stop()
    }

    @Test("a chunked stream reaches the caller part by part, as the vendor sends it")
    func streamPassesPartByPart() async throws {
        let gate = ScriptedVendorServer.Gate()
        let vendor = try await ScriptedVendorServer { _ in
            .gated(first: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndata 1\r\n",
                   rest: "6\r\ndata 2\r\n0\r\n\r\n", gate: gate)
        }
        let pool = try Self.pool()
        let response = try await Self.post(pool, vendor.url())
        #expect(Self.streams(response))
        var iterator = Self.parts(response).makeAsyncIterator()
        // The first part reaches the caller while the vendor holds the rest back (nothing waits for the end).
        let first = try await iterator.next()
        #expect(first.map { String(buffer: $0) } == "data 1")
        gate.release()
        let second = try await iterator.next()
        #expect(second.map { String(buffer: $0) } == "data 2")
        #expect(try await iterator.next() == nil)
        #expect(try await Self.eventually { pool.counts.idle == 1 })
        await pool.shutdown()
        await vendor.stop()
    }

    @Test("Connection: close and HTTP/1.0 answers are not kept; an answer to HEAD has no body and keeps the connection")
    func closeAnswersAreNotKeptAndHeadHasNoBody() async throws {
        let vendor = try await ScriptedVendorServer { seen in
            if seen.text.hasPrefix("HEAD") { return .send([(.zero, "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n")]) }
            return seen.connection == 1 ? .send([(.zero, answer("bye", extra: "Connection: close\r\n"))])
                : .send([(.zero, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")])
        }
        let pool = try Self.pool()
        #expect(try await Self.text(Self.post(pool, vendor.url())) == "bye")
        #expect(try await Self.eventually { pool.counts.open == 0 })
        #expect(try await Self.text(Self.post(pool, vendor.url())) == "ok")
        #expect(try await Self.eventually { pool.counts.open == 0 })
        let head = try await Self.post(pool, vendor.url(), body: "", method: .HEAD)
        #expect(head.headers.first(name: "content-length") == "50")
        #expect(try await Self.text(head) == "")
        #expect(try await Self.eventually { pool.counts.idle == 1 })
        await pool.shutdown()
        await vendor.stop()
    }

    @Test("a large answer arrives whole to a caller that reads slowly; 1xx answers are skipped; 101 is refused")
    func largeAnswersInformationalAndSwitching() async throws {
        let big = String(repeating: "0123456789", count: 1_000_000)
        let vendor = try await ScriptedVendorServer { seen in
            switch seen.connection {
            case 1: .send([(.zero, "HTTP/1.1 100 Continue\r\n\r\n" + answer(big))])
            default: .send([(.zero, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n")])
            }
        }
        let pool = try Self.pool()
        let response = try await Self.post(pool, vendor.url())
        #expect(response.status == .ok)
        var count = 0
        for try await part in Self.parts(response) {
            count += part.readableBytes
            if count < 200_000 { try await Task.sleep(for: .milliseconds(5)) }
        }
        #expect(count == big.utf8.count)
        // The kept connection is the first; a second caller at once gets a second connection, which switches.
        async let first = Self.post(pool, vendor.url())
        async let second = Self.post(pool, vendor.url())
        let outcomes = await [(try? first)?.status, (try? second)?.status]
        #expect(outcomes.contains { $0 == nil } || vendor.connectionCount == 1)
        await pool.shutdown()
        await vendor.stop()
    }

    @Test("a caller that holds the body back longer than the read timeout is not timed out; the whole answer arrives")
    func heldReadsAreNotTimedOut() async throws {
        let big = String(repeating: "abcdefghij", count: 2_000_000)
        let vendor = try await ScriptedVendorServer { _ in .send([(.zero, answer(big))]) }
        let pool = try Self.pool(readTimeout: .seconds(3))
        let response = try await Self.post(pool, vendor.url())
        var iterator = Self.parts(response).makeAsyncIterator()
        var count = try await iterator.next()?.readableBytes ?? 0
        // Longer than the read timeout: the vendor is not read meanwhile, and that silence is the caller's, not the vendor's.
        try await Task.sleep(for: .seconds(5))
        while let part = try await iterator.next() { count += part.readableBytes }
        #expect(count == big.utf8.count)
        await pool.shutdown()
        await vendor.stop()
    }

    @Test("request targets keep what a request line may carry and percent-encode the rest, so the vendor reads the path it was given")
    func requestTargetsAreEncodedForTheWire() async throws {
        let vendor = try await ScriptedVendorServer { _ in .send([(.zero, answer("ok"))]) }
        let pool = try Self.pool()
        let url = try #require(VendorURL("http://127.0.0.1:\(vendor.port)/v1/a|b{c}^`x`?q=\"<v>\"\\&k=1:2@3!$'()*+,;=~%20"))
        #expect(url.target == "/v1/a%7Cb%7Bc%7D%5E%60x%60?q=%22%3Cv%3E%22%5C&k=1:2@3!$'()*+,;=~%20")
        #expect(try await Self.text(Self.post(pool, url)) == "ok")
        #expect(vendor.seen.first?.text.hasPrefix("POST \(url.target) HTTP/1.1\r\n") == true)
        await pool.shutdown()
        await vendor.stop()
    }

    @Test("https: a vendor whose certificate the pool trusts answers over TLS on a kept connection; an untrusted certificate, a name the certificate does not carry, and a vendor that never finishes the handshake are errors, within the connect timeout")
    func tlsVendors() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kw-pool-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let openssl = try ChildProcess.run("/usr/bin/env", ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                                                            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                                                            "-keyout", directory.appendingPathComponent("key.pem").path,
                                                            "-out", directory.appendingPathComponent("cert.pem").path], output: .discarded)
        try #require(openssl.status == 0)
        let certificate = try #require(try NIOSSLCertificate.fromPEMFile(directory.appendingPathComponent("cert.pem").path).first)
        let key = try NIOSSLPrivateKey(file: directory.appendingPathComponent("key.pem").path, format: .pem)
        let serverContext = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: [.certificate(certificate)], privateKey: .privateKey(key)))
        let vendor = try await ScriptedVendorServer(tls: serverContext) { _ in .send([(.zero, answer("secure"))]) }

        let trusting = try Self.pool(trusting: [certificate])
        for _ in 0..<2 {
            #expect(try await Self.text(Self.post(trusting, vendor.url(scheme: "https", host: "localhost"))) == "secure")
        }
        #expect(vendor.connectionCount == 1)
        // The certificate names localhost, not 127.0.0.1.
        await #expect(throws: (any Error).self) { try await Self.post(trusting, vendor.url(scheme: "https", host: "127.0.0.1")) }
        let systemRoots = try Self.pool()
        await #expect(throws: (any Error).self) { try await Self.post(systemRoots, vendor.url(scheme: "https", host: "localhost")) }
        #expect(vendor.seen.count == 2)

        // A plain TCP listener never answers the ClientHello.
        let mute = try await ScriptedVendorServer { _ in .silence }
        let quick = try Self.pool(connectTimeout: .milliseconds(300), trusting: [certificate])
        let started = ContinuousClock.now
        await #expect(throws: HTTPClientError.connectTimeout) {
            try await Self.post(quick, mute.url(scheme: "https", host: "localhost"), within: .seconds(20))
        }
        #expect(ContinuousClock.now - started < .seconds(30))
        for pool in [trusting, systemRoots, quick] { await pool.shutdown() }
        await vendor.stop()
        await mute.stop()
    }

    @Test("a cancelled caller's request is dropped with its connection; shutdown closes every connection and refuses new requests")
    func cancellationAndShutdown() async throws {
        let vendor = try await ScriptedVendorServer { seen in seen.connection == 1 ? .silence : .send([(.zero, answer("ok"))]) }
        let pool = try Self.pool()
        let waiting = Task { try await Self.post(pool, vendor.url(), within: .seconds(30)) }
        #expect(try await Self.eventually { vendor.seen.count == 1 })
        waiting.cancel()
        await #expect(throws: (any Error).self) { try await waiting.value }
        #expect(try await Self.eventually { pool.counts.open == 0 })
        #expect(try await Self.text(Self.post(pool, vendor.url())) == "ok")
        await pool.shutdown()
        #expect(pool.counts.open == 0)
        await #expect(throws: HTTPClientError.alreadyShutdown) { try await Self.post(pool, vendor.url()) }
        await vendor.stop()
    }
}

@Suite("Vendor URLs")
struct VendorURLTests {
    @Test("plain http and https URLs split into origin, Host header and request target")
    func plainURLsSplit() throws {
        let cases: [(String, Bool, String, Int, String, String)] = [
            ("https://api.openai.com/v1/chat/completions", true, "api.openai.com", 443, "api.openai.com", "/v1/chat/completions"),
            ("HTTPS://API.Anthropic.com:443/v1/messages?beta=true", true, "api.anthropic.com", 443, "api.anthropic.com", "/v1/messages?beta=true"),
            ("http://127.0.0.1:8080", false, "127.0.0.1", 8080, "127.0.0.1:8080", "/"),
            ("http://[::1]:9000?x=1#frag", false, "::1", 9000, "[::1]:9000", "/?x=1"),
            ("http://vendor.internal_1.example/a/b#c", false, "vendor.internal_1.example", 80, "vendor.internal_1.example", "/a/b"),
        ]
        for (text, secure, host, port, hostHeader, target) in cases {
            let url = try #require(VendorURL(text), "\(text)")
            #expect(url.origin.secure == secure && url.origin.host == host && url.origin.port == port, "\(text)")
            #expect(url.origin.hostHeader == hostHeader && url.target == target, "\(text)")
        }
    }

    @Test("anything else is not taken: other schemes, user info, bad ports, spaces, control characters, line breaks")
    func otherURLsAreRefused() {
        for text in ["ftp://x/", "//x/", "http:/x", "http://", "http:///x", "http://user@host/", "http://a:b@host/", "http://host:0/",
                     "http://host:65536/", "http://host:123456/", "http://host:-1/", "http://host:/", "http://ho st/", "http://host/a b",
                     "http://host/a\r\nX-Injected: 1", "http://host/\u{0}", "http://host/é", "http://[::1/", "http://[zz]/", "http://[::1]x/",
                     "http://host:80:81/", "http://ho%73t/", "", " http://host/"] {
            #expect(VendorURL(text) == nil, "\(text.debugDescription)")
        }
    }
}
