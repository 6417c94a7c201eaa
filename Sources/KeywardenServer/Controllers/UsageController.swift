import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenStore
import NIOCore

/// `GET /api/v1/usage?workspace=&from=&to=&group_by=`: metered gateway calls, grouped, with totals.
/// Platform admins see every workspace (or one); workspace tokens their own, with `usage.read`.
struct UsageController {
    let app: AppServices

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.get { request, context -> Response in
            let principal = try context.requirePrincipal()
            let groupText = request.queryText("group_by") ?? "provider"
            guard let groupBy = UsageQuery.GroupBy(rawValue: groupText) else {
                throw KeywardenError.invalid("group_by", "group_by is one of \(UsageQuery.GroupBy.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            let (from, to) = try Self.period(request)
            let (query, report) = try await app.usage.report(UsageQuery(workspaceID: request.queryText("workspace"), from: from, to: to, groupBy: groupBy),
                                                             principal: principal)
            return try JSONResponse.make(UsageBody(
                workspace: query.workspaceID, groupBy: groupBy.rawValue, from: from.map(Timestamp.string), to: to.map(Timestamp.string),
                groups: report.groups.map { TotalsBody($0.totals, key: $0.key) }, totals: TotalsBody(report.totals)
            ), headers: [.cacheControl: "no-store"])
        }
    }

    /// `GET /api/v1/usage/export?format=csv|jsonl&workspace=&from=&to=&source=`: every metered call of the period, as a file.
    func addExportRoute(to group: RouterGroup<KeywardenRequestContext>) {
        group.get("export") { request, context -> Response in
            let format = try Self.format(request.queryText("format") ?? "csv")
            return try await Self.exportResponse(app: app, request: request, workspaceID: request.queryText("workspace"), format: format,
                                                 principal: try context.requirePrincipal())
        }
    }

    /// The period a usage query asks for: `from` (a day or a time, inclusive) and `to` (a day inclusive, a time
    /// exclusive), `to` after `from`.
    static func period(_ request: Request) throws -> (from: Date?, to: Date?) {
        let from = try UsageQuery.time(request.queryText("from"), field: "from", endOfDay: false)
        let to = try UsageQuery.time(request.queryText("to"), field: "to", endOfDay: true)
        if let from, let to, to <= from { throw KeywardenError.invalid("to", "to must be after from.") }
        return (from, to)
    }

    static func format(_ text: String) throws(KeywardenError) -> UsageExport.Format {
        guard let format = UsageExport.Format(rawValue: text) else { throw .invalid("format", "format is csv or jsonl.") }
        return format
    }

    /// The export as a streamed download of the principal's scope (`workspaceID`: the one asked for): the period and
    /// source read from the query as the report reads them. Platform keys are named to platform readers only.
    static func exportResponse(app: AppServices, request: Request, workspaceID requested: String?, format: UsageExport.Format,
                               principal: Principal) async throws -> Response {
        let (from, to) = try Self.period(request)
        let source = try request.queryText("source").map { text throws(KeywardenError) -> KeySource in
            guard let source = KeySource(rawValue: text) else { throw .invalid("source", "source is byok, platform or managed.") }
            return source
        }
        // Checked before the first byte: a refusal or a missing workspace is an answer, not a truncated file.
        let query = try app.usage.scoped(UsageQuery(workspaceID: requested, from: from, to: to, groupBy: .day), principal: principal)
        let workspaceID = query.workspaceID
        if let workspaceID { _ = try await app.workspaceService.get(workspaceID) }
        let export = UsageExport(format: format, showsPlatformKeys: principal.isPlatformAdmin || principal.workspaceID == nil)
        let name = "usage-\(workspaceID ?? "all")-\(from.map { String(Timestamp.string($0).prefix(10)) } ?? "start")-\(to.map { String(Timestamp.string($0).prefix(10)) } ?? "now").\(format.rawValue)"
        let headers: HTTPFields = [
            .contentType: format.contentType, .cacheControl: "no-store",
            .contentDisposition: "attachment; filename=\"\(name.filter { $0.isLetter || $0.isNumber || "-_.".contains($0) })\"",
        ]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await app.usage.export(query, source: source, as: export, principal: principal) { text in try await writer.write(ByteBuffer(string: text)) }
            try await writer.finish(nil)
        })
    }

    /// Totals; a group's carry its `key` (the totals of the whole report have none, and omit it).
    struct TotalsBody: Encodable {
        let key: String?
        let requests: Int
        let errors: Int
        let tokensIn: Int
        let tokensOut: Int
        let characters: Int
        let credits: Double

        init(_ totals: UsageTotals, key: String? = nil) {
            self.key = key
            requests = totals.requests
            errors = totals.errors
            tokensIn = totals.inputTokens
            tokensOut = totals.outputTokens
            characters = totals.characters
            credits = totals.credits
        }
    }

    struct UsageBody: Encodable {
        let workspace: String?
        let groupBy: String
        let from: String?
        let to: String?
        let groups: [TotalsBody]
        let totals: TotalsBody
    }
}
