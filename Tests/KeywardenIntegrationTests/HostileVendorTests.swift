import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import AsyncHTTPClient
import KeywardenTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// A vendor whose answers are hostile cannot end the process, stall it, or make it hand the key to the caller.
@Suite("Hostile vendors against the real binary", .serialized)
struct HostileVendorTests {
    /// Every form a key could be echoed in.
    static func forms(of key: String) -> [String] {
        let json = key.replacingOccurrences(of: "/", with: "\\/")
        let url = key.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? key
        return [key, json, url, Data(key.utf8).base64EncodedString(), String(key.suffix(12))]
    }

    @Test("hostile Retry-After values, 4 MiB and non-UTF-8 errors, echoed keys, surprise gzip, endless heads and streams: the server stays up and the key never reaches the client")
    func hostileAnswers() async throws {
        // `mistral` is served by the raw listener whose response head never ends.
        let mocks = try await MockVendorsProcess(vendors: ["openai", "mistral=hostile-raw"])
        let rig = try await GatewayRig(environment: ["KEYWARDEN_VERIFY_TIMEOUT": "2", "KEYWARDEN_GATEWAY_MAX_COOLDOWN": "60"], mocks: mocks)
        defer { Task { await rig.stop() } }
        var outputs: [String] = []
        var keys: [String] = []

        func healthy(_ after: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let health = try await TestHTTP.get(rig.base + "/healthz")
            #expect(health.status == 200, "/healthz after \(after)", sourceLocation: sourceLocation)
        }
        /// One workspace with one key, and a gateway call through it.
        func call(_ secret: String, provider: String = "openai", timeout: TimeInterval = 20) async throws -> (TestHTTP.Reply, String, String) {
            let ws = try await rig.workspace("Hostile \(keys.count)")
            keys.append(secret)
            let key = try await rig.key(ws, provider: provider, secret: secret)
            let token = try await rig.serviceToken(ws)
            let reply = try await rig.call("/\(provider)/v1/chat/completions", token: token, json: GatewayRig.chat)
            outputs.append(reply.text + reply.headers.description)
            return (reply, ws, key)
        }

        // 1. Twelve hostile Retry-After values: a 429 to the caller, with a Retry-After it can read, or none.
        for index in 1...12 {
            let (reply, _, _) = try await call("sk-hostileretry\(index)-canary-\(UUID().uuidString.prefix(8))")
            #expect(reply.status == 429, "hostileretry\(index): \(reply.status) \(reply.text)")
            if let retry = reply.headers["retry-after"] {
                #expect(Int(retry).map { (0...3600).contains($0) } == true, "hostileretry\(index) Retry-After: \(retry)")
            }
            try await healthy("hostileretry\(index)")
        }

        // 2. Error bodies: 4 MiB (401 and 500), not UTF-8, the key echoed in every encoding, gzip nobody asked for.
        for marker in ["hugeerror", "hugeerror500", "badutf8", "echokey", "gzipsurprise-revoked", "gzipsurprisefake-revoked"] {
            let started = ContinuousClock.now
            let (reply, _, _) = try await call("sk-\(marker)-canary-\(UUID().uuidString.prefix(8))/x+y=")
            let elapsed = ContinuousClock.now - started
            #expect(reply.status >= 400, "\(marker): \(reply.status)")
            #expect(reply.body.count <= 64 * 1024 + 512, "\(marker): the error body is capped (\(reply.body.count) bytes)")
            #expect(elapsed < .seconds(10), "\(marker) took \(elapsed)")
            try await healthy(marker)
        }

        // 3. A Test against a 4 MiB echo of the key finishes well under a second here (bounded at 10 s: a shared CI machine
        // under load took 3.06 s once; what this guards against, a scan quadratic in the body, would take minutes).
        let (_, echoWorkspace, echoKey) = try await call("sk-hugeerror-canary-test-\(UUID().uuidString.prefix(8))")
        let started = ContinuousClock.now
        let test = try await rig.api("POST", "/api/v1/workspaces/\(echoWorkspace)/keys/\(echoKey)/test", expect: 200)
        let elapsed = ContinuousClock.now - started
        print("Test against a 4 MiB echo of the key: \(elapsed)")
        #expect(elapsed < .seconds(10), "Test against a 4 MiB echo took \(elapsed)")
        outputs.append("\(test)")

        // 4. A stream that never ends passes through; the client leaving ends it.
        let (streamWorkspace, streamToken) = try await { () async throws -> (String, String) in
            let ws = try await rig.workspace("Endless stream")
            _ = try await rig.key(ws, secret: "sk-neverendingstream-canary-0001")
            keys.append("sk-neverendingstream-canary-0001")
            return (ws, try await rig.serviceToken(ws))
        }()
        _ = streamWorkspace
        var request = HTTPClientRequest(url: rig.base + "/openai/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(streamToken)")
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: GatewayRig.chat.merging(["stream": true]) { $1 })))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        #expect(response.status.code == 200)
        var received = 0
        let until = ContinuousClock.now + .seconds(1)
        for try await chunk in response.body {
            received += chunk.readableBytes
            if ContinuousClock.now > until { break }
        }
        #expect(received > 0, "the endless stream passed through")
        try await healthy("an endless stream the client left")

        // 5. A response head that never ends: the call moves on at the first-byte timeout, the Test at its deadline.
        let raw = Date()
        let (headless, headlessWorkspace, headlessKey) = try await call("sk-neverendingheaders-canary-0001", provider: "mistral")
        #expect(headless.status == 504 && headless.json.errorCode == "upstream_timeout", "\(headless.status) \(headless.text)")
        #expect(Date().timeIntervalSince(raw) < 15)
        let headlessTest = try await rig.api("POST", "/api/v1/workspaces/\(headlessWorkspace)/keys/\(headlessKey)/test", expect: 200)
        #expect(headlessTest["status"] as? String == "unreachable", "\(headlessTest)")
        try await healthy("a head that never ends")

        // 6. No key in any form reached the client, nor the server's output.
        let everything = outputs.joined(separator: "\n")
        for key in keys {
            for form in Self.forms(of: key) where form.count >= 8 {
                #expect(!everything.contains(form), "\(form) reached the client")
            }
        }
        let serverOutput = rig.server.stdout + rig.server.stderr
        for key in keys {
            #expect(!serverOutput.contains(key), "\(key) is in the server's output")
        }
        #expect(rig.server.isRunning)
    }

    /// The key in every spelling the scrubber promises to find: raw, JSON-escaped (`/` as `\/`, and half `\u`-escaped),
    /// percent-encoded, base64 (standard and URL-safe, unpadded), upper- and lower-case.
    static func spellings(of key: String) -> [String] {
        var half = ""
        for (index, character) in key.enumerated() {
            half += index % 2 == 0 ? String(character).utf16.map { String(format: "\\u%04x", $0) }.joined() : String(character)
        }
        let base64 = Data(key.utf8).base64EncodedString()
        let urlSafe = base64.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return forms(of: key) + [half, urlSafe, key.uppercased(), key.lowercased(), String(key.prefix(12))]
    }

    @Test("a vendor that echoes the platform's key in its headers (raw, in a Location, base64, upper-case, as a header name) on a 200, 302, 400, 401 and 500, or in a 200 body whole or split across chunks, hands the caller none of it")
    func echoesInHeadersAndAnswers() async throws {
        let mocks = try await MockVendorsProcess(vendors: ["openai"])
        let rig = try await GatewayRig(mocks: mocks)
        defer { Task { await rig.stop() } }
        // The caller sees every status as it is: no redirect is followed.
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
        defer { Task { try? await client.shutdown() } }
        var seen: [(key: String, output: String)] = []

        /// A call from a workspace of its own, served by `key`: the workspace's own, or the platform's.
        func call(_ key: String, platform: Bool = false, stream: Bool = false) async throws -> (status: Int, headers: HTTPHeaders, body: String) {
            let ws = try await rig.workspace("Echoes \(seen.count)")
            if platform { try await rig.platformCard("openai", secret: key) } else { _ = try await rig.key(ws, secret: key) }
            let token = try await rig.serviceToken(ws)
            var request = HTTPClientRequest(url: rig.base + "/openai/v1/chat/completions")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: GatewayRig.chat.merging(["stream": stream]) { $1 })))
            let response = try await client.execute(request, timeout: .seconds(20))
            let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
            let output = response.headers.map { "\($0.name): \($0.value)" }.joined(separator: "\n") + "\n" + body
            seen.append((key, output))
            return (Int(response.status.code), response.headers, body)
        }

        for status in [200, 302, 400, 401, 500] {
            let key = "sk-echoheaders\(status)-canary/\(UUID().uuidString.prefix(12))+K"
            let answer = try await call(key)
            // A 401 or a 500 fails over to no other key and comes back as the vendor's last answer; the rest pass as they are.
            #expect(answer.status == status, "\(status): \(answer.status) \(answer.body)")
            #expect(answer.headers.first(name: "x-debug-key") == "[redacted]", "\(status): \(answer.headers)")
            #expect(answer.headers.first(name: "location") == "https://vendor.example/callback?key=[redacted]", "\(status): \(answer.headers)")
            #expect(!answer.headers.contains { $0.name.lowercased().hasPrefix("x-echo-") || $0.name.lowercased().hasPrefix("x-sk-") },
                    "\(status): a header named after the key passed: \(answer.headers)")
            #expect(answer.body.contains("[redacted]"), "\(status): \(answer.body)")
            if status == 200 {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any], "\(answer.body)")
                let content = ((object["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
                #expect(content == "Your key is [redacted].", "\(content ?? answer.body)")
            }
        }
        let streamed = try await call("sk-echostream-canary/\(UUID().uuidString.prefix(12))+K", platform: true, stream: true)
        #expect(streamed.status == 200 && streamed.body.contains(#""content":"Your key is [redacted]"}"#) && streamed.body.hasSuffix("data: [DONE]\n\n"),
                "\(streamed.body)")

        // Text in UTF-16 cannot be scrubbed by a byte scan: refused, not passed on.
        let wide = try await call("sk-widetext-canary/\(UUID().uuidString.prefix(12))+K")
        #expect(wide.status == 502 && wide.body.contains("upstream_invalid"), "\(wide.status) \(wide.body)")
        // What the vendor's answers named (a `model` that is the key) is not recorded for the usage export either.
        let export = try await TestHTTP.get(rig.base + "/api/v1/usage/export?format=jsonl", headers: ["Authorization": "Bearer \(rig.adminToken)"])
        #expect(export.status == 200 && export.text.contains("chat.completion") == false, "\(export.status)")
        for (key, _) in seen {
            for spelling in Self.spellings(of: key) where spelling.count >= 8 {
                #expect(!export.text.contains(spelling), "\(spelling) reached the usage export:\n\(export.text)")
            }
        }

        for (key, output) in seen {
            for spelling in Self.spellings(of: key) where spelling.count >= 8 {
                #expect(!output.contains(spelling), "\(spelling) reached the caller:\n\(output)")
            }
        }
        let serverOutput = rig.server.stdout + rig.server.stderr
        for (key, _) in seen { #expect(!serverOutput.contains(key), "\(key) is in the server's output") }
    }
}
