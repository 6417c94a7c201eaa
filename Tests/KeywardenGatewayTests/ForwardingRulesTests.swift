import Testing
@testable import KeywardenGateway

@Suite("Forwarding rules")
struct ForwardingRulesTests {
    @Test("no credential header, in any spelling, and no X-Keywarden- instruction ever travels to the vendor")
    func credentialsNeverForwarded() {
        let names = Gateway.credentialHeaders.flatMap { [$0, $0.uppercased(), $0.capitalized] }
            + ["X-Keywarden-Workspace", "x-keywarden-consumer", "X-KEYWARDEN-MODALITY", "x-Keywarden-Provider"]
        let headers = names.map { (name: $0, value: "kw_canary_token") } + [(name: "Content-Type", value: "application/json")]
        for owned in [true, false] {
            #expect(Gateway.forwardedRequestHeaders(headers, owned: owned).map(\.name) == ["Content-Type"])
        }
    }

    @Test("a call printed, debug-printed or dumped shows its header names, never their values (the caller's token)")
    func callNeverPrintsHeaderValues() {
        let call = GatewayCall(face: .native(providerID: "openai"), method: "POST", pathAndQuery: "/v1/chat/completions?key=kw_canary_query",
                               headers: [("Authorization", "Bearer kw_canary_token_0001"), ("x-api-key", "kw_canary_token_0002")],
                               body: .empty, workspaceID: "ws_1", consumer: nil, modality: nil)
        var dumped = ""
        dump(call, to: &dumped)
        for text in ["\(call)", String(reflecting: call), dumped] {
            #expect(!text.contains("kw_canary") && text.contains("Authorization"), "\(text)")
        }
    }

    @Test("hop-by-hop headers, those the caller's Connection names, and those Keywarden sets are dropped")
    func hopByHopDropped() {
        let headers: [(name: String, value: String)] = [
            ("Connection", "keep-alive, X-Secret-Hop ,\tX-Other"), ("X-Secret-Hop", "1"), ("x-other", "2"), ("Keep-Alive", "5"),
            ("Transfer-Encoding", "chunked"), ("Host", "evil.example"), ("Content-Length", "10"), ("Cookie", "a=b"),
            ("TE", "trailers"), ("Upgrade", "h2c"), ("Proxy-Authorization", "Basic x"), ("X-Kept", "yes"),
        ]
        #expect(Gateway.forwardedRequestHeaders(headers, owned: true).map(\.name) == ["X-Kept"])
    }

    @Test("with a shared key only the headers a request needs travel; with the caller's own key the rest do too")
    func sharedKeyHeadersLimited() {
        let headers: [(name: String, value: String)] = [
            ("Content-Type", "application/json"), ("OpenAI-Organization", "org-theirs"), ("OpenAI-Project", "p"), ("anthropic-beta", "x"),
            ("X-Stainless-Lang", "python"), ("Anthropic-Version", "2023-06-01"), ("X-HTTP-Method-Override", "DELETE"),
            ("OpenAI-Beta", "assistants=v2"), ("openai-beta", "responses=experimental"),
        ]
        #expect(Gateway.forwardedRequestHeaders(headers, owned: false).map(\.name) == ["Content-Type", "X-Stainless-Lang", "Anthropic-Version"])
        #expect(Gateway.forwardedRequestHeaders(headers, owned: true).count == headers.count)
    }

    @Test("a media body is kept for failover up to the replay limit and streamed once past it; any other (a form upload too) is kept up to the read limit (to be read); none for GET or a zero length")
    func bodyPlans() {
        let media = "audio/mpeg"
        #expect(GatewayRequestBody.plan(method: "GET", declaredLength: 10, replayLimit: 100) == .empty)
        #expect(GatewayRequestBody.plan(method: "HEAD", declaredLength: nil, replayLimit: 100) == .empty)
        #expect(GatewayRequestBody.plan(method: "POST", declaredLength: 0, replayLimit: 100) == .empty)
        #expect(GatewayRequestBody.plan(method: "POST", declaredLength: 100, replayLimit: 100, contentType: media) == .collect(upTo: 100))
        #expect(GatewayRequestBody.plan(method: "POST", declaredLength: nil, replayLimit: 100, contentType: "multipart/form-data; boundary=x")
                == .collect(upTo: GatewayRequestBody.readLimit), "a form's fields are read")
        #expect(GatewayRequestBody.plan(method: "PUT", declaredLength: 101, replayLimit: 100, contentType: media) == .streamOnce(length: 101))
        #expect(GatewayRequestBody.plan(method: "POST", declaredLength: Int.max, replayLimit: 100, contentType: media) == .streamOnce(length: Int.max))
        let read = GatewayRequestBody.readLimit
        for type in ["application/json", "text/plain", "application/octet-stream", nil] as [String?] {
            #expect(GatewayRequestBody.plan(method: "POST", declaredLength: 101, replayLimit: 100, contentType: type) == .collect(upTo: read), "\(type ?? "none")")
            #expect(GatewayRequestBody.plan(method: "POST", declaredLength: read + 1, replayLimit: 100, contentType: type) == .streamOnce(length: read + 1))
        }
    }

    @Test("media, forms and text are told from a content type in any case and after blanks; a type naming JSON is never media")
    func contentTypeKinds() {
        for type in ["audio/mpeg", "AUDIO/WAV", " image/png", "\tVideo/MP4", "multipart/form-data; boundary=x", "Multipart/Mixed"] {
            #expect(GatewayRequestBody.isBinary(contentType: type), "\(type)")
        }
        for type in ["application/json", "image/x+json", "Audio/JSON", "text/plain", "application/octet-stream", "xaudio/mpeg", "", "audio"] {
            #expect(!GatewayRequestBody.isBinary(contentType: type), "\(type)")
        }
        #expect(!GatewayRequestBody.isBinary(contentType: nil))
        // A combining mark after the slash makes another character: not media, so the body is read (as `String` said).
        for type in ["audio/\u{301}x", "image/\u{301}png", "video/\u{20DD}mp4", "audio\u{301}/mpeg"] {
            #expect(!GatewayRequestBody.isBinary(contentType: type), "\(type.unicodeScalars.map { String($0.value, radix: 16) })")
        }
        #expect(GatewayRequestBody.isBinary(contentType: "audio/mpeg; name=é"))
        for type in ["text/plain", "TEXT/HTML", "application/json", "application/problem+JSON", "application/xml", "text/event-stream",
                     "application/x-ndjson", " text/csv"] {
            #expect(Gateway.isText(type), "\(type)")
        }
        for type in ["audio/mpeg", "image/png", "application/octet-stream", "", "application/texts"] {
            #expect(!Gateway.isText(type), "\(type)")
        }
    }

    @Test("Server-Timing gives milliseconds with microsecond precision, never negative, never overflowing")
    func serverTimingFormat() {
        #expect(ServerTiming.header(own: .microseconds(212), upstream: .microseconds(41_870)) == "kw;dur=0.212, upstream;dur=41.870")
        #expect(ServerTiming.milliseconds(.zero) == "0.000")
        #expect(ServerTiming.milliseconds(.seconds(2) + .nanoseconds(1_500)) == "2000.001")
        #expect(ServerTiming.milliseconds(.microseconds(-5)) == "0.000")
        #expect(ServerTiming.milliseconds(.seconds(Int64.max / 2)).hasSuffix(".000"))
    }
}
