import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenStore
import KeywardenTestSupport
import Logging
import Testing
@testable import KeywardenNotifications

/// A real SMTP server (aiosmtpd, from PyPI) with STARTTLS and AUTH, run by the test.
final class SMTPServer: Sendable {
    let process: ChildProcess
    let port: Int
    let directory: URL
    let caFile: String

    static let user = "keywarden"
    static let password = "smtp-pass-9f8e7d"

    init() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kw-smtp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let cert = directory.appendingPathComponent("cert.pem").path, key = directory.appendingPathComponent("key.pem").path
        _ = try ChildProcess.run("/usr/bin/env", ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                                                  "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                                 output: .discarded)
        caFile = cert

        let python = try await PythonPeers.python(for: ["aiosmtpd"])
        process = try ChildProcess(python, PythonPeers.arguments(python, script: root.appendingPathComponent("scripts/test-smtp-server.py").path,
                                                                 [cert, key, directory.appendingPathComponent("mail").path, Self.user, Self.password]))
        let deadline = ContinuousClock.now + .seconds(30)
        while !process.stdout.contains("\n"), process.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let words = process.stdout.split(separator: "\n").first?.split(separator: " ") ?? []
        guard words.count == 3, let port = Int(words[2].trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.signal(SIGKILL)
            throw SMTPError(stage: "test server", reply: "aiosmtpd did not start (is it installed? pip install aiosmtpd)")
        }
        self.port = port
    }

    /// The messages received so far.
    func messages() throws -> [[String: Any]] {
        let folder = directory.appendingPathComponent("mail")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        return try names.map { try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent($0))) as? [String: Any] ?? [:] }
    }

    func waitForMessages(_ count: Int) async throws -> [[String: Any]] {
        for _ in 0..<100 {
            let all = try messages()
            if all.count >= count { return all }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try messages()
    }

    func settings(security: SMTPSettings.Security = .starttls, username: String? = SMTPServer.user) -> SMTPSettings {
        SMTPSettings(host: "localhost", port: port, security: security, username: username, from: "keywarden@example.com", platformAddress: "ops@example.com")
    }

    func stop() {
        // SIGKILL: a test process may have inherited SIGTERM as ignored (ServiceLifecycle ignores it to catch it).
        process.signal(SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }
}

@Suite("SMTP client", .serialized)
struct SMTPClientTests {
    @Test("a message goes through STARTTLS and AUTH PLAIN to a real server, dot-stuffed and intact")
    func sendsOverStartTLS() async throws {
        let server = try await SMTPServer()
        defer { server.stop() }
        var logger = Logger(label: "smtp-test") { _ in StreamLogHandler.standardError(label: "smtp-test") }
        logger.logLevel = .debug
        let client = SMTPClient(settings: server.settings(), password: Secret(SMTPServer.password), caFile: server.caFile, timeout: .seconds(8), logger: logger)
        let body = "Line one\n.hidden line that starts with a dot\n..two dots\n\nÜnïcödé ✓"
        try await client.send(EmailMessage(from: "keywarden@example.com", to: ["ops@example.com"], subject: "Key \"Prod\" stopped working ✓", body: body))
        let messages = try await server.waitForMessages(1)
        let message = try #require(messages.first)
        #expect(message["tls"] as? Bool == true && message["authenticated"] as? Bool == true)
        #expect(message["to"] as? [String] == ["ops@example.com"])
        let data = try #require(message["data"] as? String)
        #expect(data.contains("Subject: =?UTF-8?B?"))
        // Decode the base64 body back: dot-stuffing was undone by the server, and nothing was lost.
        let encoded = try #require(data.components(separatedBy: "\r\n\r\n").dropFirst().first ?? data.components(separatedBy: "\n\n").dropFirst().first)
        let decoded = String(decoding: Data(base64Encoded: encoded.replacingOccurrences(of: "\r\n", with: "").replacingOccurrences(of: "\n", with: "")) ?? Data(), as: UTF8.self)
        #expect(decoded == body.replacingOccurrences(of: "\n", with: "\r\n"))
    }

    @Test("a wrong password, an untrusted certificate and a refused STARTTLS are clear errors")
    func failures() async throws {
        let server = try await SMTPServer()
        defer { server.stop() }
        let message = EmailMessage(from: "keywarden@example.com", to: ["ops@example.com"], subject: "x", body: "y")
        let wrong = await #expect(throws: SMTPError.self) {
            try await SMTPClient(settings: server.settings(), password: Secret("nope"), caFile: server.caFile).send(message)
        }
        #expect(wrong?.stage == "AUTH" && wrong?.reply.hasPrefix("535") == true)
        #expect(wrong.map { !$0.description.contains("nope") } == true)
        // Without the test CA, the self-signed certificate is refused.
        await #expect(throws: (any Error).self) {
            try await SMTPClient(settings: server.settings(), password: Secret(SMTPServer.password)).send(message)
        }
        // The server requires STARTTLS: a plain session may not even send MAIL.
        let plain = await #expect(throws: SMTPError.self) {
            try await SMTPClient(settings: server.settings(security: .none, username: nil), password: nil).send(message)
        }
        #expect(plain?.stage == "MAIL FROM")
        // And a password is never sent in the clear to another host.
        var remote = server.settings(security: .none)
        remote.host = "smtp.example.invalid"
        #expect(SMTPClient.dotStuffed(".a\r\nb\r\n..c") == "..a\r\nb\r\n...c")
    }
}
