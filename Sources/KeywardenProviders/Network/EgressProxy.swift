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

    private init(listener: any Channel, port: Int) {
        self.listener = listener
        self.port = port
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
                    try channel.pipeline.syncOperations.addHandler(SOCKSServerHandshakeHandler())
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
        return EgressProxy(listener: listener, port: port)
    }

    /// Stops listening (connections in progress finish on their own).
    public func shutdown() async {
        try? await listener.close()
    }
}

/// Answers one SOCKS5 client: no authentication, CONNECT only, to an address the guard allows.
final class EgressConnectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ClientMessage
    typealias OutboundOut = ServerMessage

    let egressGuard: EgressGuard
    let connectTimeout: TimeAmount
    let logger: Logger
    private var requested = false

    init(guard egressGuard: EgressGuard, connectTimeout: TimeAmount, logger: Logger) {
        self.egressGuard = egressGuard
        self.connectTimeout = connectTimeout
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .greeting(let greeting):
            guard greeting.methods.contains(.noneRequired) else {
                context.writeAndFlush(wrapOutboundOut(.selectedAuthenticationMethod(.init(method: .noneAcceptable))), promise: nil)
                context.close(promise: nil)
                return
            }
            context.writeAndFlush(wrapOutboundOut(.selectedAuthenticationMethod(.init(method: .noneRequired))), promise: nil)
        case .request(let request):
            guard !requested, request.command == .connect else {
                reply(.commandUnsupported, context: context)
                return
            }
            requested = true
            connect(to: request.addressType, context: context)
        case .authenticationData:
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func reply(_ reply: SOCKSServerReply, context: ChannelHandlerContext) {
        let response = SOCKSResponse(reply: reply, boundAddress: .address(SocketAddress(sockaddr_in(), host: "")))
        context.writeAndFlush(wrapOutboundOut(.response(response))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    private func connect(to target: SOCKSAddress, context: ChannelHandlerContext) {
        let loop = context.eventLoop
        let egressGuard = self.egressGuard
        let verdict = loop.makePromise(of: EgressGuard.Verdict.self)
        switch target {
        case .address(let address):
            verdict.succeed(egressGuard.check(address: address))
        case .domain(let host, let port):
            verdict.completeWithTask { await egressGuard.check(host: host, port: port) }
        }
        verdict.futureResult.assumeIsolated().whenComplete { result in
            switch result {
            case .success(.allowed(let addresses)):
                self.open(addresses[...], context: context)
            case .success(.refused(let reason, let address)):
                self.logger.warning("egress refused", metadata: ["target": "\(target)", "address": "\(address)", "reason": "\(reason.rawValue)"])
                self.reply(.notAllowed, context: context)
            case .success(.unresolvable):
                self.reply(.hostUnreachable, context: context)
            case .failure:
                self.reply(.serverFailure, context: context)
            }
        }
    }

    /// Connects to the first address that answers, on this channel's event loop (the glue needs both on one loop).
    private func open(_ addresses: ArraySlice<SocketAddress>, context: ChannelHandlerContext) {
        guard let address = addresses.first else {
            reply(.hostUnreachable, context: context)
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
                    self.splice(context: context, outbound: outbound, address: address)
                case .failure:
                    self.open(addresses.dropFirst(), context: context)
                }
            }
    }

    private func splice(context: ChannelHandlerContext, outbound: any Channel, address: SocketAddress) {
        let (inboundGlue, outboundGlue) = GlueHandler.matchedPair()
        do {
            try outbound.pipeline.syncOperations.addHandler(outboundGlue)
            try context.pipeline.syncOperations.addHandler(inboundGlue)
        } catch {
            outbound.close(promise: nil)
            context.close(promise: nil)
            return
        }
        let response = SOCKSResponse(reply: .succeeded, boundAddress: .address(outbound.localAddress ?? address))
        context.writeAndFlush(wrapOutboundOut(.response(response))).assumeIsolated().whenComplete { result in
            guard case .success = result else {
                outbound.close(promise: nil)
                context.close(promise: nil)
                return
            }
            // Out of the way: bytes now flow through the glue (the handshake handler hands on anything it buffered).
            let pipeline = context.pipeline
            pipeline.syncOperations.removeHandler(context: context, promise: nil)
            if let handshake = try? pipeline.syncOperations.handler(type: SOCKSServerHandshakeHandler.self) {
                pipeline.syncOperations.removeHandler(handshake, promise: nil)
            }
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
