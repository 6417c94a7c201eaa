import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenStore

/// `GET /api/v1/usage?workspace=&from=&to=&group_by=`: metered gateway calls, grouped, with totals.
/// Platform admins see every workspace (or one); workspace tokens their own, with `usage.read`.
struct UsageController {
    let app: AppServices

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.get { request, context -> Response in
            let workspaceID = try Access.readScope(.usageRead, requested: request.queryText("workspace"), platformWide: true, context)
            let groupText = request.queryText("group_by") ?? "provider"
            guard let groupBy = UsageQuery.GroupBy(rawValue: groupText) else {
                throw KeywardenError.invalid("group_by", "group_by is one of \(UsageQuery.GroupBy.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            let from = try UsageQuery.time(request.queryText("from"), field: "from", endOfDay: false)
            let to = try UsageQuery.time(request.queryText("to"), field: "to", endOfDay: true)
            if let from, let to, to <= from { throw KeywardenError.invalid("to", "to must be after from.") }
            let report = try await app.usage.report(UsageQuery(workspaceID: workspaceID, from: from, to: to, groupBy: groupBy))
            return try JSONResponse.make(UsageBody(
                workspace: workspaceID, groupBy: groupBy.rawValue, from: from.map(Timestamp.string), to: to.map(Timestamp.string),
                groups: report.groups.map { TotalsBody($0.totals, key: $0.key) }, totals: TotalsBody(report.totals)
            ), headers: [.cacheControl: "no-store"])
        }
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
