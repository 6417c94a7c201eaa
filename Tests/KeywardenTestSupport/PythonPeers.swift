import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The Python the tests' outside clients run in (the vendors' official SDKs, aiosmtpd, a local KMS), fetched by the tests themselves:
/// `KEYWARDEN_PYTHON` when set; else the machine's `python3` when it already has every package asked for; else a
/// virtual environment under `.build/test-python`, made and filled with pip once (under a file lock, so suites that
/// start together install once).
public enum PythonPeers {
    /// Each package the tests use: the module they import, and what pip installs (the versions the suites were written
    /// against where an SDK's shape matters).
    public static let packages: [(module: String, requirement: String)] = [
        ("openai", "openai>=1.50"), ("anthropic", "anthropic>=0.40"), ("google.genai", "google-genai==3.6.1"),
        ("mistralai", "mistralai==3.7.0"), ("elevenlabs", "elevenlabs==2.78.0"), ("aiosmtpd", "aiosmtpd>=1.4"),
        ("openapi_spec_validator", "openapi-spec-validator>=0.7"), ("websockets", "websockets>=13"),
        ("moto.server", "moto[server]>=5"), ("boto3", "boto3"),
    ]

    /// The repository's root.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A Python that imports every one of `modules`, fetching them first when none does.
    public static func python(for modules: [String]) async throws -> String {
        if let path = ProcessInfo.processInfo.environment["KEYWARDEN_PYTHON"] { return path }
        if await imports(modules, with: "/usr/bin/env", prefix: ["python3"]) { return "/usr/bin/env" }
        let environment = root.appendingPathComponent(".build/test-python")
        let python = environment.appendingPathComponent("bin/python").path
        try await withFileLock(root.appendingPathComponent(".build/test-python.lock").path) {
            if await imports(modules, with: python, prefix: []) { return }
            if !FileManager.default.isExecutableFile(atPath: python) {
                try await run("/usr/bin/env", ["python3", "-m", "venv", environment.path])
            }
            let wanted = packages.filter { modules.contains($0.module) }.map(\.requirement)
            try await run(python, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check"] + wanted)
        }
        return python
    }

    /// The arguments that run `script` with the Python ``python(for:)`` chose.
    public static func arguments(_ python: String, script: String, _ rest: [String]) -> [String] {
        python == "/usr/bin/env" ? ["python3", script] + rest : [script] + rest
    }

    static func imports(_ modules: [String], with executable: String, prefix: [String]) async -> Bool {
        guard executable == "/usr/bin/env" || FileManager.default.isExecutableFile(atPath: executable) else { return false }
        guard let check = try? ChildProcess(executable, prefix + ["-c", modules.map { "import \($0)" }.joined(separator: "; ")]) else { return false }
        await check.wait(timeout: .seconds(60))
        return check.terminationStatus == 0
    }

    struct InstallFailed: Error, CustomStringConvertible {
        let description: String
    }

    static func run(_ executable: String, _ arguments: [String]) async throws {
        let process = try ChildProcess(executable, arguments)
        await process.wait(timeout: .seconds(600))
        guard process.terminationStatus == 0 else {
            throw InstallFailed(description: "\(([executable] + arguments).joined(separator: " ")) failed: \(process.stderr.suffix(2000))")
        }
    }

    static func withFileLock(_ path: String, _ body: () async throws -> Void) async throws {
        let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return try await body() }
        defer { close(descriptor) }
        // Waits off the cooperative pool's threads' hands: a blocking flock would hold one of them.
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 { try await Task.sleep(for: .milliseconds(200)) }
        defer { flock(descriptor, LOCK_UN) }
        try await body()
    }
}
