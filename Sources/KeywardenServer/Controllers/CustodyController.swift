import Foundation
import Hummingbird
import KeywardenApp
import KeywardenCore
import KeywardenStore

/// `GET /api/v1/workspaces/{workspace}/custody?page=&per_page=`: the workspace's custody log, newest first; and
/// `GET …/custody/export`: all of it, oldest first, as JSON lines with each entry's hash chain (`audit.read`).
struct CustodyController {
    let app: AppServices

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.get { request, context -> Response in
            let workspaceID = try context.parameters.require("workspace")
            let pagination = try Pagination(
                page: try request.queryInt("page", code: "invalid_pagination"),
                perPage: try request.queryInt("per_page", code: "invalid_pagination")
            )
            let (entries, total, _) = try await app.custody.page(workspaceID: workspaceID, pagination: pagination, principal: try context.requirePrincipal())
            return try JSONResponse.make(PageBody(items: entries, total: total, page: pagination.page, perPage: pagination.perPage))
        }
        group.get("export") { _, context -> Response in
            try await Self.exportResponse(app: app, workspaceID: try context.parameters.require("workspace"), principal: try context.requirePrincipal())
        }
    }

    /// The whole log as a JSON-lines download, for the API and for the page (a signed-in session).
    static func exportResponse(app: AppServices, workspaceID: String, principal: Principal) async throws -> Response {
        // Refused (or not found) before the first byte: an answer, not a truncated file.
        _ = try await app.custody.page(workspaceID: workspaceID, pagination: Pagination(page: 1, perPage: 1), principal: principal)
        let name = "custody-\(workspaceID.filter { $0.isLetter || $0.isNumber || "-_".contains($0) }).jsonl"
        let headers: HTTPFields = [
            .contentType: "application/x-ndjson", .cacheControl: "no-store", .contentDisposition: "attachment; filename=\"\(name)\"",
        ]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            try await app.custody.export(workspaceID: workspaceID, principal: principal) { entries in
                var text = ""
                for entry in entries { text += String(decoding: try encoder.encode(entry), as: UTF8.self) + "\n" }
                try await writer.write(ByteBuffer(string: text))
            }
            try await writer.finish(nil)
        })
    }
}
