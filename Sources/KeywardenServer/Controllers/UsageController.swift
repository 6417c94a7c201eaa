import Foundation
import Hummingbird
import KeywardenCore
import KeywardenStore

/// `GET /api/v1/usage?workspace=&from=&to=&group_by=`: metered gateway calls, grouped, with totals.
/// Platform admins see every workspace (or one); workspace tokens their own, with `usage.read`.
struct UsageController {
    let store: Store

    func addRoutes(to group: RouterGroup<KeywardenRequestContext>) {
        group.get { request, context -> Response in
            let principal = try context.requirePrincipal()
            let requested = request.queryText("workspace")
            let workspaceID: String?
            if principal.isPlatformAdmin {
                workspaceID = requested
            } else if let own = principal.workspaceID {
                if let requested, requested != own { throw KeywardenError.notFound("workspace") }
                _ = try Access.require(.usageRead, in: own, context)
                workspaceID = own
            } else if let requested {
                _ = try Access.require(.usageRead, in: requested, context)
                workspaceID = requested
            } else {
                _ = try Access.requirePlatform(context, .usageRead)
                workspaceID = nil
            }
            let groupText = request.queryText("group_by") ?? "provider"
            guard let groupBy = UsageQuery.GroupBy(rawValue: groupText) else {
                throw KeywardenError.invalid("group_by", "group_by is one of \(UsageQuery.GroupBy.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            let from = try UsageQuery.time(request.queryText("from"), field: "from", endOfDay: false)
            let to = try UsageQuery.time(request.queryText("to"), field: "to", endOfDay: true)
            if let from, let to, to <= from { throw KeywardenError.invalid("to", "to must be after from.") }
            let report = try await store.usage.report(UsageQuery(workspaceID: workspaceID, from: from, to: to, groupBy: groupBy))
            return try JSONResponse.make(UsageBody(
                workspace: workspaceID, groupBy: groupBy.rawValue, from: from.map(Timestamp.string), to: to.map(Timestamp.string),
                groups: report.groups.map { GroupBody(key: $0.key, totals: $0.totals) }, totals: TotalsBody(report.totals)
            ), headers: [.cacheControl: "no-store"])
        }
    }

    struct TotalsBody: Encodable {
        let requests: Int
        let errors: Int
        let tokensIn: Int
        let tokensOut: Int
        let characters: Int
        let credits: Double

        init(_ totals: UsageTotals) {
            requests = totals.requests
            errors = totals.errors
            tokensIn = totals.inputTokens
            tokensOut = totals.outputTokens
            characters = totals.characters
            credits = totals.credits
        }

    }

    struct GroupBody: Encodable {
        let key: String
        let requests: Int
        let errors: Int
        let tokensIn: Int
        let tokensOut: Int
        let characters: Int
        let credits: Double

        init(key: String, totals: UsageTotals) {
            self.key = key
            let body = TotalsBody(totals)
            requests = body.requests
            errors = body.errors
            tokensIn = body.tokensIn
            tokensOut = body.tokensOut
            characters = body.characters
            credits = body.credits
        }
    }

    struct UsageBody: Encodable {
        let workspace: String?
        let groupBy: String
        let from: String?
        let to: String?
        let groups: [GroupBody]
        let totals: TotalsBody
    }
}
