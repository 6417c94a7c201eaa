import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// A vendor's answer at its head: status, headers, and the body — whole when it came with the head, else streaming.
public struct VendorResponse: Sendable {
    public enum Body: Sendable {
        /// The whole body, read with the head (one read of the connection): nothing more will come.
        case complete(ByteBuffer)
        /// The body as it arrives.
        case stream(HTTPClientResponse.Body)
    }

    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: Body

    public init(status: HTTPResponseStatus, headers: HTTPHeaders, body: Body) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// AsyncHTTPClient's answer, streaming.
    public init(_ response: HTTPClientResponse) {
        self.init(status: response.status, headers: response.headers, body: .stream(response.body))
    }
}

/// Keep-alive HTTP/1.1 connections to vendors, kept per origin: the gateway's lean way out.
///
/// One request at a time per connection. The request is written on the connection's event loop in one flush; the
/// answer's head resumes the caller at the end of the read that brought it: with the whole body when it came in the
/// same read (most JSON answers), else with a back-pressured sequence of its parts (the vendor is read only as fast as
/// the caller takes them). A connection goes back to the pool when its answer
/// ended and both sides keep it alive; one the caller stops reading early, or that failed, is closed, never reused.
///
/// Errors are AsyncHTTPClient's (`HTTPClientError.deadlineExceeded` once the vendor had the whole request, `.readTimeout`,
/// `.connectTimeout` when the request did not reach the vendor in time,
/// `.remoteConnectionClosed`), so a caller classifies them the same whichever client sent the request.
/// Not for targets a workspace shaped: those go through the egress proxy, which this pool does not use.
public final class VendorConnectionPool: Sendable {
    /// How connections are made and kept.
    public struct Configuration: Sendable {
        /// The longest a new connection may take (less when the request's deadline is nearer).
        public var connectTimeout: TimeAmount = .seconds(5)
        /// The longest silence while an answer's body is awaited (not while the caller holds it back).
        public var readTimeout: TimeAmount = .seconds(61)
        /// How long an idle connection is kept (under the common 60 s of load balancers, so the pool closes first).
        public var idleTimeout: TimeAmount = .seconds(50)
        /// Idle connections kept per origin on each event loop; at the limit, the one kept longest gives way.
        public var maximumIdlePerOrigin = 256
        /// TLS for `https` origins (the system's trust roots by default).
        public var tls: TLSConfiguration = .makeClientConfiguration()

        public init() {}
    }

    /// Where idle connections wait: per origin and event loop (a caller on a loop takes only that loop's), so taking and
    /// keeping one touches only its own list.
    struct IdleKey: Hashable {
        let origin: VendorOrigin
        let loop: ObjectIdentifier

        init(_ origin: VendorOrigin, _ loop: any EventLoop) {
            self.origin = origin
            self.loop = ObjectIdentifier(loop)
        }
    }

    private struct State {
        /// The most recently kept last.
        var idle: [IdleKey: [VendorConnection]] = [:]
        var open: [ObjectIdentifier: any Channel] = [:]
        var isShutDown = false
    }

    private let group: any EventLoopGroup
    private let configuration: Configuration
    private let tlsContext: NIOSSLContext
    private let state = Mutex(State())

    /// A pool on `group` (NIO's shared loops by default).
    public init(configuration: Configuration = Configuration(), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        self.configuration = configuration
        self.group = group
        tlsContext = try NIOSSLContext(configuration: configuration.tls)
    }

