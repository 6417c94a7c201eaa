import Logging
import NIOCore
import NIOPosix
import NIOSOCKS

/// A SOCKS5 proxy on loopback through which every connection Keywarden makes on a workspace's behalf goes:
/// it resolves the target, judges every address with ``EgressGuard`` and connects to an address it just judged,
/// so no spelling of a host, no name that resolves inward and no DNS rebinding reaches the network Keywarden runs in.
///
/// AsyncHTTPClient speaks SOCKS5 to it (a client configured with ``socksConfiguration``), sending the host name
/// (TLS stays end to end between Keywarden's client and the vendor, with the right server name). The proxy accepts
/// no authentication, listens on 127.0.0.1 only, and reaches only addresses the policy allows.
public final class EgressProxy: Sendable {
    let listener: any Channel
    /// The port it listens on (127.0.0.1).
    public let port: Int
    /// The guard it judges connections with.
    public let egressGuard: EgressGuard

    private init(listener: any Channel, port: Int, egressGuard: EgressGuard) {
        self.listener = listener
        self.port = port
        self.egressGuard = egressGuard
    }

    /// Starts the proxy on a free port of 127.0.0.1.
    public static func start(guard egressGuard: EgressGuard, connectTimeout: TimeAmount = .seconds(5), logger: Logger,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> EgressProxy {
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        EgressConnectHandler(guard: egressGuard, connectTimeout: connectTimeout, logger: logger)
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = listener.localAddress?.port else {
            try? await listener.close()
            throw HostResolutionError(host: "127.0.0.1", reason: "the egress proxy has no port")
        }
        return EgressProxy(listener: listener, port: port, egressGuard: egressGuard)
    }

    /// Stops listening (connections in progress finish on their own).
    public func shutdown() async {
        try? await listener.close()
    }
}

/// Answers one SOCKS5 client (RFC 1928, the subset AsyncHTTPClient speaks): no authentication, CONNECT only, to an
/// address the guard allows. Parsed here on raw bytes, so no input shape (a short read, a client that closes
/// mid-handshake, bytes after the request) can meet a typed handler that does not expect it.
final class EgressConnectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Stage {
        case greeting, request, connecting, done
    }

    let egressGuard: EgressGuard
    let connectTimeout: TimeAmount
    let logger: Logger
    private var stage = Stage.greeting
    private var buffer = ByteBuffer()
    private var spliced = false
    /// A handshake is small: a client that sends more before it is done is not a SOCKS client.
    static let maximumHandshake = 600

    init(guard egressGuard: EgressGuard, connectTimeout: TimeAmount, logger: Logger) {
        self.egressGuard = egressGuard
        self.connectTimeout = connectTimeout
        self.logger = logger
    }

    /// The longest a client may take from connecting to a spliced connection.
    static let handshakeDeadline: TimeAmount = .seconds(10)

