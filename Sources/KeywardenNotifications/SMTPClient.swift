import KeywardenApp
import Foundation
import KeywardenCore
import KeywardenStore
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL

/// One e-mail: plain text, UTF-8.
public struct EmailMessage: Sendable {
    public var from: String
    public var to: [String]
    public var subject: String
    public var body: String

    public init(from: String, to: [String], subject: String, body: String) {
        self.from = from
        self.to = to
        self.subject = subject
        self.body = body
    }
}

/// Why a message was not sent. The reply text of the server is kept; credentials never are.
public struct SMTPError: Error, Sendable, CustomStringConvertible {
    public let stage: String
    public let reply: String

    public var description: String { "SMTP \(stage) failed: \(reply)" }

    /// Whether trying again later may succeed (4xx replies, network errors).
    public var isTransient: Bool { !reply.hasPrefix("5") }
}

/// A small SMTP client on SwiftNIO: EHLO, STARTTLS (NIOSSL), AUTH PLAIN, MAIL / RCPT / DATA with
/// dot-stuffing, QUIT. Refuses to send a password over an unencrypted connection to another host.
public struct SMTPClient: Sendable {
    public let settings: SMTPSettings
    let password: Secret?
    let tls: TLSConfiguration
    let timeout: Duration
    let clientName: String
    /// Logs the conversation at debug level (commands and replies; never the AUTH payload).
    let logger: Logger

    /// - Parameter caFile: trust only the certificates in this PEM file (a private relay); `nil` uses the system's roots.
    public init(settings: SMTPSettings, password: Secret?, caFile: String? = nil, timeout: Duration = .seconds(30),
                clientName: String = "keywarden.localhost", logger: Logger = Logger(label: "keywarden.smtp")) {
        self.logger = logger
        self.settings = settings
        self.password = password
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile { tls.trustRoots = .file(caFile) }
        self.tls = tls
        self.timeout = timeout
        self.clientName = clientName
    }

