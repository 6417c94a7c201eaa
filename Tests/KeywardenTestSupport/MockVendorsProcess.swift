import Foundation

/// The `keywarden-mock-vendors` process: one port per vendor, requests recorded.
public final class MockVendorsProcess: Sendable {
    let process: KeywardenProcess
    /// Each vendor's base URL.
    public let urls: [String: String]
    /// What the mocks printed so far (the raw listener says when a caller closed its connection).
    public var output: String { process.stdout }

    /// Starts the mocks (all families by default) and waits for every port.
    public init(vendors: [String]? = nil) async throws {
        var arguments: [String] = []
        if let vendors { arguments = ["--vendor"] + vendors }
        process = try KeywardenProcess(arguments, executable: "keywarden-mock-vendors")
        let expected = vendors?.count ?? 18
        let deadline = ContinuousClock.now + .seconds(30)
        var found: [String: String] = [:]
        while ContinuousClock.now < deadline {
            found = [:]
            for line in process.stdout.split(separator: "\n") where line.hasPrefix("mock ") {
                let parts = line.split(separator: " ")
                if parts.count == 3 { found[String(parts[1])] = String(parts[2]) }
            }
            if found.count >= expected { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard found.count >= expected else { throw KeywardenProcess.ProcessError.notListening(process.stdout + process.stderr) }
        urls = found
    }

    /// `KEYWARDEN_UPSTREAM_<ID>` for every mocked vendor (the webhook receiver is not one).
    public var upstreamEnvironment: [String: String] {
        Dictionary(uniqueKeysWithValues: urls.filter { !["receiver", "hooks", "hostile-raw"].contains($0.key) }.map { ("KEYWARDEN_UPSTREAM_" + $0.key.uppercased().replacingOccurrences(of: "-", with: "_"), $0.value) })
    }

    /// The requests a vendor's mock received, oldest first.
    public func requests(_ vendor: String) async throws -> [[String: Any]] {
        guard let base = urls[vendor] else { return [] }
        let reply = try await TestHTTP.get(base + "/__mock/requests")
        return (try JSONSerialization.jsonObject(with: reply.body) as? [[String: Any]]) ?? []
    }

    /// Forgets the recorded requests of every vendor.
    public func clear() async throws {
        for base in urls.values { _ = try await TestHTTP.send("DELETE", base + "/__mock/requests") }
    }

    /// Makes a mock answer every (non-mock) request with this status from now on.
    public func respond(_ vendor: String, status: Int) async throws {
        guard let base = urls[vendor] else { return }
        _ = try await TestHTTP.send("POST", base + "/__mock/respond?status=\(status)")
    }

    public func stop() async {
        // A test double: no need to wait for a request it is deliberately sleeping on.
        process.signal(SIGKILL)
        _ = try? await process.wait(timeout: .seconds(10))
    }
}
