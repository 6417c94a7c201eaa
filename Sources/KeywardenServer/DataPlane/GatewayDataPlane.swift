import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import KeywardenApp
import KeywardenCore
import KeywardenGateway
import KeywardenVault
import Logging
import NIOCore
import NIOHTTP1

/// The data plane's part shared by every connection: what turns a gateway call's head and body into a ``GatewayCall``
/// (the token, the workspace, the face's settings) and its answer into response parts.
///
/// Each client connection's ``GatewayChannelHandler`` routes a request here when ``GatewayFaces`` says it is a gateway
/// call; ``serve(_:route:body:answer:receivedAt:connection:)`` runs as a task whose executor is that connection's event loop.
struct GatewayDataPlane: Sendable {
    let app: any GatewayBackend
    let gateway: Gateway
    let faces: GatewayFaces
    let replayLimit: Int
    /// Who is still connected: a call whose client leaves is cancelled, and the vendor's connection closed with it.
    let departures: ClientDepartures
    /// The calls under way (a graceful shutdown waits for them).
    let calls: LiveCalls
    let logger: Logger

    init(app: any GatewayBackend, gateway: Gateway, faces: GatewayFaces, replayLimit: Int, departures: ClientDepartures, calls: LiveCalls,
         logger: Logger) {
        self.app = app
        self.gateway = gateway
        self.faces = faces
        self.replayLimit = replayLimit
        self.departures = departures
        self.calls = calls
        self.logger = logger
    }

    /// A body larger than this is worked on (parsed, translated, scrubbed) off the event loop, so one large call does not
    /// hold up the other connections the loop serves.
    static let largeBody = 256 * 1024

    /// The status a call is metered and logged with when its client left before the answer (nginx's 499).
    static let clientClosed = 499

    /// How a call's request body reaches it from the connection.
    enum Body: Sendable {
        /// No body is read (GET, HEAD, `Content-Length: 0`).
        case empty
        /// Read whole on the event loop, up to `limit` bytes: the future fails with ``BodyTooLarge`` past it.
        case collected(EventLoopFuture<ByteBuffer>, limit: Int)
        /// Streamed once to the vendor as it arrives, with back-pressure on the client.
        case streamed(length: Int, RequestBodyStream)
    }

    /// The parts of a streamed request body, as the connection reads them.
    typealias RequestBodyStream = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, GatewayChannelHandler.BodyDemand
    >

    /// A request body without `Content-Length` went past the limit it may be collected to.
    struct BodyTooLarge: Error {}

    /// Answers one gateway call: authenticates it, hands it to the gateway, and writes the answer to `answer`.
    /// Never throws: a refusal is the API's error answer.
    func serve(_ head: HTTPRequest, route: GatewayFaces.Route, body: Body, answer: ClientAnswer, receivedAt start: ContinuousClock.Instant,
               connection: ClientDepartures.Connection?) async {
        var status = 500
        var answeredAt: ContinuousClock.Instant?
        let uri = URI(head.path ?? "/")
        do {
            let call = try await call(for: head, uri: uri, route: route, body: body, answer: answer, receivedAt: start)
            let response: GatewayResponse
            if case .complete(let bytes) = call.body, bytes.readableBytes > Self.largeBody {
                response = await withTaskExecutorPreference(globalConcurrentExecutor) { await handle(call, connection: connection) }
            } else {
                response = await handle(call, connection: connection)
            }
            status = response.status
            answeredAt = .now
            try await write(response, to: answer, connection: connection)
        } catch let error where answer.headWritten || Self.clientLeft(error) {
            // The answer was under way, or the client is gone: the client sees it cut (the connection closes), as a
            // vendor's cut stream.
            if !answer.headWritten { status = Self.clientClosed }
            logger.debug("gateway: answer cut", metadata: ["error_type": "\(type(of: error))"])
            await answer.abort()
        } catch {
            let refusal = APIError.answering(error, logger: logger)
            status = refusal.status.code
            answeredAt = .now
            await answer.complete(refusal.responseHead, body: refusal.bodyBuffer)
        }
        // As the router's request log: the time to the answer's head.
        if logger.logLevel <= .info {
            logger.info("request", metadata: [
                "method": "\(head.method.rawValue)", "path": "\(uri.path)", "status": "\(status)",
                "ms": "\(RequestLogMiddleware<KeywardenRequestContext>.milliseconds((answeredAt ?? .now) - start))",
            ])
        }
    }

    private func handle(_ call: GatewayCall, connection: ClientDepartures.Connection?) async -> GatewayResponse {
        if let connection { await connection.cancellingOnDeparture { await gateway.handle(call) } } else { await gateway.handle(call) }
    }

    /// Whether an error says the client's connection is gone (nothing can be answered).
    static func clientLeft(_ error: any Error) -> Bool {
        error is ChannelError || error is CancellationError
    }

