import Foundation
import Testing
import NIOCore
import NIOHTTP1
import KeywardenCore
@testable import KeywardenGateway
import KeywardenProviders
import KeywardenStore

@Suite("Cooldowns")
struct CooldownsTests {
    @Test("a rest met with one secret is over once the key holds another here, however late it was told; unknown here, it stands")
    func restsFollowTheSecret() {
        let cooldowns = Cooldowns()
        cooldowns.rest("key_a", for: .seconds(60), rateLimited: false, keyTag: "old")
        cooldowns.apply(Cooldowns.Announcement(credentialID: "key_b", workspaceID: "ws_1", owned: false, rateLimited: false,
                                               duration: .seconds(60), keyTag: "old"))
        #expect(cooldowns.resting(for: "ws_1", currentTag: { _ in "old" }) == ["key_a", "key_b"])
        #expect(cooldowns.resting(for: "ws_1", currentTag: { _ in nil }) == ["key_a", "key_b"], "a key not held here keeps its rest")
        #expect(cooldowns.resting(for: "ws_1", currentTag: { $0 == "key_a" ? "new" : "old" }) == ["key_b"])
        #expect(cooldowns.resting(for: "ws_1", currentTag: { _ in "old" }) == ["key_b"], "the replaced key's rest is gone, not just hidden")
        // A rest without a tag (an older instance's) is the key's, whatever its secret.
        cooldowns.rest("key_c", for: .seconds(60), rateLimited: true)
        #expect(cooldowns.resting(for: "ws_1", currentTag: { _ in "new" }).contains("key_c"))
    }

    @Test("a rest lasts its duration, a shorter one does not cut a longer one, and refusals are told from rate limits")
    func rests() {
        let cooldowns = Cooldowns()
        let start = ContinuousClock.now
        cooldowns.rest("limited", for: .seconds(7), rateLimited: true, now: start)
        cooldowns.rest("limited", for: .seconds(1), rateLimited: true, now: start)
        cooldowns.rest("refused", for: .seconds(60), rateLimited: false, now: start)
        #expect(cooldowns.resting(now: start + .seconds(6)) == ["limited", "refused"])
        #expect(cooldowns.resting(refusedOnly: true, now: start + .seconds(6)) == ["refused"])
        #expect(cooldowns.shortestRateLimit(among: ["limited", "refused"], now: start + .seconds(6)) == .seconds(1))
        #expect(cooldowns.resting(now: start + .seconds(8)) == ["refused"])
        #expect(cooldowns.shortestRateLimit(among: ["limited"], now: start + .seconds(8)) == nil)
    }

    @Test("fallback.engaged is raised once per move away from the workspace's keys, and re-armed when they serve again")
    func fallbackTransitions() {
        let tracker = FallbackTracker()
        #expect(tracker.engage(workspaceID: "ws", providerID: "openai"))
        #expect(!tracker.engage(workspaceID: "ws", providerID: "openai"))
        #expect(tracker.engage(workspaceID: "ws", providerID: "anthropic"))
        tracker.release(workspaceID: "ws", providerID: "openai")
        #expect(tracker.engage(workspaceID: "ws", providerID: "openai"))
    }

