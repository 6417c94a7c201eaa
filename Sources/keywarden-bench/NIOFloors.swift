import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The floor of a lean forwarder on SwiftNIO itself, for `Benchmarks/gateway-cost.sh`: what passing a call through
/// costs when nothing sits between the server channel and a pooled upstream channel (no Hummingbird, no
/// AsyncHTTPClient, no Swift-concurrency hop per request or per chunk). **A measuring instrument, not production
/// code**: no TLS (the upstream is loopback http), no timeouts, no egress guard, no limits, no failover, no metrics.
///
/// `keywarden-bench nio-floors --upstream http://127.0.0.1:PORT [--port P]` prints `listening PORT`, then serves
/// `POST /hello` (the fixed chat completion, answered by the server channel itself: "nio fixed") and `POST /nio/…`
/// (forwarded to the upstream's `/…`: "nio pass").
///
/// The forwarder: each event loop has its own pool of keep-alive HTTP/1.1 client channels to the upstream, connected
/// on that loop. A request takes an idle channel of its server channel's loop (or connects a new one; parts that
/// arrive meanwhile wait in a small list), its head is copied (method, path, Host, Content-Type, Authorization,
/// Content-Length, X-Bench-Stream) and its body parts are written as they arrive. The upstream's head (status,
/// Content-Type, Content-Length; chunked otherwise) and body parts are written straight to the server channel and
/// flushed at the end of each upstream read, so an event stream passes through unbuffered. The client channel goes
/// back to the pool when its response's `.end` arrives, unless the upstream said `Connection: close`; a channel that
/// closes leaves the pool, and a call it was serving gets a 502 (or its connection closed if the head was sent).
func nioFloorsServer(upstream: String, port: Int) async throws {
    guard let url = URL(string: upstream), url.scheme == "http", let host = url.host else {
        throw NIOFloorError.badUpstream(upstream)
    }
    let upstreamPort = url.port ?? 80
    let address = try SocketAddress.makeAddressResolvingHost(host, port: upstreamPort)
    let hostHeader = url.port == nil ? host : "\(host):\(upstreamPort)"
    let completion = ByteBuffer(string: #"{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"gpt-5.4-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello, benchmark."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16}}"#)

    let group = MultiThreadedEventLoopGroup.singleton
    var pools: [ObjectIdentifier: UpstreamPool] = [:]
    for loop in group.makeIterator() {
        pools[ObjectIdentifier(loop)] = UpstreamPool(loop: loop, address: address, hostHeader: hostHeader)
    }
    let poolsByLoop = pools
    let server = try await ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 256)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.maxMessagesPerRead, value: 16)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                guard let pool = poolsByLoop[ObjectIdentifier(channel.eventLoop)] else { throw NIOFloorError.noPool }
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                    withPipeliningAssistance: true, withErrorHandling: true, withOutboundHeaderValidation: false)
                try channel.pipeline.syncOperations.addHandler(NIOFloorHandler(pool: pool, completion: completion))
            }
        }
        .bind(host: "127.0.0.1", port: port)
        .get()
    FileHandle.standardOutput.write(Data("listening \(server.localAddress?.port ?? 0)\n".utf8))
    try await server.closeFuture.get()
}

enum NIOFloorError: Error {
    case badUpstream(String)
    case noPool
}

/// One event loop's idle client channels to the upstream. Touched only on `loop` (hence `@unchecked Sendable`: it is
/// handed to the child-channel initializer, which runs on the same loop).
final class UpstreamPool: @unchecked Sendable {
    let loop: any EventLoop
    let address: SocketAddress
    let hostHeader: String
    private var idle: [UpstreamHandler] = []
    private let maxIdle = 64

    init(loop: any EventLoop, address: SocketAddress, hostHeader: String) {
        self.loop = loop
        self.address = address
        self.hostHeader = hostHeader
    }

    /// An idle, still open channel, last returned first (the warmest).
    func takeIdle() -> UpstreamHandler? {
        loop.assertInEventLoop()
        while let upstream = idle.popLast() {
            if upstream.isActive { return upstream }
        }
        return nil
    }

    func release(_ upstream: UpstreamHandler) {
        loop.assertInEventLoop()
        if idle.count < maxIdle { idle.append(upstream) } else { upstream.close() }
    }

    func remove(_ upstream: UpstreamHandler) {
        loop.assertInEventLoop()
        if let index = idle.firstIndex(where: { $0 === upstream }) { idle.remove(at: index) }
    }

    /// A new client channel on this pool's loop, with the HTTP/1.1 client codec and an `UpstreamHandler`.
    func connect() -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler(pool: self))
                }
            }
            .connect(to: address)
    }
}