    /// The call a request head and body make, once its token and workspace are known.
    func call(for head: HTTPRequest, uri: URI, route: GatewayFaces.Route, body: Body, answer: ClientAnswer,
              receivedAt start: ContinuousClock.Instant) async throws -> GatewayCall {
        var receivedAt = start
        var path = String(uri.path.dropFirst(route.prefix.count))
        if path.isEmpty { path = "/" }
        if let query = uri.query, !query.isEmpty { path += "?" + query }
        let fields = head.headerFields

        var namedProvider: String?
        if case .native = route.kind {} else if let provider = fields[.keywardenProvider] {
            guard app.catalog.contains(provider) else { throw KeywardenError.invalid("X-Keywarden-Provider", "There is no provider '\(provider)'.") }
            namedProvider = provider
        }
        let face = route.face(namedProvider: namedProvider)

        let workspaceID: String?
        if case .native(let providerID) = face, Self.presentsNoToken(fields, query: uri.queryParameters),
           let text = uri.queryParameters.get(UploadSessionGrant.parameter) {
            // A resumable upload's later leg: its client sends no key; the session URL Keywarden handed out carries a grant.
            guard ["POST", "PUT"].contains(head.method.rawValue),
                  let grant = gateway.verifyUploadGrant(String(text), providerID: providerID, pathAndQuery: path) else {
                throw KeywardenError(.unauthenticated, code: "invalid_token", message: "The upload session is not valid here, or has ended.")
            }
            workspaceID = grant.workspaceID
        } else {
            let principal = try await Self.authenticate(app, headers: fields, query: uri.queryParameters.get("key").map { String($0) })
            workspaceID = try Self.workspace(for: principal, named: fields[.keywardenWorkspace])
        }
        let modality = try fields[.keywardenModality].map { text in
            guard let modality = Modality(rawValue: text) else { throw KeywardenError.invalid("X-Keywarden-Modality", "Unknown modality '\(text)'.") }
            return modality
        }

        let callBody: GatewayRequestBody
        switch body {
        case .empty:
            callBody = .empty
        case .streamed(let length, let stream):
            callBody = .stream(length: length) { .stream(stream, length: .known(Int64(length))) }
        case .collected(let future, let limit):
            let uploadStarted = ContinuousClock.now
            // The client's upload is its time, not Keywarden's: `Server-Timing`'s `kw` starts again after it.
            defer { receivedAt += ContinuousClock.now - uploadStarted }
            let buffer: ByteBuffer
            // Authenticated: the rest of the body may come.
            await answer.wantBody()
            do {
                buffer = try await future.get()
            } catch is BodyTooLarge {
                throw KeywardenError(.tooLarge, code: "body_too_large",
                    message: "A request body without Content-Length may be at most \(limit) bytes; send Content-Length to stream larger ones.")
            } catch is HTTPParserError {
                throw KeywardenError(.invalid, code: "malformed_body", message: "The request body is not valid HTTP (its framing or chunks).")
            }
            callBody = buffer.readableBytes == 0 ? .empty : .complete(buffer)
        }

        // Every header goes to the gateway, which decides which travel on (never a credential or an X-Keywarden- one).
        return GatewayCall(face: face, method: head.method.rawValue, pathAndQuery: path, headers: fields.map { (name: $0.name.rawName, value: $0.value) },
                           body: callBody, workspaceID: workspaceID, consumer: fields[.keywardenConsumer], modality: modality,
                           receivedAt: receivedAt, faceURL: faceURL(head, prefix: route.prefix))
    }

    /// Writes the gateway's answer: head and a whole body in one write, or the head and then each part as it comes.
    func write(_ response: GatewayResponse, to answer: ClientAnswer, connection: ClientDepartures.Connection?) async throws {
        var fields = HTTPFields()
        for (name, value) in response.headers {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        let status = HTTPResponse.Status(code: response.status)
        switch response.body {
        case .complete(let buffer):
            fields[.contentLength] = String(buffer.readableBytes)
            await answer.complete(HTTPResponse(status: status, headerFields: fields), body: buffer)
        case .stream(let stream):
            if let length = response.contentLength { fields[.contentLength] = String(length) }
            try await answer.head(HTTPResponse(status: status, headerFields: fields))
            // A client that leaves mid-answer ends it at once, not at the vendor's next part.
            if let connection {
                try await connection.cancellingOnDeparture { try await stream.pump { chunk in try await answer.body(chunk) } }
            } else {
                try await stream.pump { chunk in try await answer.body(chunk) }
            }
            await answer.end()
        }
    }

    /// Where the caller reaches this face: `KEYWARDEN_PUBLIC_URL`, else the request's `Host` (when it is a plain host and
    /// port) over `http`, or `https` when a proxy says `X-Forwarded-Proto: https`, followed by the face's prefix; `nil`
    /// when neither says.
    func faceURL(_ head: HTTPRequest, prefix: String) -> String? {
        if let publicURL = gateway.settings.publicURL { return publicURL + prefix }
        guard let host = head.authority, !host.isEmpty, host.utf8.count <= 255,
              host.utf8.allSatisfy({ byte in
                  (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                      || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "]")
              }) else { return nil }
        // Behind a TLS proxy that says so, the URL handed back is https: a grant in it must not travel in clear.
        let scheme = head.headerFields[.xForwardedProto]?.lowercased() == "https" ? "https://" : "http://"
        return scheme + host + prefix
    }

    /// Whether the request carries nothing that could be a Keywarden token (no credential header, no `?key=`).
    static func presentsNoToken(_ fields: HTTPFields, query: FlatDictionary<Substring, Substring>) -> Bool {
        Gateway.credentialHeaders.allSatisfy { name in HTTPField.Name(name).map { fields[$0] == nil } ?? true } && query.get("key") == nil
    }

    /// The token from a credential header, `?key=` (`keyParameter`) or, for a WebSocket, a subprotocol that carries it
    /// (`openai-insecure-api-key.<token>`), and the principal it names.
    static func authenticate(_ app: any GatewayBackend, headers: HTTPFields, query keyParameter: String?, subprotocols: [String] = []) async throws -> Principal {
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

    /// The workspace a call is for, `named` being its `X-Keywarden-Workspace`: the token's own, or the named one for a
    /// platform-bound token.
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
