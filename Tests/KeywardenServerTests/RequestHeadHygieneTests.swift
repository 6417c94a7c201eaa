import NIOHTTP1
import Testing
@testable import KeywardenServer

/// Request heads as the rest of the pipeline reads them: an upgrade nothing takes is ignored, runs of `/` merged.
@Suite("Request head hygiene")
struct RequestHeadHygieneTests {
    func head(_ uri: String, _ headers: [(String, String)] = []) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers))
    }

    @Test("an upgrade to anything but WebSocket is ignored in every spelling: the header and HTTP2-Settings go, and the request says exactly Connection: close (the decoder stops after it); so does a CONNECT")
    func unsupportedUpgradesAreIgnored() throws {
        let spellings: [[(String, String)]] = [
            [("Upgrade", "h2c")], [("upgrade", "H2C")], [("Connection", "Upgrade"), ("Upgrade", "h2c")],
            [("Connection", "keep-alive, Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")],
            [("Connection", "upgrade"), ("Upgrade", "TLS/1.2, HTTP/1.1")], [("Upgrade", "foo"), ("Upgrade", "bar")], [("UPGRADE", "h2")],
            [("Connection", "Upgrade, Foo"), ("Upgrade", "h2c")], [("Connection", "keep-alive upgrade"), ("Upgrade", "h2c")],
            // A WebSocket upgrade without its handshake's key and version: NIO's upgrader would drop it unanswered.
            [("Connection", "Upgrade"), ("Upgrade", "websocket")],
        ]
        for headers in spellings {
            let asked = head("/healthz", headers)
            #expect(RequestHeadHygiene.stopsDecoder(asked), "\(headers)")
            let cleaned = try #require(RequestHeadHygiene.cleaned(asked), "\(headers)")
            #expect(cleaned.headers["upgrade"].isEmpty && cleaned.headers["http2-settings"].isEmpty, "\(headers)")
            #expect(cleaned.headers["connection"] == ["close"], "\(headers): \(cleaned.headers["connection"])")
        }
        let connect = HTTPRequestHead(version: .http1_1, method: .CONNECT, uri: "api.openai.com:443", headers: ["Host": "api.openai.com:443"])
        #expect(RequestHeadHygiene.stopsDecoder(connect) && RequestHeadHygiene.cleaned(connect)?.headers["connection"] == ["close"])
        #expect(RequestHeadHygiene.cleaned(connect)?.uri == "api.openai.com:443")
        // A WebSocket handshake keeps its upgrade (the first request's goes to the upgrade handler untouched; a later
        // one gets Hummingbird's redirect to a new connection), and closes the connection after its answer.
        let handshake = [("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
        for value in ["websocket", "WebSocket", "h2c, websocket"] {
            let asked = head("/openai/v1/realtime", handshake + [("Upgrade", value)])
            #expect(RequestHeadHygiene.asksWebSocket(asked) && RequestHeadHygiene.carriesHandshake(asked), "\(value)")
            let cleaned = try #require(RequestHeadHygiene.cleaned(asked))
            #expect(cleaned.headers["upgrade"] == [value] && cleaned.headers["connection"] == ["close"], "\(value)")
        }
        // Nothing to do: no upgrade, or already closing.
        #expect(RequestHeadHygiene.cleaned(head("/healthz", [("Connection", "close")])) == nil)
        #expect(RequestHeadHygiene.cleaned(head("/healthz", [("Connection", "keep-alive")])) == nil)
        #expect(!RequestHeadHygiene.stopsDecoder(head("/healthz", [("Connection", "upgrade")])))
    }

    @Test("runs of / in the path are one, the query is left as it is; a clean path is untouched")
    func slashesAreMerged() {
        let cases = [("//openai/v1/models", "/openai/v1/models"), ("/openai//v1///models", "/openai/v1/models"),
                     ("//v1/chat/completions?x=a//b", "/v1/chat/completions?x=a//b"), ("///", "/"), ("//healthz/", "/healthz/")]
        for (uri, expected) in cases {
            #expect(RequestHeadHygiene.mergedSlashes(uri) == expected, "\(uri)")
            #expect(RequestHeadHygiene.cleaned(head(uri))?.uri == expected, "\(uri)")
        }
        // Not a path: an absolute-form target keeps its `//` (the host is not a path segment), so do `*` and authorities.
        for uri in ["/openai/v1/models", "/v1/chat/completions?x=a//b", "/", "/a/b/", "http://127.0.0.1//healthz", "*", "api.openai.com:443"] {
            #expect(RequestHeadHygiene.mergedSlashes(uri) == nil && RequestHeadHygiene.cleaned(head(uri)) == nil, "\(uri)")
        }
    }
}
