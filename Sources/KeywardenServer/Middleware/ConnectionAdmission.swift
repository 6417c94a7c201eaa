import HummingbirdCore
import Logging
import NIOCore
import Synchronization

/// The first handler of every client connection: counts it against the server's maximum (a connection past it is closed
/// at once) and closes one whose first request head has not arrived whole within ``ClientConnectionLimits/headTimeout``.
///
/// It reads bytes, before HTTP is decoded: whether the connection stays HTTP or becomes a WebSocket is chosen by that
/// first head, and it must be timed either way. Once the head's blank line has passed it only counts.
final class ConnectionAdmission: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The connections open across the server.
    final class Count: Sendable {
        let open = Atomic(0)
        let maximum: Int

        init(maximum: Int) { self.maximum = maximum }
    }

    private let count: Count
    private let headTimeout: Duration
    private var counted = false
    private var timer: Scheduled<Void>?
    /// Where the bytes so far stand against a head's end (a blank line, CRLF or LF alone): -1 before the head's first
    /// byte (the HTTP parser skips line ends there, so they end nothing), 0 inside a line, 1 just after a line feed, 2
    /// after a line feed and a carriage return, 3 once the first head is whole.
    private var state = -1
    /// Whether the connection's later bytes are dropped: the HTTP decoder stopped reading them (after a request that
    /// asked to upgrade, or a CONNECT), and would otherwise keep them all until the connection closes.
    private var discarding = false

    init(count: Count, headTimeout: Duration) {
        self.count = count
        self.headTimeout = headTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        counted = true
        if count.open.add(1, ordering: .relaxed).newValue > count.maximum {
            context.close(promise: nil)
            return
        }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let nanoseconds = headTimeout.components.seconds * 1_000_000_000 + headTimeout.components.attoseconds / 1_000_000_000
        timer = context.eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) { bound.value.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        uncount()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        uncount()
        context.fireChannelInactive()
    }

    /// Drops every byte that arrives from now on (the connection closes after its answer; its end is still seen).
    func discardInput() {
        discarding = true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if discarding { return }
        if state < 3 {
            for byte in unwrapInboundIn(data).readableBytesView {
                if state == -1, byte == 0x0A || byte == 0x0D { continue }
                switch byte {
                case 0x0A: state = state <= 0 ? 1 : 3
                case 0x0D: state = state == 1 ? 2 : 0
                default: state = 0
                }
                if state == 3 { break }
            }
            if state == 3 {
                timer?.cancel()
                timer = nil
            }
        }
        context.fireChannelRead(data)
    }

    private func uncount() {
        guard counted else { return }
        counted = false
        count.open.subtract(1, ordering: .relaxed)
    }
}

/// A server child channel with ``ConnectionAdmission`` first in its pipeline, before `inner` sets up the rest, and
/// ``RequestHeadHygiene`` right after the HTTP decoder `inner` puts in.
struct AdmittedChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner
    let admission: @Sendable () -> ConnectionAdmission

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(admission(), position: .first)
        }.flatMap { inner.setup(channel: channel, logger: logger) }.flatMapThrowing { value in
            try RequestHeadHygiene.install(in: channel)
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}
