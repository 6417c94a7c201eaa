import NIOCore
import NIOHTTP1

/// Makes every request head one the rest of the pipeline reads as HTTP/1.1 meant it, right after the HTTP decoder:
///
/// - An `Upgrade` to anything but WebSocket (`h2c`, TLS, a made-up protocol) is ignored, as RFC 9110 §7.8 lets a server
///   do: the header, its `Connection` tokens and `HTTP2-Settings` are removed, and the request is answered over
///   HTTP/1.1. (NIO's upgrade handler loses the head of a request whose upgrade no upgrader takes, and refuses its body:
///   the client got no answer at all.) The HTTP decoder before this handler has stopped reading the connection as HTTP
///   after such a request (and after a `CONNECT`): the request says exactly `Connection: close`, so its answer closes
///   the connection, and once the request has ended, ``ConnectionAdmission`` drops what else arrives (the decoder would
///   keep it all until then).
/// - Runs of `/` in an origin-form path (one that starts with `/`) are one `/`, as nginx's `merge_slashes`:
///   `//openai/v1/models` is `/openai/v1/models` for the router and the gateway alike. The query is left as it is.
final class RequestHeadHygiene: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    /// Whether a head came before (the upgrade handler reads the connection's first request only).
    private var seenHead = false
    /// Whether the request under way ends the connection's HTTP (its end turns the input off).
    private var endsHTTP = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let first = !seenHead
            seenHead = true
            if first, Self.asksWebSocket(head), Self.carriesHandshake(head) {
                // The upgrade handler decides; taken, the connection carries WebSocket frames from now on, which this
                // handler does not read: it leaves (a refused upgrade is answered 400 and closed).
                var head = head
                if let merged = Self.mergedSlashes(head.uri) { head.uri = merged }
                context.fireChannelRead(wrapInboundOut(.head(head)))
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                return
            }
            endsHTTP = Self.stopsDecoder(head)
            guard let cleaned = Self.cleaned(head) else { return context.fireChannelRead(data) }
            context.fireChannelRead(wrapInboundOut(.head(cleaned)))
        case .body:
            context.fireChannelRead(data)
        case .end:
            if endsHTTP, let admission = try? context.pipeline.syncOperations.handler(type: ConnectionAdmission.self) {
                admission.discardInput()
            }
            context.fireChannelRead(data)
        }
    }

    /// Whether `head` asks to upgrade to WebSocket.
    static func asksWebSocket(_ head: HTTPRequestHead) -> Bool {
        head.headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
    }

    /// Whether `head` carries a WebSocket handshake's key and version (without them NIO's upgrader refuses the head and
    /// the client would get no answer: such a request is answered over HTTP/1.1 instead).
    static func carriesHandshake(_ head: HTTPRequestHead) -> Bool {
        head.headers.contains(name: "sec-websocket-key") && head.headers.contains(name: "sec-websocket-version")
    }

    /// Whether the HTTP decoder stops reading the connection after this request: an upgrade asked for (any `Upgrade`
    /// header: the parser's own reading of `Connection` decides, so every one counts) or a `CONNECT`.
    static func stopsDecoder(_ head: HTTPRequestHead) -> Bool {
        head.method == .CONNECT || head.headers.contains(name: "upgrade")
    }

    /// `head` made clean, or `nil` when it already is. A head that stops the decoder says exactly `Connection: close`.
    /// A WebSocket upgrade after the connection's first request keeps its `Upgrade` (Hummingbird answers it with a
    /// redirect to a new connection, where the upgrade runs).
    static func cleaned(_ head: HTTPRequestHead) -> HTTPRequestHead? {
        var head = head
        var changed = false
        if head.headers.contains(name: "upgrade"), !(asksWebSocket(head) && carriesHandshake(head)) {
            head.headers.remove(name: "upgrade")
            head.headers.remove(name: "http2-settings")
            changed = true
        }
        if stopsDecoder(head) || changed, head.headers[canonicalForm: "connection"].map({ $0.lowercased() }) != ["close"] {
            head.headers.replaceOrAdd(name: "Connection", value: "close")
            changed = true
        }
        if let merged = mergedSlashes(head.uri) {
            head.uri = merged
            changed = true
        }
        return changed ? head : nil
    }

    /// `uri` with each run of `/` in its path made one, or `nil` when it has none or is not a path (an absolute-form
    /// `http://…` target, `*`).
    static func mergedSlashes(_ uri: String) -> String? {
        guard uri.utf8.first == UInt8(ascii: "/") else { return nil }
        // A byte walk first: most targets have no `//` (Foundation's `contains` on a `String` showed on the profile).
        var slashes = 0
        for byte in uri.utf8 {
            if byte == UInt8(ascii: "?") { return nil }
            slashes = byte == UInt8(ascii: "/") ? slashes + 1 : 0
            if slashes == 2 { break }
        }
        guard slashes == 2 else { return nil }
        let path = uri.firstIndex(of: "?").map { uri[..<$0] } ?? uri[...]
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
