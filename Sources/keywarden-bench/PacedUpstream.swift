import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A paced streaming upstream for `Benchmarks/gateway-cost.sh`: a vendor that streams slowly, the way a model does.
///
/// **A measuring instrument, not production code.**
/// `keywarden-bench paced-upstream [--port P] [--events 64] [--pace-ms 20]` prints `listening PORT`, then answers
/// every POST: a body with `"stream":true` gets an OpenAI-shaped event stream (`text/event-stream`, chunked) of
/// `events` chat.completion.chunk events, then a usage chunk, then `data: [DONE]` — one event per pace, the first at
/// once, each written and flushed from the event loop by a scheduled task at `start + i × pace` (no drift, no thread
/// or task per stream, so thousands of streams cost little); any other body gets a fixed chat completion. HTTP/1.1
/// keep-alive, requests on a connection answered in order.
func pacedUpstreamServer(port: Int, events: Int, pace: TimeAmount) async throws {
    let script = PacedScript(events: max(1, events), pace: pace)
    let group = MultiThreadedEventLoopGroup.singleton
    let server = try await ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 4096)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                    withPipeliningAssistance: true, withErrorHandling: true, withOutboundHeaderValidation: false)
                try channel.pipeline.syncOperations.addHandler(PacedStreamHandler(script: script))
            }
        }
        .bind(host: "127.0.0.1", port: port)
        .get()
    FileHandle.standardOutput.write(Data("listening \(server.localAddress?.port ?? 0)\n".utf8))
    try await server.closeFuture.get()
}

/// What the paced upstream sends: the events' bytes (built once, shared by every stream) and their pace.
struct PacedScript: Sendable {
    let events: Int
    let pace: TimeAmount
    let firstChunk: ByteBuffer
    let chunk: ByteBuffer
    let usage: ByteBuffer
    let done: ByteBuffer
    let completion: ByteBuffer

    init(events: Int, pace: TimeAmount) {
        self.events = events
        self.pace = pace
        let head = #"data: {"id":"chatcmpl-paced","object":"chat.completion.chunk","created":1,"model":"gpt-5.4-mini","choices":[{"index":0,"delta":"#
        firstChunk = ByteBuffer(string: head + #"{"role":"assistant","content":"tok"},"finish_reason":null}]}"# + "\n\n")
        chunk = ByteBuffer(string: head + #"{"content":"tok"},"finish_reason":null}]}"# + "\n\n")
        usage = ByteBuffer(string: #"data: {"id":"chatcmpl-paced","object":"chat.completion.chunk","created":1,"model":"gpt-5.4-mini","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":\#(events),"total_tokens":\#(events + 12)}}"# + "\n\n")
        done = ByteBuffer(string: "data: [DONE]\n\n")
        completion = ByteBuffer(string: #"{"id":"chatcmpl-paced","object":"chat.completion","created":1,"model":"gpt-5.4-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello, benchmark."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16}}"#)
    }

    /// The bytes of event `index` (0-based): `events` chunks, then the usage chunk, then `[DONE]`.
    func event(_ index: Int) -> ByteBuffer {
        if index == 0 { return firstChunk }
        if index < events { return chunk }
        return index == events ? usage : done
    }

    /// Every event of a stream, the usage chunk and `[DONE]` included.
    var total: Int { events + 2 }
}

/// One server connection of the paced upstream: a fixed completion, or a paced stream, per request.
///
/// It collects a request's body, then answers with the fixed completion or a stream whose events are written by tasks
/// scheduled on the connection's own loop.
final class PacedStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let script: PacedScript
    private var body = ByteBuffer()
    private var keepAlive = true
    private var start = NIODeadline.now()
    private var next: Scheduled<Void>?

    init(script: PacedScript) { self.script = script }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            keepAlive = head.isKeepAlive
            body.clear()
        case .body(var part):
            if body.readableBytes < 65_536 { body.writeBuffer(&part) }
        case .end:
            let text = String(buffer: body)
            if text.contains(#""stream":true"#) || text.contains(#""stream": true"#) {
                startStream(context: context)
            } else {
                answerCompletion(context: context)
            }
        }
    }

    private func responseHead(contentType: String, length: Int?) -> HTTPResponseHead {
        var headers = HTTPHeaders([("Content-Type", contentType)])
        if let length { headers.add(name: "Content-Length", value: String(length)) }
        if contentType == "text/event-stream" { headers.add(name: "Cache-Control", value: "no-cache") }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        return HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
    }

    private func answerCompletion(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(responseHead(contentType: "application/json", length: script.completion.readableBytes))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(script.completion))), promise: nil)
        finish(context: context)
    }

    private func startStream(context: ChannelHandlerContext) {
        start = .now()
        context.write(wrapOutboundOut(.head(responseHead(contentType: "text/event-stream", length: nil))), promise: nil)
        send(0, context: context)
    }

    /// Writes event `index` and flushes it, then schedules the next at `start + (index + 1) × pace`, or ends the answer.
    private func send(_ index: Int, context: ChannelHandlerContext) {
        next = nil
        guard context.channel.isActive else { return }
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(script.event(index)))), promise: nil)
        guard index + 1 < script.total else {
            finish(context: context)
            return
        }
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let deadline = start + script.pace * Int64(index + 1)
        next = context.eventLoop.scheduleTask(deadline: deadline) {
            bound.value.handler.send(index + 1, context: bound.value.context)
        }
    }

    private func finish(context: ChannelHandlerContext) {
        guard !keepAlive else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        next?.cancel()
        next = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        next?.cancel()
        next = nil
        context.close(promise: nil)
    }
}