    func handlerAdded(context: ChannelHandlerContext) {
        // A client that connects and says nothing (or never finishes) is closed: any local process could otherwise
        // hold connections open until the descriptors run out.
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.handshakeDeadline) {
            if !self.spliced { context.close(promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Half-closed before the splice: nothing more will come, so nothing to wait for.
        if !spliced, let event = event as? ChannelEvent, case .inputClosed = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Spliced: until this handler is out of the pipeline, bytes go on to the glue.
        if spliced {
            context.fireChannelRead(data)
            return
        }
        var bytes = unwrapInboundIn(data)
        buffer.writeBuffer(&bytes)
        guard buffer.readableBytes <= Self.maximumHandshake else {
            context.close(promise: nil)
            return
        }
        advance(context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func advance(context: ChannelHandlerContext) {
        switch stage {
        case .greeting:
            guard let version = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
                  let count = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) else { return }
            guard version == 5 else { context.close(promise: nil); return }
            guard let methods = buffer.getBytes(at: buffer.readerIndex + 2, length: Int(count)) else { return }
            buffer.moveReaderIndex(forwardBy: 2 + Int(count))
            guard methods.contains(0x00) else {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [5, 0xFF]))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                stage = .done
                return
            }
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [5, 0x00])), promise: nil)
            stage = .request
            advance(context: context)
        case .request:
            let start = buffer.readerIndex
            guard let header = buffer.getBytes(at: start, length: 4) else { return }
            guard header[0] == 5 else { context.close(promise: nil); return }
            var target: SOCKSTarget
            var length: Int
            switch header[3] {
            case 1:
                guard let raw = buffer.getBytes(at: start + 4, length: 6) else { return }
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                withUnsafeMutableBytes(of: &address.sin_addr) { $0.copyBytes(from: raw[0..<4]) }
                target = .address(SocketAddress(address, host: ""), port: Int(raw[4]) << 8 | Int(raw[5]))
                length = 10
            case 3:
                guard let size = buffer.getInteger(at: start + 4, as: UInt8.self),
                      let raw = buffer.getBytes(at: start + 5, length: Int(size) + 2) else { return }
                let name = String(decoding: raw[0..<Int(size)], as: UTF8.self)
                target = .domain(name, port: Int(raw[Int(size)]) << 8 | Int(raw[Int(size) + 1]))
                length = 5 + Int(size) + 2
            case 4:
                guard let raw = buffer.getBytes(at: start + 4, length: 18) else { return }
                var address = sockaddr_in6()
                address.sin6_family = sa_family_t(AF_INET6)
                withUnsafeMutableBytes(of: &address.sin6_addr) { $0.copyBytes(from: raw[0..<16]) }
                target = .address(SocketAddress(address, host: ""), port: Int(raw[16]) << 8 | Int(raw[17]))
                length = 22
            default:
                reply(0x08, context: context)
                return
            }
            buffer.moveReaderIndex(forwardBy: length)
            guard header[1] == 1 else {
                reply(0x07, context: context)
                return
            }
            stage = .connecting
            connect(to: target, context: context)
        case .connecting, .done:
            return
        }
    }

    enum SOCKSTarget: CustomStringConvertible {
        case address(SocketAddress, port: Int)
        case domain(String, port: Int)

        var description: String {
            switch self {
            case .address(let address, let port): return "\(address.ipAddress ?? "?"):\(port)"
            case .domain(let name, let port): return "\(name):\(port)"
            }
        }
    }

    /// SOCKS5 reply codes used: 0 succeeded, 1 general failure, 2 not allowed by ruleset, 4 host unreachable,
    /// 7 command not supported, 8 address type not supported.
    private func reply(_ code: UInt8, context: ChannelHandlerContext) {
        stage = .done
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [5, code, 0, 1, 0, 0, 0, 0, 0, 0]))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    private func connect(to target: SOCKSTarget, context: ChannelHandlerContext) {
        let loop = context.eventLoop
        let egressGuard = self.egressGuard
        let verdict = loop.makePromise(of: EgressGuard.Verdict.self)
        switch target {
        case .address(let address, let port):
            var withPort = address
            withPort.port = port
            verdict.succeed(egressGuard.check(address: withPort))
        case .domain(let host, let port):
            verdict.completeWithTask { await egressGuard.check(host: host, port: port) }
        }
        verdict.futureResult.assumeIsolated().whenComplete { result in
            guard context.channel.isActive else { return }
            switch result {
            case .success(.allowed(let addresses)):
                self.open(addresses[...], context: context)
            case .success(.refused(let reason, let address)):
                self.logger.warning("egress refused", metadata: ["target": "\(target)", "address": "\(address)", "reason": "\(reason.rawValue)"])
                self.reply(0x02, context: context)
            case .success(.unresolvable):
                self.reply(0x04, context: context)
            case .failure:
                self.reply(0x01, context: context)
            }
        }
    }

    /// Connects to the first address that answers, on this channel's event loop (the glue needs both on one loop).
    private func open(_ addresses: ArraySlice<SocketAddress>, context: ChannelHandlerContext) {
        guard let address = addresses.first else {
            reply(0x04, context: context)
            return
        }
        ClientBootstrap(group: context.eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(to: address)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let outbound):
                    self.splice(context: context, outbound: outbound)
                case .failure:
                    self.open(addresses.dropFirst(), context: context)
                }
            }
    }

    private func splice(context: ChannelHandlerContext, outbound: any Channel) {
        guard context.channel.isActive else {
            outbound.close(promise: nil)
            return
        }
        stage = .done
        let (inboundGlue, outboundGlue) = GlueHandler.matchedPair()
        do {
            try outbound.pipeline.syncOperations.addHandler(outboundGlue)
            try context.pipeline.syncOperations.addHandler(inboundGlue)
        } catch {
            outbound.close(promise: nil)
            context.close(promise: nil)
            return
        }
        spliced = true
        // Whatever the client sent after its request goes first, then the bytes flow through the glue.
        if buffer.readableBytes > 0 { outbound.writeAndFlush(buffer, promise: nil) }
        buffer = ByteBuffer()
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [5, 0, 0, 1, 0, 0, 0, 0, 0, 0]))).assumeIsolated().whenComplete { result in
            guard case .success = result else {
                outbound.close(promise: nil)
                context.close(promise: nil)
                return
            }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}

/// Joins two channels on one event loop: what one reads, the other writes, with back-pressure and half-closure.
final class GlueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    private init() {}

    static func matchedPair() -> (GlueHandler, GlueHandler) {
        let first = GlueHandler()
        let second = GlueHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    private func partnerWrite(_ data: NIOAny) { context?.write(data, promise: nil) }
    private func partnerFlush() { context?.flush() }
    private func partnerWriteEOF() { context?.close(mode: .output, promise: nil) }
    private func partnerCloseFull() { context?.close(promise: nil) }
    private var partnerWritable: Bool { context?.channel.isWritable ?? false }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { partner?.partnerWrite(data) }
    func channelReadComplete(context: ChannelHandlerContext) { partner?.partnerFlush() }
    func channelInactive(context: ChannelHandlerContext) { partner?.partnerCloseFull() }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { partner?.partnerCloseFull() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            partner?.partnerWriteEOF()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

/// Recognizes the error a client sees when the egress proxy refused its target.
public enum EgressRefusal {
    /// Whether `error` is the proxy's refusal of a target the policy does not allow.
    public static func isRefusal(_ error: any Error) -> Bool {
        if let failed = error as? SOCKSError.ConnectionFailed { return failed.reply == .notAllowed }
        return false
    }
}