    /// Sends one request and returns at the answer's head; its body streams from the connection.
    ///
    /// A request that meets a reused connection the vendor had just closed (nothing of an answer read) is sent once
    /// more on a new connection when the vendor cannot have acted on it: it was not written whole, or it may be sent
    /// twice (GET, HEAD, OPTIONS, or an `Idempotency-Key`), as Go's client decides. Otherwise the caller learns
    /// `remoteConnectionClosed` and decides (the gateway tries its next key).
    public func execute(method: HTTPMethod, url: VendorURL, headers: HTTPHeaders, body: ByteBuffer?,
                        deadline: NIODeadline) async throws -> VendorResponse {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: url.target, headers: headers)
        for name in Self.hopByHopHeaders { head.headers.remove(name: name) }
        head.headers.remove(name: "content-length")
        head.headers.replaceOrAdd(name: "host", value: url.origin.hostHeader)
        if let body {
            head.headers.add(name: "content-length", value: "\(body.readableBytes)")
        } else if method == .POST || method == .PUT || method == .PATCH {
            head.headers.add(name: "content-length", value: "0")
        }
        let replayable = [.GET, .HEAD, .OPTIONS].contains(method)
            || head.headers.contains(name: "idempotency-key") || head.headers.contains(name: "x-idempotency-key")
        var mayRetry = true
        while true {
            try Task.checkCancellation()
            // The retry takes a new connection: the vendor may have dropped every kept one at once.
            let (connection, reused) = mayRetry ? try await lease(url.origin, deadline: deadline)
                : (try await connect(url.origin, deadline: deadline), false)
            do {
                return try await connection.send(head, body: body, deadline: deadline, readTimeout: configuration.readTimeout)
            } catch VendorExchangeError.closedBeforeAnswer(let written) {
                guard reused, mayRetry, !written || replayable else { throw HTTPClientError.remoteConnectionClosed }
                mayRetry = false
            }
        }
    }

    /// Headers that describe one connection, never forwarded; the pool frames each request itself.
    static let hopByHopHeaders = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"]

    /// Closes every connection; requests after this fail.
    public func shutdown() async {
        let channels = state.withLock { state -> [any Channel] in
            state.isShutDown = true
            state.idle.removeAll()
            defer { state.open.removeAll() }
            return Array(state.open.values)
        }
        // Closed together: a TLS close waits for the vendor's close_notify, so one at a time would add up.
        let closed = channels.map { channel in
            let promise = channel.eventLoop.makePromise(of: Void.self)
            channel.close(promise: promise)
            return promise.futureResult
        }
        for future in closed { try? await future.get() }
    }

    /// How many connections are open and how many of them idle (for tests and metrics).
    public var counts: (open: Int, idle: Int) {
        state.withLock { ($0.open.count, $0.idle.values.reduce(0) { $0 + $1.count }) }
    }

    // MARK: Connections

    private func lease(_ origin: VendorOrigin, deadline: NIODeadline) async throws -> (VendorConnection, reused: Bool) {
        // `any()` is the caller's own loop when it calls from one of the group's (a new connection is made there too).
        let loop = group.any()
        let callerLoop = loop.inEventLoop ? loop : nil
        let idle = try state.withLock { state -> VendorConnection? in
            guard !state.isShutDown else { throw HTTPClientError.alreadyShutdown }
            if let callerLoop { return Self.takeIdle(from: &state.idle, IdleKey(origin, callerLoop)) }
            for key in Array(state.idle.keys) where key.origin == origin {
                if let connection = Self.takeIdle(from: &state.idle, key) { return connection }
            }
            return nil
        }
        if let idle { return (idle, true) }
        return (try await connect(origin, deadline: deadline), false)
    }

    /// The kept connection of `key` to use, the most recently kept first; closed and retired ones are dropped on the way.
    ///
    /// A caller on one of the group's loops (the data plane calls from its client's loop) takes only a connection of that
    /// loop, and gets a new one there when it has none: an answer read on another loop reaches its caller through a
    /// wake-up of the caller's thread for every part (a stream's every event), as AsyncHTTPClient's
    /// `.delegateAndChannel` preference and nginx's per-worker keep-alive pools avoid. The price: a handshake per loop
    /// (and per call in flight on it) where one shared set would have served.
    static func takeIdle(from idle: inout [IdleKey: [VendorConnection]], _ key: IdleKey) -> VendorConnection? {
        defer { if idle[key]?.isEmpty == true { idle[key] = nil } }
        while let connection = idle[key]?.popLast() {
            if connection.isReusable { return connection }
        }
        return nil
    }

    private func connect(_ origin: VendorOrigin, deadline: NIODeadline) async throws -> VendorConnection {
        let remaining = deadline - .now()
        // No time left to connect: nothing reached the vendor (connectTimeout, not deadlineExceeded: it is not billed).
        guard remaining > .zero else { throw HTTPClientError.connectTimeout }
        // Connecting and, for https, the TLS handshake share one limit.
        let connectDeadline = NIODeadline.now() + min(configuration.connectTimeout, remaining)
        let tlsContext = origin.secure ? tlsContext : nil
        let serverName = Self.isAddressLiteral(origin.host) ? nil : origin.host
        let flags = VendorConnection.Flags()
        let bootstrap = ClientBootstrap(group: group.any())
            .connectTimeout(min(configuration.connectTimeout, remaining))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    if let tlsContext {
                        try operations.addHandler(try NIOSSLClientHandler(context: tlsContext, serverHostname: serverName))
                        try operations.addHandler(TLSHandshakeWatch(deadline: connectDeadline))
                    }
                    try operations.addHTTPClientHandlers(leftOverBytesStrategy: .dropBytes)
                    try operations.addHandler(VendorExchangeHandler(flags: flags))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: origin.host, port: origin.port).get()
        } catch {
            if let error = error as? ChannelError, case .connectTimeout = error { throw HTTPClientError.connectTimeout }
            // The handshake watch closes the channel at the connect deadline; on a loaded machine that can fail the connect
            // itself (I/O on a closed channel) before the handshake is awaited: still a connect timeout.
            if tlsContext != nil, NIODeadline.now() >= connectDeadline { throw HTTPClientError.connectTimeout }
            throw error
        }
        if tlsContext != nil {
            do {
                try await channel.eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
                    // A watch no longer in the pipeline: the channel closed already (its deadline passed, or the vendor left).
                    let closed: any Error = NIODeadline.now() >= connectDeadline ? HTTPClientError.connectTimeout
                        : HTTPClientError.remoteConnectionClosed
                    guard let watch = try? channel.pipeline.syncOperations.handler(type: TLSHandshakeWatch.self) else {
                        return channel.eventLoop.makeFailedFuture(closed)
                    }
                    return watch.done ?? channel.eventLoop.makeFailedFuture(closed)
                }.get()
            } catch {
                channel.close(promise: nil)
                throw error
            }
        }
        let admitted = state.withLock { state -> Bool in
            guard !state.isShutDown else { return false }
            state.open[ObjectIdentifier(channel)] = channel
            return true
        }
        guard admitted else {
            channel.close(promise: nil)
            throw HTTPClientError.alreadyShutdown
        }
        // Registered at once: a connection that closes before it is handed out leaves the pool too.
        channel.closeFuture.whenComplete { [weak self] _ in self?.forget(channel, of: origin) }
        let idleTimeout = configuration.idleTimeout
        let connection = try await channel.eventLoop.submit { [weak self] in
            // Not in the pipeline any more: the vendor closed the new connection at once.
            guard let exchange = try? channel.pipeline.syncOperations.handler(type: VendorExchangeHandler.self) else {
                throw HTTPClientError.remoteConnectionClosed
            }
            let handler = NIOLoopBound(exchange, eventLoop: channel.eventLoop)
            let connection = VendorConnection(channel: channel, handler: handler, flags: flags, origin: origin)
            // Only while the channel is open: its close clears the closure (which holds the handler through the connection).
            if channel.isActive {
                handler.value.becameIdle = { [weak self] in self?.keep(connection, idleTimeout: idleTimeout) }
            }
            return connection
        }.get()
        return connection
    }

    /// Takes back a connection whose answer ended and that both sides keep alive. The idle limit holds per origin and
    /// event loop (callers take only their own loop's connections, as nginx's workers keep their own): at it, the
    /// connection of this loop kept longest is closed to make room.
    private func keep(_ connection: VendorConnection, idleTimeout: TimeAmount) {
        let limit = configuration.maximumIdlePerOrigin
        let key = IdleKey(connection.origin, connection.channel.eventLoop)
        let (kept, displaced) = state.withLock { state -> (Bool, VendorConnection?) in
            guard !state.isShutDown, state.open[ObjectIdentifier(connection.channel)] != nil, limit > 0 else { return (false, nil) }
            // Changed in place, no copy of the list under the lock; a closed connection leaves it when its channel
            // closes (`forget`), a retired one when it is next taken.
            var displaced: VendorConnection?
            if let count = state.idle[key]?.count, count >= limit { displaced = state.idle[key]?.removeFirst() }
            state.idle[key, default: []].append(connection)
            return (true, displaced)
        }
        displaced?.channel.close(promise: nil)
        if kept {
            connection.handler.value.closeWhenIdle(after: idleTimeout)
        } else {
            connection.channel.close(promise: nil)
        }
    }

    private func forget(_ channel: any Channel, of origin: VendorOrigin) {
        state.withLock { state in
            state.open[ObjectIdentifier(channel)] = nil
            let key = IdleKey(origin, channel.eventLoop)
            state.idle[key]?.removeAll { $0.channel === channel }
            if state.idle[key]?.isEmpty == true { state.idle[key] = nil }
        }
    }

    /// Whether a host is an IP address (no name to send for TLS's server name indication).
    static func isAddressLiteral(_ host: String) -> Bool {
        host.contains(":") || host.utf8.allSatisfy { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: ".") }
    }
}

