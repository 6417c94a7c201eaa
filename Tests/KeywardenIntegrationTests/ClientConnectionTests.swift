import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KeywardenTestSupport
import Testing

/// Client connections against the real binary: one that sends nothing, half a head, or idles after an answer is
/// closed in bounded time; past the maximum, a new one is refused at once.
@Suite("Client connections", .serialized)
struct ClientConnectionTests {
    typealias Raw = RawTCPConnection

    func start(_ environment: [String: String]) async throws -> (KeywardenProcess, Int, URL) {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("kw-conn-\(UUID().uuidString)")
        let server = try KeywardenProcess(["serve", "--data", data.path, "--port", "0"], environment: environment)
        return (server, try await server.waitUntilListening(), data)
    }

    @Test("a connection that sends nothing, half a request head, or nothing after an answer is closed within its limit; a request in time is served")
    func slowAndIdleConnectionsAreClosed() async throws {
        let (server, port, data) = try await start(["KEYWARDEN_HEAD_TIMEOUT": "1", "KEYWARDEN_IDLE_TIMEOUT": "2"])
        defer { server.signal(SIGKILL); try? FileManager.default.removeItem(at: data) }
        // Answered, kept alive, then closed at the idle limit (2 s), not at the head limit (1 s).
        let idle = try Raw(port: port)
        idle.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let idleClosed = idle.secondsUntilClosed(limit: 10)
        #expect(idleClosed != nil && idleClosed! >= 1.5 && idleClosed! < 6, "kept alive after its answer, then closed: \(idleClosed.map { "\($0) s" } ?? "still open")")
        let silent = try Raw(port: port)
        let half = try Raw(port: port)
        half.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        let trickle = try Raw(port: port)
        // Blank lines before any head (the HTTP parser skips them): still no head, still closed at the head limit.
        let blank = try Raw(port: port)
        blank.send("\r\n\r\n\n\n")
        let silentClosed = silent.secondsUntilClosed(limit: 10)
        #expect(silentClosed != nil && silentClosed! < 5, "a silent connection: \(silentClosed.map { "\($0) s" } ?? "still open")")
        #expect(half.secondsUntilClosed(limit: 10) != nil, "half a head")
        #expect(blank.secondsUntilClosed(limit: 10) != nil, "blank lines and no head")
        for _ in 0..<3 { trickle.send("G"); try await Task.sleep(for: .milliseconds(300)) }
        #expect(trickle.secondsUntilClosed(limit: 10) != nil, "a head trickling in byte by byte")
        #expect(try await TestHTTP.get("http://127.0.0.1:\(port)/healthz").status == 200)
    }

    @Test("a request body that stops arriving is cut at the body limit; one that keeps coming is not; one that arrives whole is served")
    func slowBodyIsClosed() async throws {
        let (server, port, data) = try await start(["KEYWARDEN_BODY_TIMEOUT": "2", "KEYWARDEN_HEAD_TIMEOUT": "30"])
        defer { server.signal(SIGKILL); try? FileManager.default.removeItem(at: data) }
        let slow = try Raw(port: port)
        slow.send("POST /openai/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer kw_none\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":")
        // Parts every 0.5 s for 3 s (past the 2 s limit): kept open, as a slow but steady upload is.
        let steady = try Raw(port: port)
        steady.send("POST /openai/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        // Paced from a thread of its own: the test's tasks share the cooperative pool with other suites that block on
        // sockets, and a starved pool once stretched a 0.5 s pause past the 2 s limit.
        let socket = steady.fd
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                for _ in 0..<6 {
                    _ = " ".withCString { Glibc.send(socket, $0, 1, Int32(MSG_NOSIGNAL)) }
                    usleep(500_000)
                }
                done.resume()
            }
        }
        #expect(steady.secondsUntilClosed(limit: 0.3) == nil, "a body still arriving was cut")
        // The first stopped after its first bytes: closed about 2 s after them.
        let closed = slow.secondsUntilClosed(limit: 15)
        #expect(closed != nil, "a body that stopped kept its connection")
        #expect(try await TestHTTP.send("POST", "http://127.0.0.1:\(port)/openai/v1/chat/completions", body: Data(#"{"model":"m","messages":[]}"#.utf8),
                                        headers: ["Content-Type": "application/json"]).status == 401, "a whole body in time is answered")
    }

    @Test("past the maximum, a new connection is closed at once; one freed makes room")
    func maximumConnections() async throws {
        let (server, port, data) = try await start(["KEYWARDEN_MAX_CONNECTIONS": "3", "KEYWARDEN_HEAD_TIMEOUT": "30"])
        defer { server.signal(SIGKILL); try? FileManager.default.removeItem(at: data) }
        var held = try (0..<3).map { _ in try Raw(port: port) }
        try await Task.sleep(for: .milliseconds(300))
        let extra = try Raw(port: port)
        let refused = extra.secondsUntilClosed(limit: 5)
        #expect(refused != nil && refused! < 2, "refused at once: \(refused.map { "\($0) s" } ?? "still open")")
        held.removeLast()
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await TestHTTP.get("http://127.0.0.1:\(port)/healthz").status == 200)
        _ = held
    }

    @Test("under a low descriptor limit the server raises its soft limit to the hard one, keeps its client connections below it with a warning, and serves")
    func descriptorLimit() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("kw-fd-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        let binary = try KeywardenProcess.binaryURL().path
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": NSTemporaryDirectory(),
                           "KEYWARDEN_HEALTH_INTERVAL": "0"]
        if let url = ProcessInfo.processInfo.environment["KEYWARDEN_BINARY"] { environment["KEYWARDEN_BINARY"] = url }
        // Hard 700, soft 300: the server may raise its own to 700, and keeps 512 for itself.
        let server = try ChildProcess("/bin/sh", ["-c", #"ulimit -Sn 300 && ulimit -Hn 700 && exec "$0" serve --data "$1" --port 0"#, binary, data.path],
                                      environment: environment)
        defer { server.signal(SIGKILL) }
        var port: Int?
        let deadline = ContinuousClock.now + .seconds(30)
        while port == nil, server.isRunning, ContinuousClock.now < deadline {
            if let range = server.stdout.range(of: #"listening on http://[0-9.]+:([0-9]+)"#, options: .regularExpression) {
                port = server.stdout[range].split(separator: ":").last.flatMap { Int($0) }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let listening = try #require(port, "the server did not start: \(server.stderr)")
        #expect(server.stderr.contains("client connections capped") && server.stderr.contains("max_connections=188")
                && server.stderr.contains("descriptors=700"), "\(server.stderr)")
        #expect(try await TestHTTP.get("http://127.0.0.1:\(listening)/healthz").status == 200)
    }
}

