import Foundation
import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenStore

/// The request log: a workspace's calls (`/api/v1/workspaces/{id}/requests`) and the platform's (`/api/v1/platform/requests`),
/// newest first, paged by cursor. The service authorizes the caller; this decodes and encodes.
struct RequestLogController {
    let app: AppServices

    func addRoutes(to api: RouterGroup<KeywardenRequestContext>) {
        let scopes: [(path: String, scope: @Sendable (Parameters) throws -> RequestLogService.Scope)] = [
            ("workspaces/:workspace/requests", { .workspace(try $0.require("workspace")) }),
            ("platform/requests", { _ in .platform }),
        ]
        for (path, scope) in scopes {
            api.get(RouterPath(path)) { request, context -> Response in
                let scope = try scope(context.parameters)
                let page = try await app.requestLog.page(
                    scope, filter: try Self.filter(request, catalog: app.catalog, platform: scope == .platform), cursor: request.queryText("cursor"),
                    limit: try request.queryInt("limit", in: 1...RequestLogService.maximumLimit) ?? RequestLogService.defaultLimit,
                    principal: try context.requirePrincipal())
                return try JSONResponse.make(PageBody(requests: page.entries.map(EntryBody.init), nextCursor: page.nextCursor),
                                             headers: [.cacheControl: "no-store"])
            }
        }
    }

    /// The filters of a request-log query (the API's and the page's): `status` (ok, error or a code), `provider`, `key`,
    /// `source`, `consumer`, `from` / `to` as the usage report reads them, and — on the platform's log — `workspace`.
    static func filter(_ request: Request, catalog: ProviderCatalog, platform: Bool) throws -> RequestLogFilter {
        let (from, to) = try UsageController.period(request)
        let provider = try request.queryText("provider").map { id throws(KeywardenError) -> String in
            guard catalog.contains(id) else { throw KeywardenError.unknownProvider(id, field: "provider") }
            return id
        }
        let source = try request.queryText("source").map { text throws(KeywardenError) -> KeySource in
            guard let source = KeySource(rawValue: text) else { throw .invalid("source", "source is byok, platform or managed.") }
            return source
        }
        return RequestLogFilter(
            workspaceID: platform ? request.queryText("workspace") : nil, from: from, to: to, providerID: provider,
            credentialID: request.queryText("key"), source: source,
            outcome: try request.queryText("status").map { text throws(KeywardenError) in try RequestLogFilter.Outcome.parse(text) },
            consumer: request.queryText("consumer"))
    }

    struct PageBody: Encodable {
        let requests: [EntryBody]
        let nextCursor: String?

        enum CodingKeys: String, CodingKey { case requests, nextCursor }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(requests, forKey: .requests)
            // Always present: null on the last page.
            try container.encode(nextCursor, forKey: .nextCursor)
        }
    }

    /// One call as the API shows it.
    struct EntryBody: Encodable {
        struct Key: Encodable {
            let id: String?
            let name: String
            let deleted: Bool

            enum CodingKeys: String, CodingKey { case id, name, deleted }

            /// `id` always present: null for a key the reader may not see.
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(id, forKey: .id)
                try c.encode(name, forKey: .name)
                try c.encode(deleted, forKey: .deleted)
            }
        }

        let id: String
        let at: String
        let workspace: String?
        let workspaceName: String?
        let provider: String
        let model: String?
        let key: Key?
        let source: String?
        let modality: String
        let consumer: String?
        let status: Int
        let latencyMs: Int
        let tokensIn: Int?
        let tokensOut: Int?
        let characters: Int?
        let credits: Double
        let attempts: Int
        let failovers: Int

        init(_ entry: RequestLogService.Entry) {
            let record = entry.record
            id = record.id
            at = Timestamp.string(record.at)
            workspace = record.workspaceID
            workspaceName = entry.workspaceName
            provider = record.providerID
            model = record.model
            key = entry.key.map { Key(id: $0.id, name: $0.name, deleted: $0.deleted) }
            source = record.source?.rawValue
            modality = record.modality.rawValue
            consumer = record.consumer
            status = record.status
            latencyMs = record.latencyMilliseconds
            tokensIn = record.counts.inputTokens
            tokensOut = record.counts.outputTokens
            characters = record.counts.characters
            credits = Double(record.milliCredits) / 1000
            attempts = record.attempts
            failovers = entry.failovers
        }

        enum CodingKeys: String, CodingKey {
            case id, at, workspace, workspaceName, provider, model, key, source, modality, consumer, status, latencyMs, tokensIn, tokensOut,
                 characters, credits, attempts, failovers
        }

        /// Every member present (null when the call has none), as the OpenAPI document says.
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(at, forKey: .at)
            try c.encode(workspace, forKey: .workspace)
            try c.encode(workspaceName, forKey: .workspaceName)
            try c.encode(provider, forKey: .provider)
            try c.encode(model, forKey: .model)
            try c.encode(key, forKey: .key)
            try c.encode(source, forKey: .source)
            try c.encode(modality, forKey: .modality)
            try c.encode(consumer, forKey: .consumer)
            try c.encode(status, forKey: .status)
            try c.encode(latencyMs, forKey: .latencyMs)
            try c.encode(tokensIn, forKey: .tokensIn)
            try c.encode(tokensOut, forKey: .tokensOut)
            try c.encode(characters, forKey: .characters)
            try c.encode(credits, forKey: .credits)
            try c.encode(attempts, forKey: .attempts)
            try c.encode(failovers, forKey: .failovers)
        }
    }
}