    @Test("the model of an OpenAI-shaped body is replaced where it stands and the rest kept byte for byte; a body that is not one JSON object is not edited")
    func modelRewrite() throws {
        let body = Array(#"{"model":"anthropic/claude-sonnet-4-6","messages":[{"role":"user","content":"a/b"}],"temperature":1.0,"stream":true}"#.utf8)
        let rewritten = try #require(Gateway.rewritingBody(body, model: "claude-sonnet-4-6", includeUsage: false))
        #expect(String(decoding: rewritten, as: UTF8.self) == #"{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"a/b"}],"temperature":1.0,"stream":true}"#)
        for refused in ["[1]", #"{"model":"a","model":"b"}"#, "{", "not json"] {
            #expect(Gateway.rewritingBody(Array(refused.utf8), model: "x", includeUsage: false) == nil, "\(refused)")
        }
    }

    @Test("a stream is asked for usage, keeping the caller's other stream options and bytes; a stream_options that is not an object (null included) is replaced, so the stream reports what it costs")
    func includeUsageRewrite() throws {
        let body = Array(#"{"model":"gpt-5.4-mini","stream":true,"stream_options":{"include_obfuscation":false}}"#.utf8)
        let rewritten = try #require(Gateway.rewritingBody(body, model: nil, includeUsage: true))
        #expect(String(decoding: rewritten, as: UTF8.self) == #"{"model":"gpt-5.4-mini","stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false}}"#)
        for odd in [#""yes""#, "null", "[]", "5"] {
            let replaced = try #require(Gateway.rewritingBody(Array(#"{"stream":true,"stream_options":\#(odd)}"#.utf8), model: nil, includeUsage: true))
            #expect(String(decoding: replaced, as: UTF8.self) == #"{"stream":true,"stream_options":{"include_usage":true}}"#, "\(odd)")
        }
        // A body with white space around it, or a second stream member, is still read as a stream.
        #expect(RequestFacts.read(body: Array("  \n{\"stream\":true}\n".utf8), path: "/v1/chat/completions").stream)

        let catalog = try ProviderCatalog.load()
        let openai = try #require(catalog.provider("openai"))
        let streamed = RequestFacts.read(body: body, path: "/v1/chat/completions")
        #expect(streamed.stream && !streamed.streamIncludesUsage)
        #expect(Gateway.asksForStreamUsage(streamed, provider: openai, path: "/v1/chat/completions?x=1"))
        #expect(!Gateway.asksForStreamUsage(streamed, provider: openai, path: "/v1/responses"))
        // The legacy completions take the same stream_options: their streams are metered too.
        #expect(Gateway.asksForStreamUsage(streamed, provider: openai, path: "/v1/completions"))
        #expect(Gateway.asksForStreamUsage(streamed, provider: openai, path: "/openai/deployments/x/completions?api-version=1"))
        #expect(!Gateway.asksForStreamUsage(streamed, provider: openai, path: "/v1/embeddings"))
        #expect(!Gateway.asksForStreamUsage(streamed, provider: try #require(catalog.provider("mistral")), path: "/v1/chat/completions"))
        let asked = RequestFacts.read(body: Array(#"{"stream":true,"stream_options":{"include_usage":true}}"#.utf8), path: "/v1/chat/completions")
        #expect(asked.streamIncludesUsage && !Gateway.asksForStreamUsage(asked, provider: openai, path: "/v1/chat/completions"))
        #expect(!Gateway.asksForStreamUsage(RequestFacts.read(body: Array(#"{"model":"m"}"#.utf8), path: "/v1/chat/completions"), provider: openai, path: "/v1/chat/completions"))
    }

    @Test("a vendor's error is scrubbed of every key sent and of long fragments of it, valid UTF-8 or not; an encoded one is not passed on")
    func scrubbing() {
        var headers: [(name: String, value: String)] = []
        let body = Array(#"{"error":{"message":"Incorrect API key provided: sk-canary-****7Hq2mZ9xL4."}}"#.utf8)
        let text = String(decoding: Gateway.errorBody(body, status: 401, vendorHeaders: [:], headers: &headers, scrubber: SecretScrubber(secrets: ["sk-canary-revoked-7Hq2mZ9xL4"])), as: UTF8.self)
        #expect(!text.contains("7Hq2mZ9xL4") && text.contains("[redacted]"))
        // Not UTF-8: scrubbed all the same (it used to be passed on as it came).
        let raw: [UInt8] = [0xFF, 0xFE] + Array("key sk-canary-revoked-7Hq2mZ9xL4 ".utf8) + [0xC0, 0xAF]
        let scrubbed = Gateway.errorBody(raw, status: 401, vendorHeaders: [:], headers: &headers, scrubber: SecretScrubber(secrets: ["sk-canary-revoked-7Hq2mZ9xL4"]))
        #expect(!contains(scrubbed, "7Hq2mZ9xL4"))
        // Gzip the caller never asked for: replaced, and the encoding header dropped.
        headers = [("Content-Encoding", "gzip"), ("Content-Type", "application/json")]
        let encoded = Gateway.errorBody([0x1f, 0x8b, 8, 0], status: 401, vendorHeaders: ["Content-Encoding": "gzip"], headers: &headers, scrubber: SecretScrubber(secrets: ["sk-x-12345678"]))
        #expect(String(decoding: encoded, as: UTF8.self).contains("upstream_error") && !headers.contains { $0.name == "Content-Encoding" })
    }

    @Test("an answer that cannot be read for scrubbing is told: a coding not asked for, text in UTF-16 or UTF-32 by charset or by its bytes; binary and UTF-8 pass")
    func unreadableAnswers() {
        let json: HTTPHeaders = ["Content-Type": "application/json"]
        #expect(Gateway.unreadableAnswer(["Content-Encoding": "br"], whole: nil) == "content coding br")
        #expect(Gateway.unreadableAnswer(["Content-Encoding": "identity"], whole: nil) == nil)
        #expect(Gateway.unreadableAnswer(["Content-Type": "application/json; charset=UTF-16"], whole: nil) != nil)
        #expect(Gateway.unreadableAnswer(["Content-Type": "text/event-stream; charset=\"utf-32\""], whole: nil) != nil)
        // A second charset is read too (clients differ on which they take), and a charset with a suffix (`utf-16le`).
        #expect(Gateway.unreadableAnswer(["Content-Type": "application/json; charset=utf-8; charset=utf-16"], whole: nil) != nil)
        #expect(Gateway.unreadableAnswer(["Content-Type": "application/json;charset=UTF-16LE"], whole: nil) != nil)
        #expect(Gateway.unreadableAnswer(["Content-Type": "application/json; charset=utf-8"], whole: nil) == nil)
        #expect(Gateway.unreadableAnswer(json, whole: ByteBuffer(bytes: [0x7B, 0x00, 0x22, 0x00])) == "wide text")
        #expect(Gateway.unreadableAnswer(json, whole: ByteBuffer(bytes: [0xFF, 0xFE, 0x7B, 0x00])) == "wide text")
        #expect(Gateway.unreadableAnswer(json, whole: ByteBuffer(string: #"{"ok":true}"#)) == nil)
        #expect(Gateway.unreadableAnswer(["Content-Type": "audio/mpeg"], whole: ByteBuffer(bytes: [0xFF, 0xFB, 0x00, 0x00])) == nil)
    }

    @Test("a model an answer names is recorded only as visible ASCII of at most 256 bytes that holds no key of the call")
    func acceptedModels() {
        let scrubber = SecretScrubber(secrets: ["sk-model-canary-12345678"])
        #expect(UpstreamStream.acceptedModel("gpt-4o-2024-08-06", scrubber: scrubber) == "gpt-4o-2024-08-06")
        #expect(UpstreamStream.acceptedModel("sk-model-canary-12345678", scrubber: scrubber) == nil)
        #expect(UpstreamStream.acceptedModel("echo SK-MODEL-CANARY-12345678", scrubber: scrubber) == nil)
        #expect(UpstreamStream.acceptedModel(String(repeating: "m", count: 257), scrubber: nil) == nil)
        #expect(UpstreamStream.acceptedModel("line\nbreak", scrubber: nil) == nil)
        #expect(UpstreamStream.acceptedModel(nil, scrubber: scrubber) == nil)
    }

    func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
        let needle = Array(needle.utf8)
        return haystack.count >= needle.count && (0...(haystack.count - needle.count)).contains { Array(haystack[$0..<$0 + needle.count]) == needle }
    }
}

@Suite("Rests told across instances")
struct RestAnnouncementTests {
    @Test("a rest's announcement names the secret that was refused; one of an older instance, without it, still reads; anything else is refused")
    func announcementsRoundTrip() {
        let told = Cooldowns.Announcement(credentialID: "key_1", workspaceID: "ws_1", owned: false, rateLimited: true, duration: .milliseconds(7_500), keyTag: "a1b2c3")
        #expect(Cooldowns.Announcement(payload: told.payload) == told)
        let older = Cooldowns.Announcement(payload: "v1|key_1|-|1|0|60000")
        #expect(older?.keyTag == nil && older?.owned == true && older?.duration == .seconds(60))
        #expect(Cooldowns.Announcement(payload: "v1|key_1|-|1|0|60000|-")?.keyTag == nil)
        for bad in ["v2|key_1|-|1|0|60000", "v1||-|1|0|60000", "v1|key_1|-|1|0|abc", "v1|key_1|-|1|0|60000|x|y", "v1|key_1|-|1|0|60000|" + String(repeating: "f", count: 40)] {
            let read = Cooldowns.Announcement(payload: bad)
            #expect(read == nil || read?.keyTag == nil, "\(bad)")
        }
        // Two saves of one key are two tags; one save is one tag whoever computes it.
        let first = KeyVersion(key: Array("ciphertext-one".utf8), extras: nil), second = KeyVersion(key: Array("ciphertext-two".utf8), extras: nil)
        #expect(first.tag != second.tag && first.tag == KeyVersion(key: Array("ciphertext-one".utf8), extras: nil).tag)
    }
}
