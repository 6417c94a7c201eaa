import Foundation
import KeywardenStore
import KeywardenTestSupport
import Logging
import SQLKit
import Testing

/// `sslmode` against a real PostgreSQL server with TLS on (`.ci/run` starts it with a self-signed certificate for
/// 127.0.0.1 and names it in `KEYWARDEN_TEST_POSTGRES_CA`).
@Suite("TLS to PostgreSQL", .enabled(if: TestDatabase.postgresAvailable && ProcessInfo.processInfo.environment["KEYWARDEN_TEST_POSTGRES_CA"] != nil))
struct PostgresTLSTests {
    /// The test server's URL with `parameters` instead of its own query.
    func url(_ parameters: String) throws -> String {
        let base = try #require(ProcessInfo.processInfo.environment["KEYWARDEN_TEST_POSTGRES_URL"])
        return String(base.prefix { $0 != "?" }) + "?" + parameters
    }

    /// Whether the engine's connection is encrypted, as the server sees it.
    func encrypted(_ text: String) async throws -> Bool {
        let engine = try await PostgresEngine(url: text, timeouts: StoreFixture.databaseTimeouts, logger: Logger(label: "tls-test"))
        defer { Task { await engine.close() } }
        return try await engine.read { db in
            try await db.raw("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").first()?.decode(column: "ssl", as: Bool.self) ?? false
        }
    }

    @Test("verify-full with the server's certificate and require connect encrypted; disable does not; a certificate no trusted root signed is refused with a clear error")
    func sslModes() async throws {
        let ca = try #require(ProcessInfo.processInfo.environment["KEYWARDEN_TEST_POSTGRES_CA"])
        #expect(try await encrypted(url("sslmode=verify-full&sslrootcert=\(ca)")))
        #expect(try await encrypted(url("sslmode=require")))
        #expect(try await !encrypted(url("sslmode=disable")))

        // The system's roots did not sign the test server's certificate: verification fails at once (not after the
        // pool's minute of retries), and the error says why.
        let untrusted = try url("sslmode=verify-full&sslrootcert=/etc/ssl/certs/ca-certificates.crt")
        let started = ContinuousClock.now
        do {
            let engine = try await PostgresEngine(url: untrusted, timeouts: StoreFixture.databaseTimeouts, logger: Logger(label: "tls-test"))
            let outcome = try? await engine.read { db in try await db.raw("SELECT 1 AS one").first() }
            await engine.close()
            Issue.record("an untrusted certificate was accepted (\(outcome == nil ? "no query" : "query answered"))")
        } catch let error as StoreError {
            #expect("\(error)".contains("127.0.0.1") && "\(error)".contains("CERTIFICATE_VERIFY_FAILED"), "\(error)")
            #expect(ContinuousClock.now - started < .seconds(20), "refused after \(ContinuousClock.now - started)")
            #expect(!"\(error)".contains("password"))
        }
    }
}
