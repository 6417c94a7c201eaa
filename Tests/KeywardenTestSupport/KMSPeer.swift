import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A server of `scripts/test-kms-server.py` on a free port of 127.0.0.1: moto (a real local KMS that checks SigV4
/// signatures) or the hostile double. Started once per test process; ChildProcess kills it when the process exits.
public final class KMSPeer: Sendable {
    public let process: ChildProcess
    public let info: [String: String]
    public let port: Int

    public static let moto = Task { try await KMSPeer(mode: "moto", modules: ["moto.server", "boto3"]) }
    public static let double = Task { try await KMSPeer(mode: "double", modules: []) }

    public struct StartFailed: Error, CustomStringConvertible {
        public let description: String
    }

    public init(mode: String, modules: [String]) async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let python = try await PythonPeers.python(for: modules)
        process = try ChildProcess(python, PythonPeers.arguments(python, script: root.appendingPathComponent("scripts/test-kms-server.py").path, [mode]))
        let deadline = ContinuousClock.now + .seconds(60)
        while !process.stdout.contains("\n"), process.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let line = process.stdout.split(separator: "\n").first.map(String.init) ?? ""
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let port = object["port"] as? Int else {
            process.signal(SIGKILL)
            throw StartFailed(description: "test-kms-server.py \(mode) did not start: \(process.stderr.suffix(2000))")
        }
        self.port = port
        info = object.compactMapValues { $0 as? String }
    }

    public var endpoint: URL { URL(string: "http://127.0.0.1:\(port)") ?? URL(fileURLWithPath: "/") }

    /// A customer's action on their own key of this (moto) KMS, with the AWS SDK: `create` (prints the new key's ARN),
    /// `disable`, `enable`, `schedule-deletion`, `cancel-deletion` (print the key's state).
    @discardableResult
    public func customer(_ action: String, key: String? = nil) async throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let python = try await PythonPeers.python(for: ["boto3"])
        let arguments = PythonPeers.arguments(python, script: root.appendingPathComponent("scripts/test-kms-customer.py").path,
                                              [endpoint.absoluteString, info["accessKeyId"] ?? "", info["secretAccessKey"] ?? "", action] + (key.map { [$0] } ?? []))
        let run = try ChildProcess.run(python, arguments)
        guard run.status == 0 else { throw StartFailed(description: "test-kms-customer.py \(action) failed: \(run.stderr.suffix(2000))") }
        return String(decoding: run.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

}
