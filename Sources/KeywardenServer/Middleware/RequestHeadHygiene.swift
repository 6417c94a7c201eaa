import NIOCore
import NIOHTTP1

/// Makes every request head one the rest of the pipeline reads as HTTP/1.1 meant it, right after the HTTP decoder:
///
/// - An `Upgrade` to anything but WebSocket (`h2c`, TLS, a made-up protocol) is ignored, as RFC 9110 §7.8 lets a server
///   do: the header, its `Connection` token and `HTTP2-Settings` are removed, and the request is answered over HTTP/1.1.
///   (NIO's upgrade handler loses the head of a request whose upgrade no upgrader takes, and refuses its body: the
///   client got no answer at all.) When `Connection` named the upgrade, the HTTP decoder before this handler has stopped
///   reading the connection as HTTP after this request: the answer says `Connection: close`, and the client opens a new
///   connection for its next request.
/// - Runs of `/` in the path are one `/` (as nginx's `merge_slashes`): `//openai/v1/models` is `/openai/v1/models`
///   for the router and the gateway alike. The query is left as it is.
final class RequestHeadHygiene: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        if Self.asksWebSocket(head) {
            // Taken, the connection carries WebSocket frames from now on, which this handler does not read: it leaves
            // (a refused upgrade's later requests on the connection go without it).
            var head = head
            if let merged = Self.mergedSlashes(head.uri) { head.uri = merged }
            context.fireChannelRead(wrapInboundOut(.head(head)))
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        guard let cleaned = Self.cleaned(head) else { return context.fireChannelRead(data) }
        context.fireChannelRead(wrapInboundOut(.head(cleaned)))
    }

    /// Whether `head` asks to upgrade to WebSocket.
    static func asksWebSocket(_ head: HTTPRequestHead) -> Bool {
        head.headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
    }

    /// `head` made clean, or `nil` when it already is.
    static func cleaned(_ head: HTTPRequestHead) -> HTTPRequestHead? {
        var head = head
        var changed = false
        if !head.headers[canonicalForm: "upgrade"].isEmpty, !asksWebSocket(head) {
            head.headers.remove(name: "upgrade")
            head.headers.remove(name: "http2-settings")
            let tokens = head.headers[canonicalForm: "connection"]
            var connection = tokens.filter {
                let token = $0.lowercased()
                return token != "upgrade" && token != "http2-settings" && token != "keep-alive"
            }
            if tokens.contains(where: { $0.lowercased() == "upgrade" }), !connection.contains(where: { $0.lowercased() == "close" }) {
                connection.append("close")
            } else if tokens.contains(where: { $0.lowercased() == "keep-alive" }) {
                connection.append("keep-alive")
            }
            head.headers.remove(name: "connection")
            if !connection.isEmpty { head.headers.add(name: "Connection", value: connection.joined(separator: ", ")) }
            changed = true
        }
        if let merged = mergedSlashes(head.uri) {
            head.uri = merged
            changed = true
        }
        return changed ? head : nil
    }

    /// `uri` with each run of `/` in its path made one, or `nil` when it has none.
    static func mergedSlashes(_ uri: String) -> String? {
        let path = uri.firstIndex(of: "?").map { uri[..<$0] } ?? uri[...]
        guard path.contains("//") else { return nil }
        var merged = ""
        merged.reserveCapacity(uri.utf8.count)
        var previousWasSlash = false
        for character in path {
            if character == "/", previousWasSlash { continue }
            previousWasSlash = character == "/"
            merged.append(character)
        }
        return merged + uri[path.endIndex...]
    }

    /// Puts a hygiene handler right after the HTTP request decoder of `channel`'s pipeline.
    static func install(in channel: any Channel) throws {
        let decoder = try channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
        try channel.pipeline.syncOperations.addHandler(RequestHeadHygiene(), position: .after(decoder))
    }
}
