import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// What `keywarden-bench stream-client` is asked to do: where to send streamed calls, how many, and what comes back.
///
/// `keywarden-bench stream-client --url http://HOST:PORT/PATH [--header 'Name: value']… [--concurrency N]
/// [--streams-per-connection K] [--events 64] [--pace-ms 20] [--ramp-ms 0] [--threads 1]` opens N connections (their
/// starts spread evenly over `ramp-ms`), sends K streamed chat completions on each in turn (keep-alive), timestamps
/// each request's send and every event's arrival (an event ends at a blank line), and prints one JSON line: time to
/// first event p50 / p99 / max, inter-event gap p50 / p99 / max (µs), `late` (events later than 10× the pace after the
/// one before), `late_first` (first events later than that after the request: not paced, reported apart), `errors`
/// (a status other than 200, a stream cut or ended with fewer events than `events` + 2, a connection refused, a
/// stream past its deadline) and `streams` (N × K).
struct StreamClientPlan: Sendable {
    let host: String
    let port: Int
    let path: String
    let headers: [(String, String)]
    let concurrency: Int
    let streamsPerConnection: Int
    let expectedEvents: Int
    let pace: TimeAmount
    let ramp: TimeAmount
    let threads: Int
    let body: ByteBuffer

    /// An event later than this after the one before it is late (a first event, after the request: `lateFirst`).
    var lateBound: Int64 { pace.nanoseconds * 10 }
    /// A stream not finished by then is cut and counted as an error.
    var streamDeadline: TimeAmount { pace * Int64(expectedEvents) * 3 + .seconds(10) }
}

/// The figures of one connection's streams (nanoseconds), merged into the run's at the end.
struct StreamFigures: Sendable {
    var firstEvents: [Int64] = []
    var gaps: [Int64] = []
    var late = 0
    var lateFirst = 0
    var errors = 0
    var streams = 0

    mutating func merge(_ other: StreamFigures) {
        firstEvents += other.firstEvents
        gaps += other.gaps
        late += other.late
        lateFirst += other.lateFirst
        errors += other.errors
        streams += other.streams
    }
}

/// Why `keywarden-bench stream-client` cannot start.
enum StreamClientError: Error {
    case badURL(String)
}

/// Runs the plan and prints its figures as one JSON line.
func streamClient(url: String, headerLines: [String], concurrency: Int, streamsPerConnection: Int, events: Int,
                  paceMilliseconds: Int, rampMilliseconds: Int, threads: Int) async throws {
    guard let parsed = URL(string: url), parsed.scheme == "http", let host = parsed.host else { throw StreamClientError.badURL(url) }
    let port = parsed.port ?? 80
    var headers: [(String, String)] = [("Host", parsed.port == nil ? host : "\(host):\(port)")]
    for line in headerLines {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
    }
    let body = ByteBuffer(string: #"{"model":"gpt-5.4-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello to the benchmark."}]}"#)
    headers += [("Content-Type", "application/json"), ("Accept", "text/event-stream"), ("Content-Length", String(body.readableBytes))]
    let plan = StreamClientPlan(
        host: host, port: port, path: parsed.path.isEmpty ? "/" : parsed.path + (parsed.query.map { "?" + $0 } ?? ""),
        headers: headers, concurrency: max(1, concurrency), streamsPerConnection: max(1, streamsPerConnection),
        expectedEvents: max(1, events) + 2, pace: .milliseconds(Int64(max(1, paceMilliseconds))),
        ramp: .milliseconds(Int64(max(0, rampMilliseconds))), threads: max(1, threads), body: body)
    let figures = try await runStreams(plan)
    print(streamReport(figures, plan: plan))
}

/// Opens the plan's connections on their own event-loop group and waits for every one to finish its streams.
func runStreams(_ plan: StreamClientPlan) async throws -> StreamFigures {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: plan.threads)
    let address = try SocketAddress.makeAddressResolvingHost(plan.host, port: plan.port)
    var futures: [EventLoopFuture<StreamFigures>] = []
    for index in 0..<plan.concurrency {
        let loop = group.next()
        let promise = loop.makePromise(of: StreamFigures.self)
        futures.append(promise.futureResult)
        let delay = TimeAmount.nanoseconds(plan.ramp.nanoseconds * Int64(index) / Int64(plan.concurrency))
        loop.scheduleTask(in: delay) {
            ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(StreamConnectionHandler(plan: plan, promise: promise))
                    }
                }
                .connect(to: address)
                .whenFailure { _ in
                    var failed = StreamFigures()
                    failed.errors = plan.streamsPerConnection
                    failed.streams = plan.streamsPerConnection
                    promise.succeed(failed)
                }
        }
    }
    let results = try await EventLoopFuture.whenAllComplete(futures, on: group.next()).get()
    try await group.shutdownGracefully()
    var figures = StreamFigures()
    for case .success(let one) in results { figures.merge(one) }
    return figures
}

