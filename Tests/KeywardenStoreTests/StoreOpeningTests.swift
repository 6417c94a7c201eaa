import Foundation
import KeywardenApp
import KeywardenCore
import KeywardenVault
import SQLKit
import KeywardenTestSupport
import Testing
@testable import KeywardenStore

@Suite("Opening the store")
struct StoreOpeningTests {
    @Test("a first run creates the keyring, the database and one admin token; a second run creates nothing")
    func firstRunThenSecondRun() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, report) = try await fixture.open()
        #expect(report.createdKeyring && report.createdDatabase)
        let token = try #require(report.adminToken)
        #expect(token.value.hasPrefix("kw_"))
        let found = try await store.engine.read { db in try await store.tokens.find(presented: token.value, on: db) }
        #expect(found?.kind == .platformAdmin)
        await store.close()

        let (again, secondReport) = try await fixture.open()
        #expect(!secondReport.createdKeyring && !secondReport.createdDatabase && secondReport.adminToken == nil)
        #expect(secondReport.seed.inserted.isEmpty)
        let admins = try await again.engine.read { db in try await again.tokens.countLive(kind: .platformAdmin, on: db) }
        #expect(admins == 1)
        await again.close()
    }

    @Test("the database is in WAL mode with foreign keys on and full sync, readable by its owner only", .enabled(if: TestDatabase.engine == .sqlite))
    func pragmas() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let (mode, foreignKeys, sync) = try await store.engine.transaction { db in
            let mode = try await db.raw("PRAGMA journal_mode").first()?.decode(column: "journal_mode", as: String.self)
            let fk = try await db.raw("PRAGMA foreign_keys").first()?.decode(column: "foreign_keys", as: Int.self)
            let sync = try await db.raw("PRAGMA synchronous").first()?.decode(column: "synchronous", as: Int.self)
            return (mode, fk, sync)
        }
        #expect(mode == "wal" && foreignKeys == 1 && sync == 2)
        let attributes = try FileManager.default.attributesOfItem(atPath: fixture.directory.appendingPathComponent("keywarden.sqlite").path)
        #expect(attributes[.posixPermissions] as? Int == 0o600)
        await store.close()
    }

    @Test("migrations apply once and are recorded")
    func migrationsApplyOnce() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let again = try await Migrator().migrate(store.engine, logger: fixture.logs.logger)
        #expect(again.isEmpty)
        #expect(try await Migrator().appliedVersion(store.engine) == Migrator().latestVersion)
        await store.close()
    }

    @Test("a database from a newer Keywarden is refused with a clear error")
    func newerSchemaIsRefused() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        try await store.engine.transaction { db in
            try await db.insert(into: Migrator.table).columns("version", "name", "applied_at")
                .values(SQLBind(999), SQLBind("from the future"), SQLBind(Timestamp.now)).run()
        }
        await store.close()
        let error = await #expect(throws: StoreError.self) { try await fixture.open() }
        #expect(error == .schemaTooNew(found: 999, known: Migrator().latestVersion))
        #expect(error?.description.contains("newer keywarden") == true)
    }

    @Test("a failing migration rolls back and leaves the version where it was")
    func failingMigrationRollsBack() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let broken = Migrator(migrations: Schema.migrations + [
            Migration(version: Migrator().latestVersion + 1, name: "half done") { db in
                try await db.create(table: "half").column("id", type: .text).run()
                try await db.raw("THIS IS NOT SQL").run()
            },
        ])
        await #expect(throws: StoreError.self) { try await broken.migrate(store.engine, logger: fixture.logs.logger) }
        #expect(try await Migrator().appliedVersion(store.engine) == Migrator().latestVersion)
        // The half-made table is gone (reading it fails on either engine).
        let half = try? await store.engine.read { db in try await db.raw("SELECT count(*) AS n FROM half").first() }
        #expect(half == nil)
        await store.close()
    }

    @Test("an uninitialised directory is an error without --create; a directory that cannot be written is an error")
    func directoryErrors() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let uninitialised = await #expect(throws: StoreError.self) { try await fixture.open(create: false) }
        #expect(uninitialised?.code == "not_initialized")

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kw-file-\(UUID().uuidString)")
        #expect(FileManager.default.createFile(atPath: file.path, contents: Data("x".utf8)))
        defer { try? FileManager.default.removeItem(at: file) }
        let blocked = StoreConfiguration(
            dataDirectory: file.appendingPathComponent("data"),
            keyringSource: .resolve(environment: [:], dataDirectory: file.appendingPathComponent("data")),
            catalog: try ProviderCatalog.load()
        )
        let error = await #expect(throws: StoreError.self) {
            try await AppServices.open(blocked, createIfMissing: true, logger: fixture.logs.logger)
        }
        #expect(error?.code == "data_directory_not_writable")
    }

    @Test("a deleted keyring with secrets in the database is refused, never replaced")
    func missingKeyringIsRefused() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        await store.close()
        let keyring = fixture.directory.appendingPathComponent("keyring.json")
        let before = try fixture.databaseBytes()
        try FileManager.default.removeItem(at: keyring)
        let error = await #expect(throws: StoreError.self) { try await fixture.open() }
        #expect(error?.code == "keyring_missing")
        #expect(!FileManager.default.fileExists(atPath: keyring.path))
        // Byte for byte on SQLite; the same rows on PostgreSQL (pg_dump's row order may vary).
        func lines(_ bytes: [UInt8]) -> [Substring] {
            // pg_dump marks each dump with a random `\restrict` key.
            String(decoding: bytes, as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }.sorted()
        }
        #expect(lines(try fixture.databaseBytes()) == lines(before))
    }
}

