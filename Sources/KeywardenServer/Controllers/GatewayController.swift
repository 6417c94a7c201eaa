import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import KeywardenCore
import KeywardenApp
import KeywardenGateway
import KeywardenStore
import KeywardenVault
import NIOCore

/// The gateway's two faces: native pass-through (`/{provider}/…`, one route per catalog provider, so a
/// vendor SDK works with only its base URL and API key changed) and the unified `/v1/chat/completions` and `/v1/messages`.
struct GatewayController {
    let app: AppServices
    let gateway: Gateway
    let replayLimit: Int
    /// Who is still connected: a call whose client leaves is cancelled, and the vendor's connection closed with it.
    let departures: ClientDepartures

    func addRoutes(to router: Router<KeywardenRequestContext>) {
        // Every method a vendor's API answers, HEAD and OPTIONS included, reaches the vendor as GET does.
        let methods: [HTTPRequest.Method] = [.get, .head, .options, .post, .put, .patch, .delete]
        for provider in app.catalog.providers where provider.baseURL != nil {
            for method in methods {
                router.on(RouterPath("\(provider.id)/**"), method: method) { request, context in
                    try await forward(request, context: context, face: .native(providerID: provider.id), prefix: "/" + provider.id)
                }
            }
        }
        // The unified faces: OpenAI's and Anthropic's chat shapes, each served by any chat provider's key.
        let faces: [(path: String, face: @Sendable (String?) -> GatewayCall.Face)] = [
            ("v1/chat/completions", { .chatCompletions(providerID: $0) }),
            ("v1/messages", { .messages(providerID: $0) }),
            ("v1/responses", { .responses(providerID: $0) }),
        ]
        for (path, face) in faces {
            router.post(RouterPath(path)) { request, context in
                let provider = request.headers[.keywardenProvider]
                if let provider, !app.catalog.contains(provider) {
                    throw KeywardenError.invalid("X-Keywarden-Provider", "There is no provider '\(provider)'.")
                }
                return try await forward(request, context: context, face: face(provider), prefix: "")
            }
        }
    }