/// One kept-alive connection to a vendor.
struct VendorConnection: Sendable {
    /// What the pool may read of the connection off its loop.
    final class Flags: Sendable {
        private let retired = Atomic(false)
        /// Whether the connection failed or is closing: never leased again, even before it has closed.
        var isRetired: Bool { retired.load(ordering: .acquiring) }
        func retire() { retired.store(true, ordering: .releasing) }
    }

    let channel: any Channel
    let handler: NIOLoopBound<VendorExchangeHandler>

    /// Whether the connection may be leased again: still open and not retired.
    var isReusable: Bool { channel.isActive && !flags.isRetired }
    let flags: Flags
    let origin: VendorOrigin

    /// Writes the request and waits for the answer's head (or a failure, the deadline, the caller's cancellation).
    func send(_ head: HTTPRequestHead, body: ByteBuffer?, deadline: NIODeadline, readTimeout: TimeAmount) async throws -> VendorResponse {
        let loop = channel.eventLoop
        let answer = loop.makePromise(of: VendorExchangeHandler.Answer.self)
        let handler = handler
        // A caller on the connection's loop (the data plane's calls) begins at once, not one loop turn later.
        if loop.inEventLoop {
            handler.value.begin(head, body: body, answer: answer, deadline: deadline, readTimeout: readTimeout)
        } else {
            loop.execute {
                handler.value.begin(head, body: body, answer: answer, deadline: deadline, readTimeout: readTimeout)
            }
        }
        let started = try await withTaskCancellationHandler {
            try await answer.futureResult.get()
        } onCancel: {
            loop.execute { handler.value.cancel(answer) }
        }
        switch started.body {
        case .complete(let buffer):
            return VendorResponse(status: started.head.status, headers: started.head.headers, body: .complete(buffer))
        case .stream(let parts):
            return VendorResponse(status: started.head.status, headers: started.head.headers, body: .stream(.stream(parts)))
        }
    }
}