    /// Sends one message; throws ``SMTPError`` with the server's reply when it is refused.
    public func send(_ message: EmailMessage) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.converse(message) }
            group.addTask {
                try await Task.sleep(for: self.timeout)
                throw SMTPError(stage: "connection", reply: "no answer within \(self.timeout.components.seconds) s")
            }
            try await group.next()
            group.cancelAll()
        }
    }

    func converse(_ message: EmailMessage) async throws {
        let host = settings.host
        let sslContext = try NIOSSLContext(configuration: tls)
        let implicitTLS = settings.security == .tls
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: host, port: settings.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if implicitTLS {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: Self.sniName(host)))
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { inbound, outbound in
            var lines = inbound.makeAsyncIterator()
            func reply(_ stage: String, expect codes: Set<Int>) async throws -> [String] {
                var text: [String] = []
                while true {
                    guard let buffer = try await lines.next() else { throw SMTPError(stage: stage, reply: "the server closed the connection") }
                    let line = String(buffer: buffer)
                    text.append(line)
                    // "250-…" continues a reply; "250 …" ends it.
                    if line.count < 4 || line[line.index(line.startIndex, offsetBy: 3)] != "-" { break }
                }
                logger.debug("SMTP <- \(text.joined(separator: " | "))")
                let code = Int(text.last?.prefix(3) ?? "") ?? 0
                guard codes.contains(code) else { throw SMTPError(stage: stage, reply: text.joined(separator: " ")) }
                return text
            }
            func command(_ text: String) async throws {
                logger.debug("SMTP -> \(text.hasPrefix("AUTH") ? "AUTH PLAIN <redacted>" : text)")
                try await outbound.write(ByteBuffer(string: text + "\r\n"))
            }

            _ = try await reply("greeting", expect: [220])
            try await command("EHLO \(clientName)")
            var capabilities = try await reply("EHLO", expect: [250]).map { String($0.dropFirst(4)).uppercased() }
            var encrypted = implicitTLS
            if settings.security == .starttls {
                guard capabilities.contains(where: { $0.hasPrefix("STARTTLS") }) else {
                    throw SMTPError(stage: "STARTTLS", reply: "the server does not offer STARTTLS; refusing to continue unencrypted")
                }
                try await command("STARTTLS")
                _ = try await reply("STARTTLS", expect: [220])
                try await channel.channel.eventLoop.submit {
                    try channel.channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: sslContext, serverHostname: Self.sniName(host)), position: .first
                    )
                }.get()
                encrypted = true
                try await command("EHLO \(clientName)")
                capabilities = try await reply("EHLO after STARTTLS", expect: [250]).map { String($0.dropFirst(4)).uppercased() }
            }
            if let username = settings.username, !username.isEmpty {
                guard encrypted || Self.isLoopback(host) else {
                    throw SMTPError(stage: "AUTH", reply: "refusing to send a password over an unencrypted connection; use starttls or tls")
                }
                guard capabilities.contains(where: { $0.hasPrefix("AUTH") && $0.contains("PLAIN") }) else {
                    throw SMTPError(stage: "AUTH", reply: "the server does not offer AUTH PLAIN")
                }
                let credentials = (password ?? Secret("")).withPlaintext { password -> String in
                    Data([0] + Array(username.utf8) + [0] + password).base64EncodedString()
                }
                try await command("AUTH PLAIN \(credentials)")
                _ = try await reply("AUTH", expect: [235])
            }
            try await command("MAIL FROM:<\(Self.address(message.from))>")
            _ = try await reply("MAIL FROM", expect: [250])
            for recipient in message.to {
                try await command("RCPT TO:<\(Self.address(recipient))>")
                _ = try await reply("RCPT TO", expect: [250, 251])
            }
            try await command("DATA")
            _ = try await reply("DATA", expect: [354])
            try await outbound.write(ByteBuffer(string: Self.dotStuffed(EmailComposer.compose(message)) + "\r\n.\r\n"))
            _ = try await reply("message", expect: [250])
            try await command("QUIT")
            _ = try? await reply("QUIT", expect: [221])
        }
    }

    /// Lines that start with "." get another one, so none ends the message early (RFC 5321 §4.5.2).
    public static func dotStuffed(_ text: String) -> String {
        text.components(separatedBy: "\r\n").map { $0.hasPrefix(".") ? "." + $0 : $0 }.joined(separator: "\r\n")
    }

    /// An address without angle brackets, spaces or line breaks (no command injection).
    static func address(_ text: String) -> String {
        text.filter { !"<>\r\n ".contains($0) }
    }

    static func sniName(_ host: String) -> String? {
        // SNI takes host names, not IP addresses.
        host.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" } ? nil : host
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// Builds the DATA section of a plain-text UTF-8 message.
public enum EmailComposer {
    public static func compose(_ message: EmailMessage, date: Date = Date(), id: String = UUID().uuidString) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        let domain = message.from.split(separator: "@").last.map(String.init) ?? "keywarden.localhost"
        let headers = [
            "From: \(header(message.from))",
            "To: \(message.to.map(header).joined(separator: ", "))",
            "Subject: \(encodedWord(message.subject))",
            "Date: \(formatter.string(from: date))",
            "Message-ID: <\(id)@\(header(domain))>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64",
        ]
        let body = Data(message.body.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n").utf8)
            .base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        return headers.joined(separator: "\r\n") + "\r\n\r\n" + body
    }

    /// A header value with line breaks removed (no header injection).
    static func header(_ value: String) -> String {
        value.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
    }

    /// RFC 2047 encoding for a subject that is not plain ASCII.
    static func encodedWord(_ text: String) -> String {
        let clean = header(text)
        guard clean.unicodeScalars.contains(where: { !$0.isASCII }) else { return clean }
        return "=?UTF-8?B?\(Data(clean.utf8).base64EncodedString())?="
    }
}
