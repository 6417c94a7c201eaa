import HTTPTypes
import KeywardenGateway
import KeywardenProviders
import NIOCore
import NIOHTTPTypes
import Synchronization

/// The data plane on a client connection: answers gateway calls on the connection's event loop and passes every other
/// request on to the router behind it, answering pipelined requests in order.
///
/// It sits after the HTTP decoding (and ``ClientConnectionGuard``), before Hummingbird's own handlers: a gateway call
/// never reaches the router. The decisions (whose turn, when to read, when to close) are
/// ``ClientConnectionStateMachine``'s; this handler carries them out. A call runs as one task whose executor is this
/// event loop (``EventLoopTaskExecutor``); its body is read here (collected, or streamed with back-pressure) and its
/// answer written here, the head and a whole body in one write. An answer the client stops taking is given up on after
/// the send timeout (``SendTimeout``): the connection closes, and the call ends as when its client leaves.
final class GatewayChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// What came in, as the state machine holds it.
    enum Incoming {
        case part(HTTPRequestPart, route: GatewayFaces.Route?)
        case error(any Error)
    }

    /// Where the call's request body goes as it is read.
    private enum Intake {
        case ignoring
        case collecting(limit: Int, EventLoopPromise<ByteBuffer>)
        case streaming(GatewayDataPlane.RequestBodyStream.Source)
    }

    private let plane: GatewayDataPlane
    private var machine = ClientConnectionStateMachine<Incoming>()
    private var intake = Intake.ignoring
    /// The body collected so far (apart from ``intake``, so appending does not copy it).
    private var collected = ByteBuffer()
    private var context: ChannelHandlerContext?
    private var executor: EventLoopTaskExecutor?
    /// Writers waiting for the client to take more.
    private var writabilityWaiters: [EventLoopPromise<Void>] = []
    /// Whether `channelRead` is under way (its `channelReadComplete` follows; replayed parts need one of their own).
    private var reading = false
    /// The `Date` header's value, made once a second.
    private var dates = HTTPDate.Cache()
    /// A flush of written body parts is on its way.
    private var flushScheduled = false
    /// The number of the gateway call under way (signals of an earlier one's body are told apart by it).
    private var exchange = 0
    /// Whether the client still takes the call's answer (``SendTimeout``), and its timer.
    private var sending: SendTimeout
    private var sendTimer: Scheduled<Void>?

    /// Whether a request asks to close the connection after its answer (a `close` token in `Connection`, in any case, as
    /// the HTTP parser reads it: it takes no request after one).
    static func asksToClose(_ fields: HTTPFields) -> Bool {
        guard let value = fields[.connection] else { return false }
        return value.lowercased().split(separator: ",").contains { $0.filter { $0 != " " && $0 != "\t" } == "close" }
    }

    /// - Parameter sendTimeout: how long a call's answer may wait in the connection without the client taking a byte of
    ///   it (`KEYWARDEN_SEND_TIMEOUT`).
    init(plane: GatewayDataPlane, sendTimeout: Duration) {
        self.plane = plane
        sending = SendTimeout(limit: sendTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        executor = EventLoopTaskExecutor(context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        connectionEnded()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        connectionEnded()
        context.fireChannelInactive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            // A WebSocket upgrade that was not taken is the router's to answer (another upgrade, such as h2c, is ignored
            // as HTTP/1.1 allows).
            let asksWebSocket = head.headerFields[.upgrade].map { ASCIIText.contains("websocket", ignoringCaseIn: $0) } ?? false
            let route = asksWebSocket ? nil : plane.faces.route(method: head.method.rawValue, path: Substring(head.path ?? "/"))
            let closeAfter = Self.asksToClose(head.headerFields)
            machine.received(.part(part, route: route), .head(route == nil ? .router : .gateway, closeAfter: closeAfter))
        case .body:
            machine.received(.part(part, route: nil), .body)
        case .end:
            machine.received(.part(part, route: nil), .end)
        }
        reading = true
        carryOut(context)
        reading = false
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        machine.received(.error(error), .error)
        carryOut(context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        machine.quiesce()
        carryOut(context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            let waiters = writabilityWaiters
            writabilityWaiters.removeAll()
            for waiter in waiters { waiter.succeed() }
        }
        carryOut(sending.writabilityChanged(context.channel.isWritable, waiting: Self.waiting(context)))
        context.fireChannelWritabilityChanged()
    }

    // MARK: Outbound (the router's answers)

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        if case .end = unwrapOutboundIn(data), machine.currentOwner == .router {
            machine.answerEnded()
            carryOut(context)
        }
    }

    func read(context: ChannelHandlerContext) {
        machine.readRequested()
        carryOut(context)
    }

    // MARK: Carrying out the machine's actions

    private func carryOut(_ context: ChannelHandlerContext) {
        var forwarded = false
        while let action = machine.nextAction() {
            switch action {
            case .forward(.part(let part, _)):
                context.fireChannelRead(wrapInboundOut(part))
                forwarded = true
            case .forward(.error(let error)):
                context.fireErrorCaught(error)
            case .startCall(let incoming):
                startCall(incoming, context: context)
            case .feedCall(.part(let part, _)):
                feed(part)
            case .feedCall(.error(let error)):
                failIntake(error)
            case .discard:
                break
            case .forwardQuiesce:
                context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            case .read:
                context.read()
            case .close:
                context.close(promise: nil)
            }
        }
        // Parts passed on outside a read (they waited their turn) are delivered as a read's would be.
        if forwarded, !reading { context.fireChannelReadComplete() }
    }

    private func startCall(_ incoming: Incoming, context: ChannelHandlerContext) {
        guard case .part(.head(let head), let route?) = incoming, let executor else { return }
        let receivedAt = ContinuousClock.now
        let fields = head.headerFields
        exchange &+= 1
        let body: GatewayDataPlane.Body
        switch GatewayRequestBody.plan(method: head.method.rawValue, declaredLength: fields[.contentLength].flatMap { Int($0) },
                                       replayLimit: plane.replayLimit, contentType: fields[.contentType]) {
        case .empty:
            intake = .ignoring
            body = .empty
        case .collect(let limit):
            let promise = context.eventLoop.makePromise(of: ByteBuffer.self)
            collected = ByteBuffer()
            intake = .collecting(limit: limit, promise)
            body = .collected(promise.futureResult, limit: limit)
            // Nothing more is read of the body until the call was authenticated and asks for it (``ClientAnswer/wantBody()``).
            machine.bodyDemand(false)
        case .streamOnce(let length):
            let producer = GatewayDataPlane.RequestBodyStream.makeSequence(
                backPressureStrategy: .init(lowWatermark: 2, highWatermark: 16), finishOnDeinit: false,
                delegate: BodyDemand(handler: NIOLoopBound(self, eventLoop: context.eventLoop), exchange: exchange))
            intake = .streaming(producer.source)
            body = .streamed(length: length, producer.sequence)
        }
        let answer = ClientAnswer(handler: NIOLoopBound(self, eventLoop: context.eventLoop), exchange: exchange)
        let plane = self.plane
        let connection = plane.departures.connection(ObjectIdentifier(context.channel))
        plane.calls.begin()
        Task(executorPreference: executor) {
            await plane.serve(head, route: route, body: body, answer: answer, receivedAt: receivedAt, connection: connection)
            plane.calls.end()
        }
    }

    private func feed(_ part: HTTPRequestPart) {
        switch (intake, part) {
        case (.collecting(let limit, let promise), .body(let chunk)):
            guard collected.readableBytes + chunk.readableBytes <= limit else {
                intake = .ignoring
                collected = ByteBuffer()
                return promise.fail(GatewayDataPlane.BodyTooLarge())
            }
            collected.writeImmutableBuffer(chunk)
        case (.collecting(_, let promise), .end):
            intake = .ignoring
            promise.succeed(collected)
            collected = ByteBuffer()
        case (.streaming(let source), .body(let chunk)):
            if case .stopProducing = source.yield(chunk) { machine.bodyDemand(false) }
        case (.streaming(let source), .end):
            intake = .ignoring
            source.finish()
        case (.ignoring, _), (_, .head):
            break
        }
    }

    /// The call's body cannot be read whole: its reader learns why.
    private func failIntake(_ error: any Error) {
        switch intake {
        case .collecting(_, let promise):
            collected = ByteBuffer()
            promise.fail(error)
        case .streaming(let source):
            source.finish(error)
        case .ignoring:
            break
        }
        intake = .ignoring
    }

    /// The connection closed: the call's body ends in an error, its writer is released, nothing more starts.
    private func connectionEnded() {
        machine.channelClosed()
        carryOut(sending.answerEnded())
        failIntake(ChannelError.ioOnClosedChannel)
        let waiters = writabilityWaiters
        writabilityWaiters.removeAll()
        for waiter in waiters { waiter.fail(ChannelError.ioOnClosedChannel) }
    }

    // MARK: The call's answer (on the loop)

    /// Writes a streamed answer's head; it is flushed with the parts written in the same loop turn (a stream's first
    /// event, when it came with the head, goes out in the same system call).
    fileprivate func writeHead(_ head: HTTPResponse) {
        guard let context else { return }
        answerBegins(context)
        context.write(wrapOutboundOut(.head(stamped(head))), promise: nil)
        flushSoon(context)
    }

    fileprivate func writeComplete(_ head: HTTPResponse, body: ByteBuffer) {
        guard let context else { return }
        answerBegins(context)
        context.write(wrapOutboundOut(.head(stamped(head))), promise: nil)
        if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(body)), promise: nil) }
        writeEnd(context)
    }

    /// Every answer's `Date` and `Server` (as the router's answers have them; a vendor's `Server` is not passed on).
    private func stamped(_ head: HTTPResponse) -> HTTPResponse {
        var head = head
        head.headerFields[.date] = dates.now()
        head.headerFields[.server] = "Keywarden"
        if machine.closesAfterAnswer { head.headerFields[.connection] = "close" }
        return head
    }

    /// What became of a part written.
    fileprivate enum Written: Sendable {
        case taken
        /// The client's socket is full: go on when this completes.
        case wait(EventLoopFuture<Void>)
        /// The connection is gone.
        case closed
    }

    /// Writes a part of the body; the flush comes once the parts at hand are written (one flush, one system call, for
    /// the parts a vendor's read brought together).
    fileprivate func writeBody(_ chunk: ByteBuffer) -> Written {
        guard let context, context.channel.isActive else { return .closed }
        context.write(wrapOutboundOut(.body(chunk)), promise: nil)
        flushSoon(context)
        guard !context.channel.isWritable else { return .taken }
        let waiter = context.eventLoop.makePromise(of: Void.self)
        writabilityWaiters.append(waiter)
        return .wait(waiter.futureResult)
    }

    fileprivate func writeEnd() {
        guard let context else { return }
        writeEnd(context)
    }

    /// Flushes what was written once the work at hand on the loop is done (one flush for the parts written meanwhile).
    private func flushSoon(_ context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute { handler.value.flushWritten() }
    }

    private func flushWritten() {
        flushScheduled = false
        context?.flush()
    }

    private func writeEnd(_ context: ChannelHandlerContext) {
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        // The next request's turn (or the close the client asked for) comes once the answer is out.
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        written.futureResult.whenComplete { _ in handler.value.answered() }
        // Not out at once (it ran `answered()` if it was): the end waits for the client to take what is before it.
        if sending.isAnswering { carryOut(sending.endWritten(waiting: Self.waiting(context))) }
    }

    fileprivate func abort() {
        guard let context else { return }
        // What was written goes out before the close (a close drops writes not yet flushed).
        context.flush()
        context.close(promise: nil)
    }

    private func answered() {
        carryOut(sending.answerEnded())
        guard let context else { return }
        // Answered before its body ended (a refusal need not wait): what came of the body is let go, and the rest is
        // read and dropped.
        failIntake(CancellationError())
        machine.answerEnded()
        carryOut(context)
    }

    /// The call of exchange `exchange` wants its body read (or no more for now); a late signal of an earlier call's is
    /// ignored, so it cannot release the next call's body before that call was authenticated.
    fileprivate func bodyDemand(_ wanted: Bool, exchange: Int) {
        guard let context, exchange == self.exchange else { return }
        machine.bodyDemand(wanted)
        carryOut(context)
    }

    // MARK: The send timeout

    /// A call's answer begins: it is watched until it is out.
    private func answerBegins(_ context: ChannelHandlerContext) {
        // The bytes waiting count only when the connection is full already (a writable one arms no timer).
        carryOut(sending.answerBegan(waiting: context.channel.isWritable ? 0 : Self.waiting(context)))
    }

    /// The bytes written to the connection and not yet taken by the client's socket.
    private static func waiting(_ context: ChannelHandlerContext) -> Int {
        (try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0
    }

    private func carryOut(_ action: SendTimeout.Action?) {
        switch action {
        case nil:
            break
        case .arm(let timer)?:
            sendTimer?.cancel()
            guard let context else { return }
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            sendTimer = context.eventLoop.scheduleTask(in: TimeAmount(sending.limit)) { handler.value.sendDeadlinePassed(timer: timer) }
        case .cancel?:
            sendTimer?.cancel()
            sendTimer = nil
        case .abandon?:
            sendTimer = nil
            guard let context else { return }
            let limit = sending.limit.components
            plane.logger.notice("gateway: the client took nothing of its answer within the send timeout; the call is abandoned", metadata: [
                "send_timeout_s": "\(Double(limit.seconds) + Double(limit.attoseconds) / 1e18)",
                "unsent_bytes": "\(Self.waiting(context))",
            ])
            // Nothing flushed goes: the client takes nothing. The call sees its connection gone (499, the vendor's stream
            // cancelled), as when its client leaves.
            context.close(promise: nil)
        }
    }

    private func sendDeadlinePassed(timer: Int) {
        guard let context else { return }
        carryOut(sending.deadlinePassed(timer: timer, waiting: Self.waiting(context)))
    }

    /// Tells the handler when the call's reader of a streamed request body wants more (or has gone).
    struct BodyDemand: NIOAsyncSequenceProducerDelegate {
        let handler: NIOLoopBound<GatewayChannelHandler>
        let exchange: Int

        func produceMore() {
            handler.eventLoop.execute { handler.value.bodyDemand(true, exchange: exchange) }
        }

        func didTerminate() {
            handler.eventLoop.execute { handler.value.bodyDemand(true, exchange: exchange) }
        }
    }
}