/// The caller gave up on a vendor call before the answer's head; the connection was closed.
public struct VendorCallCancelled: Error, Sendable, Equatable {
    /// Whether the whole request had reached the network: the vendor may have worked on it, and bill it.
    public let requestSent: Bool

    public init(requestSent: Bool) { self.requestSent = requestSent }
}

enum VendorExchangeError: Error {
    /// The connection closed before any byte of an answer (a kept-alive connection the vendor had just closed);
    /// `written`: whether the whole request had been handed to the network.
    case closedBeforeAnswer(written: Bool)
    /// The vendor sent bytes nobody asked for, or switched protocols.
    case unexpectedAnswer
}

/// A handler held weakly (by a timer that must not keep it alive).
final class WeakHandler<Handler: AnyObject> {
    weak var value: Handler?
    init(_ value: Handler) { self.value = value }
}

/// Fails a new TLS connection whose handshake does not finish by its deadline; `done` completes with the handshake.
final class TLSHandshakeWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let deadline: NIODeadline
    private var promise: EventLoopPromise<Void>?
    private var timer: Scheduled<Void>?
    /// The handshake's outcome (set once the handler is in its pipeline).
    private(set) var done: EventLoopFuture<Void>?

    init(deadline: NIODeadline) {
        self.deadline = deadline
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: Void.self)
        self.promise = promise
        done = promise.futureResult
        let bound = NIOLoopBound((watch: WeakHandler(self), context: context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            bound.value.watch.value?.finish(HTTPClientError.connectTimeout)
            bound.value.context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event { finish(nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(HTTPClientError.remoteConnectionClosed)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(HTTPClientError.remoteConnectionClosed)
    }

    private func finish(_ error: (any Error)?) {
        timer?.cancel()
        timer = nil
        guard let promise else { return }
        self.promise = nil
        if let error { promise.fail(error) } else { promise.succeed() }
    }
}

/// The connection's end of one request at a time, on its event loop: writes the request, hands the answer's head to
/// the waiting caller and feeds its body to a back-pressured sequence; holds reads while the caller is behind.
final class VendorExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    typealias Body = NIOThrowingAsyncSequenceProducer<ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, BodyDemand>

    /// An answer's head and its body, as the caller receives them.
    struct Answer: Sendable {
        enum Parts: Sendable {
            case complete(ByteBuffer)
            case stream(Body)
        }

        let head: HTTPResponseHead
        let body: Parts
    }

    /// The most of a body gathered with its head before the answer streams instead.
    static let wholeBodyLimit = 1024 * 1024

    /// The caller's demand for body parts, carried back to the loop (tagged with its exchange, so a late signal of
    /// an earlier answer does not touch the next one).
    struct BodyDemand: NIOAsyncSequenceProducerDelegate {
        let handler: NIOLoopBound<VendorExchangeHandler>
        let exchange: Int

        func produceMore() {
            let handler = handler
            let exchange = exchange
            handler.eventLoop.execute { handler.value.resumeReading(exchange: exchange) }
        }

        func didTerminate() {
            let handler = handler
            let exchange = exchange
            handler.eventLoop.execute { handler.value.callerLeft(exchange: exchange) }
        }
    }

    private let flags: VendorConnection.Flags
    /// What happens next, decided as values; this handler carries it out.
    private var machine = VendorExchangeStateMachine(wholeBodyLimit: VendorExchangeHandler.wholeBodyLimit)
    private var context: ChannelHandlerContext?
    /// The caller waiting for the current exchange's head.
    private var answer: EventLoopPromise<Answer>?
    /// The current answer's body, while it streams.
    private var source: Body.Source?
    private var timer: Scheduled<Void>?
    private var idleTimer: Scheduled<Void>?
    /// Gives the connection back to its pool (set by the pool).
    var becameIdle: (() -> Void)?

    init(flags: VendorConnection.Flags) {
        self.flags = flags
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: The caller's side

    func begin(_ head: HTTPRequestHead, body: ByteBuffer?, answer: EventLoopPromise<Answer>, deadline: NIODeadline, readTimeout: TimeAmount) {
        idleTimer?.cancel()
        idleTimer = nil
        let action = machine.begin(channelActive: context?.channel.isActive ?? false, now: .now(), deadline: deadline, readTimeout: readTimeout)
        switch action {
        case .refuse(let failure, let release):
            answer.fail(Self.error(failure))
            if release { becameIdle?() }
        case .send(let exchange, let readFirst):
            guard let context else { return }
            self.answer = answer
            source = nil
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            timer = context.eventLoop.scheduleTask(deadline: deadline) {
                let handler = bound.value
                handler.run(handler.machine.deadlinePassed(exchange: exchange))
            }
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            // A head the encoder refused (a header or target NIO will not send) failed the exchange already.
            guard machine.phase == .awaitingHead, machine.exchange == exchange else { return }
            if let body, body.readableBytes > 0 {
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            }
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.whenComplete { result in
                let handler = bound.value
                switch result {
                case .success: handler.run(handler.machine.requestWritten(exchange: exchange, error: nil))
                case .failure(let error): handler.run(handler.machine.requestWritten(exchange: exchange, error: error))
                }
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
            if readFirst { context.read() }
        default:
            run(action)
        }
    }

    /// The caller of `answer` was cancelled while it waited for the head: the connection closes (the vendor stops
    /// working on the request, as when a client of its own goes away).
    func cancel(_ answer: EventLoopPromise<Answer>) {
        run(machine.cancelled(current: self.answer?.futureResult === answer.futureResult))
    }

    func resumeReading(exchange: Int) {
        run(machine.readerWantsMore(exchange: exchange, now: .now()))
    }

    func callerLeft(exchange: Int) {
        run(machine.readerLeft(exchange: exchange))
    }

    /// Closes the connection if it is still idle after `timeout`.
    func closeWhenIdle(after timeout: TimeAmount) {
        guard let context, case .scheduleIdleClose(let exchange) = machine.keptIdle() else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: timeout) {
            let handler = bound.value
            handler.run(handler.machine.idleTimeoutPassed(exchange: exchange))
        }
    }

    // MARK: The vendor's side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): run(machine.receivedHead(head, now: .now()))
        case .body(let part): run(machine.receivedBody(part, now: .now()))
        case .end: run(machine.receivedEnd(now: .now()))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // The read ended with the head but not the body: the caller has the head now and the body as it comes.
        run(machine.readComplete())
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        run(machine.errorCaught(error, abruptClose: Self.isAbruptClose(error)))
    }

    func channelInactive(context: ChannelHandlerContext) {
        run(machine.channelClosed())
        flags.retire()
        timer?.cancel()
        idleTimer?.cancel()
        becameIdle = nil
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        run(machine.readRequested())
    }

    // MARK: Carrying out the machine's actions

    private func run(_ action: VendorExchangeStateMachine.Action) {
        switch action {
        case .none:
            break
        case .refuse, .send:
            // Answers to `begin`, carried out there.
            break
        case .armReadTimer(let deadline):
            armReadTimer(deadline)
        case .startStreaming(let head, let gathered, let exchange):
            startStreaming(head, gathered, exchange: exchange)
        case .yield(let part):
            if source?.yield(part) == .stopProducing { run(machine.readerIsBehind()) }
        case .complete(let head, let body, let release, let readFirst):
            timer?.cancel()
            let waiting = answer
            answer = nil
            if readFirst { context?.read() }
            self.release(release)
            waiting?.succeed(Answer(head: head, body: .complete(body)))
        case .finishStream(let release, let readFirst):
            timer?.cancel()
            let reader = source
            source = nil
            if readFirst { context?.read() }
            self.release(release)
            reader?.finish()
        case .fail(let failure, let failed):
            fail(Self.error(failure), failed)
        case .retire:
            retire()
        case .pauseReadTimer:
            timer?.cancel()
            timer = nil
        case .resume(let deadline, let readFirst):
            armReadTimer(deadline)
            if readFirst { context?.read() }
        case .scheduleIdleClose:
            // Scheduled by `closeWhenIdle`, which knows the timeout.
            break
        case .read:
            context?.read()
        }
    }

    /// Hands the caller the head and a back-pressured sequence of the body (what was read so far first).
    private func startStreaming(_ head: HTTPResponseHead, _ gathered: ByteBuffer?, exchange: Int) {
        guard let context else { return }
        let producer = Body.makeSequence(
            backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8), finishOnDeinit: false,
            delegate: BodyDemand(handler: NIOLoopBound(self, eventLoop: context.eventLoop), exchange: exchange))
        source = producer.source
        if let gathered, producer.source.yield(gathered) == .stopProducing { run(machine.readerIsBehind()) }
        let waiting = answer
        answer = nil
        waiting?.succeed(Answer(head: head, body: .stream(producer.sequence)))
    }

    /// Gives the connection back to the pool, or closes it.
    private func release(_ release: VendorExchangeStateMachine.Release) {
        if release == .keep, let context, context.channel.isActive, let becameIdle {
            becameIdle()
        } else {
            run(machine.closing())
        }
    }

    /// Closes the connection, which is never leased again from now on.
    private func retire() {
        flags.retire()
        context?.close(promise: nil)
    }

    /// Fails whom the failure reaches and closes the connection.
    private func fail(_ error: any Error, _ failed: VendorExchangeStateMachine.Failed) {
        timer?.cancel()
        switch failed {
        case .answer:
            let waiting = answer
            answer = nil
            waiting?.fail(error)
        case .streamAfterHead(let head, let gathered, let exchange):
            // A head already read is the caller's: it gets the head, then the error in the body.
            if context != nil {
                startStreaming(head, gathered, exchange: exchange)
                let reader = source
                source = nil
                reader?.finish(error)
            } else {
                let waiting = answer
                answer = nil
                waiting?.fail(error)
            }
        case .stream:
            let reader = source
            source = nil
            reader?.finish(error)
        case .nobody:
            break
        }
        retire()
    }

    /// Fails the exchange if the vendor stays silent for the read timeout while its body is awaited (not while the
    /// caller holds reads back); `deadline` is the last read plus that timeout.
    private func armReadTimer(_ deadline: NIODeadline) {
        timer?.cancel()
        guard let context else { return }
        let exchange = machine.exchange
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let handler = bound.value
            handler.run(handler.machine.readTimerFired(exchange: exchange, now: .now()))
        }
    }

    /// The error a caller classifies for each failure (AsyncHTTPClient's where there is one).
    static func error(_ failure: VendorExchangeStateMachine.Failure) -> any Error {
        switch failure {
        case .closedBeforeAnswer(let written): VendorExchangeError.closedBeforeAnswer(written: written)
        case .connectTimeout: HTTPClientError.connectTimeout
        case .deadlineExceeded: HTTPClientError.deadlineExceeded
        case .readTimeout: HTTPClientError.readTimeout
        case .remoteClosed: HTTPClientError.remoteConnectionClosed
        case .unexpectedAnswer: VendorExchangeError.unexpectedAnswer
        case .cancelled(let requestSent): VendorCallCancelled(requestSent: requestSent)
        case .channel(let error): error
        }
    }

    /// A reset, or a TLS connection closed without its close_notify.
    static func isAbruptClose(_ error: any Error) -> Bool {
        if let error = error as? NIOSSLError, case .uncleanShutdown = error { return true }
        if let error = error as? IOError, error.errnoCode == ECONNRESET || error.errnoCode == EPIPE { return true }
        return false
    }
}