/// The run's figures as one JSON line (times in µs).
func streamReport(_ figures: StreamFigures, plan: StreamClientPlan) -> String {
    func percentile(_ sorted: [Int64], _ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return -1 }
        return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]) / 1_000
    }
    let first = figures.firstEvents.sorted()
    let gaps = figures.gaps.sorted()
    let fields: [(String, String)] = [
        ("streams", String(figures.streams)), ("errors", String(figures.errors)), ("late", String(figures.late)),
        ("late_first", String(figures.lateFirst)),
        ("concurrency", String(plan.concurrency)), ("events_per_stream", String(plan.expectedEvents)),
        ("pace_ms", String(plan.pace.nanoseconds / 1_000_000)), ("gaps", String(gaps.count)),
        ("ttfe_p50_us", String(format: "%.1f", percentile(first, 0.5))), ("ttfe_p99_us", String(format: "%.1f", percentile(first, 0.99))),
        ("ttfe_max_us", String(format: "%.1f", first.last.map { Double($0) / 1_000 } ?? -1)),
        ("gap_p50_us", String(format: "%.1f", percentile(gaps, 0.5))), ("gap_p99_us", String(format: "%.1f", percentile(gaps, 0.99))),
        ("gap_max_us", String(format: "%.1f", gaps.last.map { Double($0) / 1_000 } ?? -1)),
    ]
    return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
}

/// One client connection of the stream client: sends its streamed calls in turn and times their events.
///
/// It finds each event's end (a blank line) in the answer's body parts as they arrive. Lives on its channel's loop;
/// reports once, through `promise`.
final class StreamConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let plan: StreamClientPlan
    private let promise: EventLoopPromise<StreamFigures>
    private var figures = StreamFigures()
    private var remaining: Int
    private var inStream = false
    private var status = 0
    private var keepAlive = true
    private var sentAt: Int64 = 0
    private var lastEventAt: Int64 = 0
    private var events = 0
    private var lastByteWasNewline = false
    private var deadline: Scheduled<Void>?
    private var reported = false

    init(plan: StreamClientPlan, promise: EventLoopPromise<StreamFigures>) {
        self.plan = plan
        self.promise = promise
        remaining = plan.streamsPerConnection
    }

    func channelActive(context: ChannelHandlerContext) {
        sendNext(context: context)
        context.fireChannelActive()
    }

    private func sendNext(context: ChannelHandlerContext) {
        guard remaining > 0 else {
            report()
            context.close(promise: nil)
            return
        }
        remaining -= 1
        inStream = true
        status = 0
        events = 0
        lastByteWasNewline = false
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: plan.path)
        for (name, value) in plan.headers { head.headers.add(name: name, value: value) }
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: plan.streamDeadline) {
            bound.value.handler.expire(context: bound.value.context)
        }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(plan.body))), promise: nil)
        sentAt = Int64(NIODeadline.now().uptimeNanoseconds)
        lastEventAt = sentAt
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            keepAlive = head.isKeepAlive
        case .body(let part):
            guard status == 200 else { return }
            let now = Int64(NIODeadline.now().uptimeNanoseconds)
            var ends = 0
            var newline = lastByteWasNewline
            part.withUnsafeReadableBytes { bytes in
                for byte in bytes {
                    if byte == UInt8(ascii: "\n") {
                        if newline { ends += 1 }
                        newline = true
                    } else if byte != UInt8(ascii: "\r") {
                        newline = false
                    }
                }
            }
            lastByteWasNewline = newline
            for _ in 0..<ends { arrived(at: now) }
        case .end:
            deadline?.cancel()
            deadline = nil
            finishStream(cut: false)
            if keepAlive { sendNext(context: context) } else { report(); context.close(promise: nil) }
        }
    }

    /// An event ended at `now`: the first's delay from the request, or the gap since the one before.
    private func arrived(at now: Int64) {
        let delay = now - lastEventAt
        if events == 0 {
            figures.firstEvents.append(delay)
            if delay > plan.lateBound { figures.lateFirst += 1 }
        } else {
            figures.gaps.append(delay)
            if delay > plan.lateBound { figures.late += 1 }
        }
        lastEventAt = now
        events += 1
    }

    private func finishStream(cut: Bool) {
        guard inStream else { return }
        inStream = false
        figures.streams += 1
        if cut || status != 200 || events < plan.expectedEvents { figures.errors += 1 }
    }

    private func expire(context: ChannelHandlerContext) {
        deadline = nil
        guard inStream else { return }
        context.close(promise: nil)
    }

    /// Counts the stream in flight as cut and the ones not sent as errors, then fulfils the promise (once).
    private func report() {
        guard !reported else { return }
        reported = true
        finishStream(cut: true)
        figures.streams += remaining
        figures.errors += remaining
        remaining = 0
        promise.succeed(figures)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        report()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        report()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