/// Requests whose heads the HTTP stack once lost: an upgrade nothing takes, and a path with runs of `/`.
@Suite("Request heads, end to end", .serialized)
struct RequestHeadEndToEndTests {
    @Test("Upgrade: h2c (with or without a body, on the API or the gateway) is answered over HTTP/1.1 and the connection closed after it, what follows dropped; //openai//v1/… is served as /openai/v1/…; an absolute-form target keeps its host")
    func unsupportedUpgradeAndMergedSlashes() async throws {
        let rig = try await GatewayRig(vendors: ["openai"])
        defer { Task { await rig.stop() } }
        let ws = try await rig.workspace("Heads")
        _ = try await rig.key(ws, secret: "sk-heads-0000000000000001")
        let token = try await rig.serviceToken(ws)
        let port = try #require(Int(rig.base.split(separator: ":").last ?? ""))
        let body = #"{"model":"gpt-5.4-mini","messages":[{"role":"user","content":"hi"}]}"#
        let requests = [
            "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: h2c\r\n\r\n",
            "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
            "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)",
            "POST //openai//v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)",
            // Absolute-form: the host stays a host.
            "GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        ]
        for request in requests {
            let raw = try RawTCPConnection(port: port)
            raw.send(request)
            let answer = raw.read(until: "\r\n\r\n", limit: 10)
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(request.prefix(80)) → \(answer.prefix(200))")
            #expect(!answer.lowercased().contains("upgrade: h2c") && !answer.hasPrefix("HTTP/1.1 101"))
            if request.contains("Upgrade: ") {
                // An upgrade was asked for: the answer closes the connection (the next request goes on a new one).
                #expect(raw.secondsUntilClosed(limit: 10) != nil, "closed after its answer")
            } else {
                // The same connection serves the next request.
                raw.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                #expect(raw.read(until: "HTTP/1.1 200", limit: 10).contains("HTTP/1.1 200"), "\(request.prefix(60)): a second request on the connection")
            }
            raw.close()
        }
        // After a request that stopped the HTTP decoder, what the client keeps sending is dropped (not kept until the
        // connection closes), and the connection still closes after its answer.
        let flooding = try RawTCPConnection(port: port)
        flooding.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + String(repeating: "x", count: 1 << 20))
        #expect(flooding.read(until: "\r\n\r\n", limit: 10).hasPrefix("HTTP/1.1 200"))
        #expect(flooding.secondsUntilClosed(limit: 10) != nil)
        flooding.close()
        // The vendor heard neither the upgrade nor the doubled slashes.
        let sent = try await rig.mocks.requests("openai")
        #expect(sent.count == 2, "\(sent.count)")
        #expect(sent.allSatisfy { ($0["path"] as? String).map { !$0.contains("//") } ?? true })
        #expect(sent.allSatisfy { ($0["headers"] as? [String: String])?["upgrade"] == nil })
    }
}