    func forward(_ request: Request, context: KeywardenRequestContext, face: GatewayCall.Face, prefix: String) async throws -> Response {
        var receivedAt = ContinuousClock.now
        var path = String(request.uri.path.dropFirst(prefix.count))
        if path.isEmpty { path = "/" }
        if let query = request.uri.query, !query.isEmpty { path += "?" + query }

        let workspaceID: String?
        if case .native(let providerID) = face, Self.presentsNoToken(request), let text = request.uri.queryParameters.get(UploadSessionGrant.parameter) {
            // A resumable upload's later leg: its client sends no key; the session URL Keywarden handed out carries a grant.
            guard ["POST", "PUT"].contains(request.method.rawValue),
                  let grant = gateway.verifyUploadGrant(String(text), providerID: providerID, pathAndQuery: path) else {
                throw KeywardenError(.unauthenticated, code: "invalid_token", message: "The upload session is not valid here, or has ended.")
            }
            workspaceID = grant.workspaceID
        } else {
            let principal = try await authenticate(request)
            workspaceID = try workspace(for: principal, request: request)
        }
        let modality = try request.headers[.keywardenModality].map { text in
            guard let modality = Modality(rawValue: text) else { throw KeywardenError.invalid("X-Keywarden-Modality", "Unknown modality '\(text)'.") }
            return modality
        }
        // Every header goes to the gateway, which decides which travel on (never a credential or an X-Keywarden- one).
        let headers = request.headers.map { (name: $0.name.rawName, value: $0.value) }

        let body: GatewayRequestBody
        let declared = request.headers[.contentLength].flatMap(Int.init)
        switch GatewayRequestBody.plan(method: request.method.rawValue, declaredLength: declared, replayLimit: replayLimit,
                                       contentType: request.headers[.contentType]) {
        case .empty:
            body = .empty
        case .streamOnce(let length):
            let stream = request.body
            body = .stream(length: length) { .stream(stream, length: .known(Int64(length))) }
        case .collect(let limit):
            let buffer: ByteBuffer
            let uploadStarted = ContinuousClock.now
            // The client's upload is its time, not Keywarden's: `Server-Timing`'s `kw` starts again after it.
            defer { receivedAt += ContinuousClock.now - uploadStarted }
            do {
                buffer = try await request.body.collect(upTo: limit)
            } catch {
                throw KeywardenError(.tooLarge, code: "body_too_large",
                    message: "A request body without Content-Length may be at most \(limit) bytes; send Content-Length to stream larger ones.")
            }
            body = buffer.readableBytes == 0 ? .empty : .complete(buffer)
        }

        let call = GatewayCall(face: face, method: request.method.rawValue, pathAndQuery: path, headers: headers, body: body,
                               workspaceID: workspaceID, consumer: request.headers[.keywardenConsumer], modality: modality,
                               receivedAt: receivedAt, faceURL: faceURL(request, prefix: prefix))
        let connection = departures.connection(context.connectionID)
        let answer = if let connection { await connection.cancellingOnDeparture { await gateway.handle(call) } } else { await gateway.handle(call) }

        var fields = HTTPFields()
        for (name, value) in answer.headers {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        let status = HTTPResponse.Status(code: answer.status)
        switch answer.body {
        case .complete(let buffer):
            return Response(status: status, headers: fields, body: .init(byteBuffer: buffer))
        case .stream(let stream):
            return Response(status: status, headers: fields, body: ResponseBody(contentLength: answer.contentLength) { writer in
                // A client that leaves mid-answer ends it at once, not at the vendor's next part.
                if let connection {
                    try await connection.cancellingOnDeparture { try await stream.pump { chunk in try await writer.write(chunk) } }
                } else {
                    try await stream.pump { chunk in try await writer.write(chunk) }
                }
                try await writer.finish(nil)
            })
        }
    }

    /// Where the caller reaches this face: `KEYWARDEN_PUBLIC_URL`, else the request's `Host` (when it is a plain host and
    /// port) over `http`, or `https` when a proxy says `X-Forwarded-Proto: https`, followed by the face's prefix; `nil`
    /// when neither says.
    func faceURL(_ request: Request, prefix: String) -> String? {
        if let publicURL = gateway.settings.publicURL { return publicURL + prefix }
        guard let host = request.head.authority, !host.isEmpty, host.utf8.count <= 255,
              host.utf8.allSatisfy({ byte in
                  (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                      || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "]")
              }) else { return nil }
        // Behind a TLS proxy that says so, the URL handed back is https: a grant in it must not travel in clear.
        let scheme = request.headers[.xForwardedProto]?.lowercased() == "https" ? "https://" : "http://"
        return scheme + host + prefix
    }

    /// Whether the request carries nothing that could be a Keywarden token (no credential header, no `?key=`).
    static func presentsNoToken(_ request: Request) -> Bool {
        Gateway.credentialHeaders.allSatisfy { name in HTTPField.Name(name).map { request.headers[$0] == nil } ?? true }
            && request.uri.queryParameters.get("key") == nil
    }

    /// The Keywarden token from whichever header the caller's SDK put its API key in.
    func authenticate(_ request: Request) async throws -> Principal {
        try await Self.authenticate(app, headers: request.headers, query: request.uri.queryParameters.get("key").map { String($0) })
    }

    /// The token from a credential header, `?key=` (`keyParameter`) or, for a WebSocket, a subprotocol that carries it
    /// (`openai-insecure-api-key.<token>`), and the principal it names.
    static func authenticate(_ app: AppServices, headers: HTTPFields, query keyParameter: String?, subprotocols: [String] = []) async throws -> Principal {
        var presented: String?
        for name in Gateway.credentialHeaders {
            let token = name == "authorization"
                ? headers[.authorization].flatMap(AuthenticationMiddleware.bearerToken(fromHeader:))
                : HTTPField.Name(name).flatMap { headers[$0] }?.trimmingSpacesAndTabs
            if let token, AccessToken.looksLikeToken(token) { presented = token; break }
        }
        // Gemini's clients may send the key as `?key=` (the gateway never forwards a token found there).
        if presented == nil, let token = keyParameter, AccessToken.looksLikeToken(token) { presented = token }
        if presented == nil, let token = subprotocols.first(where: { $0.hasPrefix(Gateway.keyInSubprotocol) })?.dropFirst(Gateway.keyInSubprotocol.count),
           AccessToken.looksLikeToken(String(token)) { presented = String(token) }
        guard let presented else {
            throw KeywardenError(.unauthenticated, code: "unauthorized",
                message: "Send a Keywarden service token as the API key (Authorization: Bearer, x-api-key, x-goog-api-key, xi-api-key, api-key, ocp-apim-subscription-key, or ?key=).")
        }
        guard let principal = try await app.authenticate(presented: presented) else {
            throw KeywardenError(.unauthenticated, code: "invalid_token", message: "The token is not valid or was revoked.")
        }
        return principal
    }

    /// The workspace the call is for: the token's own, or `X-Keywarden-Workspace` for a platform-bound token.
    func workspace(for principal: Principal, request: Request) throws -> String? {
        try Self.workspace(for: principal, named: request.headers[.keywardenWorkspace])
    }

    /// The workspace a call is for, `named` being its `X-Keywarden-Workspace`.
    static func workspace(for principal: Principal, named: String?) throws -> String? {
        if let bound = principal.workspaceID {
            if let named, named != bound { throw KeywardenError.notFound("workspace") }
            guard principal.decide(.gatewayUse, inWorkspace: bound) == .allowed else {
                throw KeywardenError(.forbidden, code: "forbidden", message: "This token may not send calls through the gateway (gateway.use).")
            }
            return bound
        }
        if let named {
            switch principal.decide(.gatewayUse, inWorkspace: named) {
            case .allowed: return named
            case .notFound: throw KeywardenError.notFound("workspace")
            case .forbidden: throw KeywardenError(.forbidden, code: "forbidden", message: "This token may not send calls through the gateway (gateway.use).")
            }
        }
        guard principal.decidePlatform(.gatewayUse) == .allowed else {
            throw KeywardenError(.forbidden, code: "forbidden", message: "This token may not send calls through the gateway (gateway.use).")
        }
        return nil
    }
}

extension HTTPField.Name {
    static let xForwardedProto = Self("X-Forwarded-Proto")!
    static let keywardenWorkspace = Self("X-Keywarden-Workspace")!
    static let keywardenConsumer = Self("X-Keywarden-Consumer")!
    static let keywardenModality = Self("X-Keywarden-Modality")!
    static let keywardenProvider = Self("X-Keywarden-Provider")!
}
