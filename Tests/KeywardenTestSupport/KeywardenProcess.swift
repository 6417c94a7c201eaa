import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization

/// The built `keywarden` binary, run as a real process with its output captured.
public final class KeywardenProcess: Sendable {
    /// The outcome of a finished run.
    public struct Outcome: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    private let process: ChildProcess

    /// Where a built executable of this package is: `KEYWARDEN_BINARY` (for `keywarden`), else beside the test bundle.
    public static func binaryURL(_ name: String = "keywarden") throws -> URL {
        if name == "keywarden", let path = ProcessInfo.processInfo.environment["KEYWARDEN_BINARY"] {
            return URL(fileURLWithPath: path)
        }
        var candidates: [URL] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent(name))
        }
        candidates.append(Bundle.main.bundleURL.appendingPathComponent(name))
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(name))
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw ProcessError.binaryNotFound(candidates.map(\.path))
        }
        return found
    }

    public enum ProcessError: Error, CustomStringConvertible {
        case binaryNotFound([String])
        case notListening(String)

        public var description: String {
            switch self {
            case .binaryNotFound(let paths): return "the keywarden binary was not found (looked at \(paths)); run `swift build` first"
            case .notListening(let output): return "keywarden did not start listening; its output:\n\(output)"
            }
        }
    }

    /// Starts `keywarden` with `arguments` and `environment` (added to a minimal environment);
    /// `stdin`, when given, is written to its standard input, which is then closed.
    public init(_ arguments: [String], environment: [String: String] = [:], stdin: String? = nil, executable: String = "keywarden") throws {
        // The whole suite runs at once: database work may wait longer than production's deadline (tests of the deadline set their own).
        var env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": NSTemporaryDirectory(),
                   "KEYWARDEN_DATABASE_TIMEOUT": "60"]
        env.merge(environment) { $1 }
        process = try ChildProcess(try Self.binaryURL(executable).path, arguments, environment: env, stdin: stdin.map { Data($0.utf8) })
    }

    /// Runs `keywarden` to completion.
    public static func run(_ arguments: [String], environment: [String: String] = [:], stdin: String? = nil, timeout: Duration = .seconds(60)) async throws -> Outcome {
        let process = try KeywardenProcess(arguments, environment: environment, stdin: stdin)
        return try await process.wait(timeout: timeout)
    }

    public var stdout: String { process.stdout }
    public var stderr: String { process.stderr }
    public var isRunning: Bool { process.isRunning }

    /// Waits for the "listening on http://host:port" line and returns the port.
    public func waitUntilListening(timeout: Duration = .seconds(30)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let range = stdout.range(of: #"listening on http://[0-9.]+:([0-9]+)"#, options: .regularExpression) {
                let line = String(stdout[range])
                if let port = line.split(separator: ":").last.flatMap({ Int($0) }) { return port }
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ProcessError.notListening(stdout + stderr)
    }

    /// The admin token a first run prints just after "listening on" (it may arrive a moment after that line); `nil`
    /// when none comes within `timeout`.
    public func firstRunToken(timeout: Duration = .seconds(10)) async -> String? {
        let deadline = ContinuousClock.now + timeout
        repeat {
            if let token = stdout.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }).first(where: { $0.hasPrefix("kw_") }) {
                return token
            }
            try? await Task.sleep(for: .milliseconds(20))
        } while ContinuousClock.now < deadline
        return nil
    }

    /// Sends a signal (SIGTERM by default).
    public func signal(_ signal: Int32 = SIGTERM) {
        process.signal(signal)
    }

    /// Waits for the process to end; kills it after `timeout`.
    public func wait(timeout: Duration = .seconds(30)) async throws -> Outcome {
        await process.wait(timeout: timeout)
        return Outcome(status: process.terminationStatus ?? -1, stdout: stdout, stderr: stderr)
    }
}

/// A small HTTP client for tests against a running server.
public enum TestHTTP {
    public struct Reply: Sendable {
        public let status: Int
        public let body: Data
        public let headers: [String: String]
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public static func get(_ url: String, headers: [String: String] = [:]) async throws -> Reply {
        try await send("GET", url, headers: headers)
    }

    public static func send(_ method: String, _ url: String, body: Data? = nil, headers: [String: String] = [:]) async throws -> Reply {
        guard let target = URL(string: url) else { throw URLError(.badURL) }
        var request = URLRequest(url: target)
        request.httpMethod = method
        request.httpBody = body
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as? HTTPURLResponse
        var collected: [String: String] = [:]
        for (key, value) in http?.allHeaderFields ?? [:] {
            collected[String(describing: key).lowercased()] = String(describing: value)
        }
        return Reply(status: http?.statusCode ?? 0, body: data, headers: collected)
    }
}
