import Foundation
import HTTPTypes
import KeywardenStore
import KeywardenTestSupport
import SQLKit
import Testing

/// What a client sees when the database cannot answer: a stable code and a status that says so, never `500`.
@Suite("Store errors on every route")
struct StoreErrorRouteTests {
    @Test("a database that cannot answer is 503 store_unavailable with Retry-After on the API, the gateway and the pages, and says nothing of the database")
    func unavailableIs503() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Before")
            let service = try await api.serviceToken(ws, permissions: ["gateway.use"])
            // The database goes away under the running server.
            await harness.store.store.engine.close()
            for (path, token) in [("/api/v1/workspaces", harness.adminToken), ("/api/v1/workspaces/\(ws)/keys", harness.adminToken),
                                  ("/api/v1/audit", harness.adminToken)] {
                let reply = try await api.get(path, token: token)
                #expect(reply.status == 503 && reply.errorCode == "store_unavailable" && reply.headers["retry-after"] == "2", "\(path): \(reply.status) \(reply.text)")
                #expect(!reply.text.contains("sqlite") && !reply.text.contains(harness.fixture.directory.path))
            }
            let write = try await api.post("/api/v1/workspaces", token: harness.adminToken, json: ["name": "During"])
            #expect(write.status == 503 && write.errorCode == "store_unavailable")
            let gateway = try await api.call(.post, "/openai/v1/chat/completions", token: service, json: ["model": "gpt-4.1-mini", "messages": []])
            #expect(gateway.status == 503 && gateway.headers["retry-after"] != nil, "\(gateway.status) \(gateway.text)")
            // A page with a session cookie (looked up in the database): a short HTML page, not the API's JSON.
            let (pageStatus, pageType, pageRetry, pageText) = try await api.client.execute(uri: "/workspaces", method: .get, headers: [.cookie: "kw_session=\(harness.adminToken)"]) {
                (Int($0.status.code), $0.headers[.contentType] ?? "", $0.headers[.retryAfter] ?? "", String(buffer: $0.body))
            }
            #expect(pageStatus == 503 && pageType.hasPrefix("text/html") && pageRetry == "2", "\(pageStatus) \(pageType) \(pageText.prefix(300))")
            #expect(pageText.contains("Database unavailable") && pageText.contains("nothing was changed"))
            #expect(try await api.get("/healthz", token: nil).status == 200, "the process itself is up")
            let ready = try await api.get("/readyz", token: nil)
            #expect(ready.status == 503 && ready.json["database"] as? String == "unreachable")
        }
    }

    @Test("a full disk (SQLite refuses to grow the file) is 507 storage_full, writes nothing half, and writes again once there is room", .enabled(if: TestDatabase.engine == .sqlite))
    func diskFullIs507() async throws {
        try await APIHarness.run { harness, api in
            let engine = harness.store.store.engine
            // The writer's file may not grow past its current size: SQLite answers SQLITE_FULL, as on a full disk.
            try await engine.transaction(changesState: false) { db in
                let pages = try await db.raw("PRAGMA page_count").first()?.decode(column: "page_count", as: Int.self) ?? 0
                _ = try await db.raw("PRAGMA max_page_count = \(unsafeRaw: String(pages))").all()
            }
            var full: Reply?
            var created = 0
            for index in 0..<500 {
                let reply = try await api.post("/api/v1/workspaces", token: harness.adminToken,
                                               json: ["name": "Filling the disk \(index) " + String(repeating: "x", count: 150)])
                if reply.status == 201 { created += 1; continue }
                full = reply
                break
            }
            let refused = try #require(full, "the file never filled")
            #expect(refused.status == 507 && refused.errorCode == "storage_full", "\(refused.status) \(refused.text)")
            #expect(refused.errorMessage?.contains("full") == true && !refused.text.contains(harness.fixture.directory.path))
            let listed = try await api.get("/api/v1/workspaces?per_page=100&search=Filling", token: harness.adminToken)
            #expect((listed.json["total"] as? Int) == created, "the refused workspace was not half written")
            try await engine.transaction(changesState: false) { db in _ = try await db.raw("PRAGMA max_page_count = 1073741823").all() }
            #expect(try await api.post("/api/v1/workspaces", token: harness.adminToken, json: ["name": "Room again"]).status == 201)
            #expect(try await harness.store.audit.verify(engine).isIntact)
        }
    }
}
