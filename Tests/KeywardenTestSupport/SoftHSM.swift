import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// SoftHSM2 for the tests: its module, its `softhsm2-util`, and one token folder for the whole test process.
///
/// The module reads `SOFTHSM2_CONF` at `C_Initialize`, and the variable is the process's: so it is set once, the first
/// time a test asks for a token, to a configuration of this process's own folder, and every test makes tokens of its own
/// (unique labels) in that folder. The suite is serialized: a test's `close()` finalizes the module for the next one.
public enum SoftHSM {
    /// Where Debian (and others) put the module; `KEYWARDEN_TEST_SOFTHSM2_MODULE` names another.
    public static let module: String? = {
        let named = ProcessInfo.processInfo.environment["KEYWARDEN_TEST_SOFTHSM2_MODULE"].map { [$0] } ?? []
        return (named + ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                         "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so"])
            .first { FileManager.default.fileExists(atPath: $0) }
    }()

    /// `softhsm2-util`, found on the PATH.
    public static let util: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/softhsm2-util" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    public static var available: Bool { module != nil && util != nil }

    public static let absent = "SoftHSM2 is not installed (no libsofthsm2.so or softhsm2-util; apt-get install softhsm2): the PKCS#11 token tests are SKIPPED"

    /// The process's token folder and configuration file, `SOFTHSM2_CONF` set to it (once); removed when the process ends.
    public static let configuration: Result<String, ConfigurationFailed> = {
        let directory = TestFolder.root.appendingPathComponent("softhsm")
        let tokens = directory.appendingPathComponent("tokens")
        let file = directory.appendingPathComponent("softhsm2.conf")
        do {
            try FileManager.default.createDirectory(at: tokens, withIntermediateDirectories: true)
            try "directories.tokendir = \(tokens.path)\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
                .write(to: file, atomically: true, encoding: .utf8)
        } catch {
            return .failure(ConfigurationFailed(description: "cannot write the SoftHSM2 configuration: \(error)"))
        }
        setenv("SOFTHSM2_CONF", file.path, 1)
        return .success(file.path)
    }()

    public struct ConfigurationFailed: Error, CustomStringConvertible {
        public let description: String
    }

    /// A new token labelled `label` with this user PIN (SO PIN `654321`), initialized in the process's folder.
    public static func makeToken(label: String, pin: String) throws {
        let conf = try configuration.get()
        guard let util else { throw ConfigurationFailed(description: absent) }
        var environment = ProcessInfo.processInfo.environment
        environment["SOFTHSM2_CONF"] = conf
        let result = try ChildProcess.run(util, ["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "654321"],
                                          environment: environment)
        guard result.status == 0 else {
            throw ConfigurationFailed(description: "softhsm2-util --init-token failed (\(result.status)): \(result.stderr)")
        }
    }

    /// A label no other test uses (at most 32 bytes).
    public static func label(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8))"
    }
}

/// This test process's folder for tokens and PIN files, removed when the process exits.
public enum TestFolder {
    public static let root: URL = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kw-pkcs11-\(getpid())-\(UUID().uuidString.prefix(8))")
        atexit {
            try? FileManager.default.removeItem(at: TestFolder.root)
        }
        return root
    }()
}

/// A PIN file of its own.
public func pinFile(_ pin: String, trailing: String = "\n") throws -> String {
    let directory = TestFolder.root.appendingPathComponent("pins")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let file = directory.appendingPathComponent(UUID().uuidString)
    try (pin + trailing).write(to: file, atomically: true, encoding: .utf8)
    return file.path
}