/// Writes a gateway call's answer to its client's connection, from the call's task.
///
/// The task runs on the connection's event loop (its executor preference), so each write is made in place; from
/// anywhere else it is made on the loop. Once the head is written, an error can only cut the answer (``abort()``).
final class ClientAnswer: Sendable {
    private let handler: NIOLoopBound<GatewayChannelHandler>
    /// The number of the call on its connection.
    private let exchange: Int
    private let started = Atomic(false)

    init(handler: NIOLoopBound<GatewayChannelHandler>, exchange: Int) {
        self.handler = handler
        self.exchange = exchange
    }

    /// Whether the head was written (an error can no longer be answered).
    var headWritten: Bool { started.load(ordering: .relaxed) }

    /// The head and a whole body, in one write, and the end.
    func complete(_ head: HTTPResponse, body: ByteBuffer) async {
        started.store(true, ordering: .relaxed)
        var head = head
        head.headerFields[.contentLength] = String(body.readableBytes)
        await onLoop { [head] in $0.writeComplete(head, body: body) }
    }

    /// The head of an answer whose body follows in parts.
    func head(_ head: HTTPResponse) async throws {
        started.store(true, ordering: .relaxed)
        await onLoop { $0.writeHead(head) }
    }

    /// One part of the body; returns once the client may take more, and throws when the client is gone.
    func body(_ chunk: ByteBuffer) async throws {
        switch await onLoop({ $0.writeBody(chunk) }) {
        case .taken: return
        case .wait(let writable): try await writable.get()
        case .closed: throw ChannelError.ioOnClosedChannel
        }
    }

    /// The call was authenticated: the rest of a collected body may be read.
    func wantBody() async {
        let exchange = self.exchange
        await onLoop { $0.bodyDemand(true, exchange: exchange) }
    }

    /// The end of a body written in parts.
    func end() async {
        await onLoop { $0.writeEnd() }
    }

    /// Cuts the answer: the connection closes.
    func abort() async {
        await onLoop { $0.abort() }
    }

    private func onLoop<Result: Sendable>(_ body: @escaping @Sendable (GatewayChannelHandler) -> Result) async -> Result {
        let handler = self.handler
        if handler.eventLoop.inEventLoop { return body(handler.value) }
        return await withCheckedContinuation { continuation in
            handler.eventLoop.execute { continuation.resume(returning: body(handler.value)) }
        }
    }
}