/// The client end of one pooled upstream channel: writes a request's parts, hands the answer's parts to the server
/// handler it currently serves (`downstream`, on the same loop), and goes back to the pool at the answer's `.end`.
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let pool: UpstreamPool
    private var context: ChannelHandlerContext?
    private var keepAlive = true
    var downstream: NIOFloorHandler?

    init(pool: UpstreamPool) { self.pool = pool }

    var isActive: Bool { context?.channel.isActive ?? false }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func write(_ part: HTTPClientRequestPart, flush: Bool) {
        guard let context else { return }
        if flush {
            context.writeAndFlush(wrapOutboundOut(part), promise: nil)
        } else {
            context.write(wrapOutboundOut(part), promise: nil)
        }
    }

    func close() { context?.close(promise: nil) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            keepAlive = head.isKeepAlive
            downstream?.upstreamHead(head)
        case .body(let buffer):
            downstream?.upstreamBody(buffer)
        case .end:
            let served = downstream
            downstream = nil
            if keepAlive { pool.release(self) } else { context.close(promise: nil) }
            served?.upstreamEnd()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        downstream?.upstreamFlush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        pool.remove(self)
        let served = downstream
        downstream = nil
        served?.upstreamFailed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// The server end: answers `/hello` itself, forwards `/nio/…` over its loop's pool.
final class NIOFloorHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Route { case none, fixed, forward, notFound }

    /// Looked up with NIO's ASCII case-insensitive `first(name:)`, no Foundation string comparison on the call's path.
    /// `X-Bench-Stream` asks the benchmark's upstream for an event stream.
    private static let forwardedRequestHeaders = ["Content-Type", "Authorization", "Content-Length", "X-Bench-Stream"]
    private static let forwardedResponseHeaders = ["Content-Type", "Content-Length"]

    private let pool: UpstreamPool
    private let completion: ByteBuffer
    private var context: ChannelHandlerContext?
    private var route = Route.none
    private var keepAlive = true
    private var requestEnded = false
    private var responded = false
    /// The upstream channel serving the current request, once it is ready.
    private var upstream: UpstreamHandler?
    /// Request parts that arrived while a new upstream channel was connecting.
    private var pending: [HTTPClientRequestPart] = []

    init(pool: UpstreamPool, completion: ByteBuffer) {
        self.pool = pool
        self.completion = completion
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            keepAlive = head.isKeepAlive
            requestEnded = false
            responded = false
            if head.uri == "/hello" {
                route = .fixed
            } else if head.uri.hasPrefix("/nio/") {
                route = .forward
                startForwarding(head)
            } else {
                route = .notFound
            }
        case .body(let buffer):
            if route == .forward { forward(.body(.byteBuffer(buffer)), flush: false) }
        case .end:
            requestEnded = true
            switch route {
            case .fixed: respond(status: .ok, body: completion)
            case .forward: forward(.end(nil), flush: true)
            case .notFound: respond(status: .notFound, body: nil)
            case .none: break
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The client left mid-request: the upstream channel holds half a request, so it cannot be reused.
        if let upstream, !requestEnded {
            upstream.downstream = nil
            upstream.close()
        }
        upstream = nil
        context.fireChannelInactive()
    }

    private func startForwarding(_ head: HTTPRequestHead) {
        var headers = HTTPHeaders()
        headers.reserveCapacity(6)
        headers.add(name: "Host", value: pool.hostHeader)
        for name in Self.forwardedRequestHeaders {
            if let value = head.headers.first(name: name) { headers.add(name: name, value: value) }
        }
        let outbound = HTTPRequestHead(version: .http1_1, method: head.method, uri: String(head.uri.dropFirst(4)), headers: headers)
        if let idle = pool.takeIdle() {
            attach(idle)
            idle.write(.head(outbound), flush: false)
            return
        }
        pending = [.head(outbound)]
        pool.connect().assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                guard let upstream = try? channel.pipeline.syncOperations.handler(type: UpstreamHandler.self) else {
                    channel.close(promise: nil)
                    self.upstreamFailed()
                    return
                }
                guard self.context != nil, self.route == .forward else {
                    // The client left before the channel was ready; nothing was sent on it.
                    self.pending.removeAll()
                    self.pool.release(upstream)
                    return
                }
                self.attach(upstream)
                let parts = self.pending
                self.pending.removeAll()
                for (index, part) in parts.enumerated() { upstream.write(part, flush: index == parts.count - 1) }
            case .failure:
                self.pending.removeAll()
                self.upstreamFailed()
            }
        }
    }

    private func attach(_ upstream: UpstreamHandler) {
        self.upstream = upstream
        upstream.downstream = self
    }

    private func forward(_ part: HTTPClientRequestPart, flush: Bool) {
        if let upstream {
            upstream.write(part, flush: flush)
        } else {
            pending.append(part)
        }
    }

    private func respond(status: HTTPResponseStatus, body: ByteBuffer?) {
        guard let context else { return }
        var headers = HTTPHeaders()
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        headers.add(name: "Content-Length", value: String(body?.readableBytes ?? 0))
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if let body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        finish()
    }

    private func finish() {
        route = .none
        guard let context else { return }
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    // Called by the UpstreamHandler serving this request, on the same event loop.

    func upstreamHead(_ head: HTTPResponseHead) {
        guard let context else { return }
        var headers = HTTPHeaders()
        headers.reserveCapacity(3)
        for name in Self.forwardedResponseHeaders {
            if let value = head.headers.first(name: name) { headers.add(name: name, value: value) }
        }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        responded = true
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: head.status, headers: headers))), promise: nil)
    }

    func upstreamBody(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    func upstreamFlush() {
        context?.flush()
    }

    func upstreamEnd() {
        upstream = nil
        finish()
    }

    func upstreamFailed() {
        upstream = nil
        if responded {
            route = .none
            context?.close(promise: nil)
        } else {
            keepAlive = false
            respond(status: .badGateway, body: nil)
        }
    }
}
