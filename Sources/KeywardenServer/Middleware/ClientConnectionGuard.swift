import NIOCore
import NIOHTTPTypes
import Synchronization

/// What a client connection may hold of the server, whatever the client does.
public struct ClientConnectionLimits: Sendable {
    /// How long a new connection may take to send its first request head (`KEYWARDEN_HEAD_TIMEOUT`).
    public var headTimeout: Duration
    /// How long a kept-alive connection may wait for its next request head after an answer (`KEYWARDEN_IDLE_TIMEOUT`).
    public var idleTimeout: Duration
    /// How many client connections may be open at once; a connection past it is closed at once
    /// (`KEYWARDEN_MAX_CONNECTIONS`).
    public var maximumConnections: Int
    /// How long a request's body may go without a byte arriving, from its head on (`KEYWARDEN_BODY_TIMEOUT`, as nginx's
    /// `client_body_timeout`): a body that stops holds a connection, and a handler, no longer; a large upload that keeps
    /// coming, however slowly a vendor takes it, is not cut.
    public var bodyTimeout: Duration
    /// How long a gateway call's answer may wait in the connection without the client taking a byte of it
    /// (`KEYWARDEN_SEND_TIMEOUT`, as nginx's `send_timeout`): a client that stops reading holds its call, its vendor
    /// connection and its budget hold no longer; a slow reader that keeps taking is not cut.
    public var sendTimeout: Duration

    public init(headTimeout: Duration = .seconds(30), idleTimeout: Duration = .seconds(75), maximumConnections: Int = 4_096,
                bodyTimeout: Duration = .seconds(60), sendTimeout: Duration = .seconds(60)) {
        self.headTimeout = headTimeout
        self.idleTimeout = idleTimeout
        self.maximumConnections = max(1, maximumConnections)
        self.bodyTimeout = bodyTimeout
        self.sendTimeout = sendTimeout
    }
}

/// Closes a client connection whose request body stalls, or that idles too long between requests, and tells
/// ``ClientDepartures`` when its client leaves.
///
/// It sits after the HTTP decoder, added once the connection's first request head has arrived (``ConnectionAdmission``
/// counts the connection and times that first head, before HTTP or a WebSocket upgrade is chosen). After each answer, a
/// kept-alive connection must bring its next head within ``ClientConnectionLimits/idleTimeout`` (bytes trickling in, a
/// head never finished, count as nothing). A request's body may go no longer than ``ClientConnectionLimits/bodyTimeout``
/// without a part arriving. While a request is being answered no limit runs (a timer left pending finds nothing to do):
/// a long stream is not cut.
final class ClientConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let limits: ClientConnectionLimits
    private let departures: ClientDepartures?
    /// This connection, told when its client leaves.
    private var connection: ClientDepartures.Connection?
    /// When the connection closes unless something re-arms or disarms it first; `nil`: no limit runs.
    private var deadline: NIODeadline?
    /// The one timer scheduled, and when it fires. Re-arming later does not move it (each request arms and disarms
    /// twice; scheduling and cancelling a task each time showed on the profile): when it fires before the deadline it is
    /// scheduled again for the rest.
    private var timer: (task: Scheduled<Void>, fires: NIODeadline, number: UInt64)?
    /// The number of the last timer scheduled: a timer that fires after another replaced it does nothing.
    private var timerNumber: UInt64 = 0
    /// Whether a request's head came and its end has not: its body is still arriving.
    private var receiving = false
    /// Requests whose head has come and whose answer has not been written whole: pipelined requests wait their turn,
    /// and the connection is idle only when none is left.
    private var unanswered = 0

    init(limits: ClientConnectionLimits, departures: ClientDepartures? = nil) {
        self.limits = limits
        self.departures = departures
    }

    func handlerAdded(context: ChannelHandlerContext) {
        connection = departures?.opened(context.channel)
        // The first head is on its way (it is what chose HTTP); its arrival starts the body's timer.
        arm(limits.headTimeout, context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
        clientLeft(context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimer()
        clientLeft(context)
        context.fireChannelInactive()
    }

    /// The end of the client's input is its leaving (a client that gives up closes its connection; HTTP clients do not
    /// half-close and wait, and nginx reads it the same way: 499): the work for its request is cancelled.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { connection?.clientLeft() }
        context.fireUserInboundEventTriggered(event)
    }

    private func clientLeft(_ context: ChannelHandlerContext) {
        guard let connection else { return }
        self.connection = nil
        connection.clientLeft()
        departures?.closed(context.channel)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            receiving = true
            unanswered += 1
            arm(limits.bodyTimeout, context: context)
        case .end:
            receiving = false
            // Answered before its body ended (a refusal need not wait), and nothing else waits: now idle; else being
            // answered, untimed.
            if unanswered == 0 { arm(limits.idleTimeout, context: context) } else { disarm() }
        case .body:
            // Each part of the body restarts its limit.
            if receiving { arm(limits.bodyTimeout, context: context) }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            unanswered = max(0, unanswered - 1)
            // An answer written while a body still arrives leaves the body's limit running; while a pipelined request
            // is still being answered, no timer runs.
            if !receiving {
                if unanswered == 0 { arm(limits.idleTimeout, context: context) } else { disarm() }
            }
        }
        context.write(data, promise: promise)
    }

    private func arm(_ limit: Duration, context: ChannelHandlerContext) {
        let nanoseconds = limit.components.seconds * 1_000_000_000 + limit.components.attoseconds / 1_000_000_000
        let deadline = NIODeadline.now() + .nanoseconds(nanoseconds)
        self.deadline = deadline
        if let timer, timer.fires <= deadline { return }
        schedule(at: deadline, context: context)
    }

    private func schedule(at deadline: NIODeadline, context: ChannelHandlerContext) {
        timer?.task.cancel()
        timerNumber &+= 1
        let number = timerNumber
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let task = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = bound.value
            handler.timerFired(number, context: context)
        }
        timer = (task, deadline, number)
    }

    private func timerFired(_ number: UInt64, context: ChannelHandlerContext) {
        // One cancelled in the tick it was due, and replaced since, leaves the current timer alone.
        guard timer?.number == number else { return }
        timer = nil
        guard let deadline else { return }
        if NIODeadline.now() < deadline {
            schedule(at: deadline, context: context)
        } else {
            self.deadline = nil
            context.close(promise: nil)
        }
    }

    /// Stops the limit; the timer, if any, finds nothing to do when it fires (it is cancelled when the handler goes).
    private func disarm() {
        deadline = nil
    }

    private func cancelTimer() {
        deadline = nil
        timer?.task.cancel()
        timer = nil
    }
}
