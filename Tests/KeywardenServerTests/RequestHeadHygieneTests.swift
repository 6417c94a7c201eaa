import NIOHTTP1
import Testing
@testable import KeywardenServer

/// Request heads as the rest of the pipeline reads them: an upgrade nothing takes is ignored, runs of `/` merged.
@Suite("Request head hygiene")
struct RequestHeadHygieneTests {
    func head(_ uri: String, _ headers: [(String, String)] = []) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers))
    }

    @Test("an upgrade to anything but WebSocket is ignored in every spelling: the header, its Connection token and HTTP2-Settings go; other Connection tokens stay")
    func unsupportedUpgradesAreIgnored() throws {
        let spellings: [[(String, String)]] = [
            [("Upgrade", "h2c")], [("upgrade", "H2C")], [("Connection", "Upgrade"), ("Upgrade", "h2c")],
            [("Connection", "keep-alive, Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")],
            [("Connection", "upgrade"), ("Upgrade", "TLS/1.2, HTTP/1.1")], [("Upgrade", "foo"), ("Upgrade", "bar")], [("UPGRADE", "h2")],
        ]
        for headers in spellings {
            let cleaned = try #require(RequestHeadHygiene.cleaned(head("/healthz", headers)), "\(headers)")
            #expect(cleaned.headers["upgrade"].isEmpty && cleaned.headers["http2-settings"].isEmpty, "\(headers)")
            #expect(!cleaned.headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }, "\(headers)")
            // Named in Connection, the decoder has stopped reading the connection as HTTP: the answer closes it.
            let named = headers.contains { $0.0.lowercased() == "connection" && $0.1.lowercased().contains("upgrade") }
            #expect(cleaned.headers[canonicalForm: "connection"].map { $0.lowercased() } == (named ? ["close"] : []), "\(headers)")
        }
        // WebSocket upgrades (the realtime faces) pass untouched, in any case and beside another protocol.
        for value in ["websocket", "WebSocket", "h2c, websocket"] {
            #expect(RequestHeadHygiene.cleaned(head("/openai/v1/realtime", [("Connection", "Upgrade"), ("Upgrade", value)])) == nil, "\(value)")
        }
        #expect(RequestHeadHygiene.cleaned(head("/healthz", [("Connection", "close")])) == nil)
    }

    @Test("runs of / in the path are one, the query is left as it is; a clean path is untouched")
    func slashesAreMerged() {
        let cases = [("//openai/v1/models", "/openai/v1/models"), ("/openai//v1///models", "/openai/v1/models"),
                     ("//v1/chat/completions?x=a//b", "/v1/chat/completions?x=a//b"), ("///", "/"), ("//healthz/", "/healthz/")]
        for (uri, expected) in cases {
            #expect(RequestHeadHygiene.mergedSlashes(uri) == expected, "\(uri)")
            #expect(RequestHeadHygiene.cleaned(head(uri))?.uri == expected, "\(uri)")
        }
        for uri in ["/openai/v1/models", "/v1/chat/completions?x=a//b", "/", "/a/b/"] {
            #expect(RequestHeadHygiene.mergedSlashes(uri) == nil && RequestHeadHygiene.cleaned(head(uri)) == nil, "\(uri)")
        }
    }
}
