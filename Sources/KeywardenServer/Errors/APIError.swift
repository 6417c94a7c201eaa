import Foundation
import Hummingbird
import KeywardenCore
import KeywardenStore
import NIOCore

/// An error answered to an API client: a status and `{"error": {"code", "message", "field"?}}`.
///
/// Codes are stable and `snake_case`; messages are for people and never contain a secret.
public struct APIError: Error, HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public let field: String?
    public let headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, message: String, field: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: status, headers: responseHead.headerFields, body: .init(byteBuffer: bodyBuffer))
    }

    /// The answer's head: the status, the error's own headers and the JSON content type.
    var responseHead: HTTPResponse {
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return HTTPResponse(status: status, headerFields: headers)
    }

    /// The answer's body, `{"error": {…}}`.
    var bodyBuffer: ByteBuffer {
        let body = ErrorBody(error: .init(code: code, message: message, field: field))
        let data = (try? JSONEncoder().encode(body)) ?? Data(#"{"error":{"code":"internal","message":"error"}}"#.utf8)
        return ByteBuffer(bytes: data)
    }

    struct ErrorBody: Encodable {
        struct Detail: Encodable {
            let code: String
            let message: String
            let field: String?
        }
        let error: Detail
    }
}

extension APIError {
    /// The HTTP face of a domain error.
    init(_ error: KeywardenError) {
        let status: HTTPResponse.Status
        var headers: HTTPFields = [:]
        switch error.kind {
        case .invalid: status = .badRequest
        case .unauthenticated:
            status = .unauthorized
            headers[.wwwAuthenticate] = #"Bearer realm="keywarden""#
        case .forbidden: status = .forbidden
        case .notFound: status = .notFound
        case .conflict: status = .conflict
        case .tooLarge: status = .contentTooLarge
        case .unprocessable: status = .unprocessableContent
        case .tooManyRequests:
            status = .tooManyRequests
            headers[.retryAfter] = "\(max(1, error.retryAfter ?? 1))"
        }
        self.init(status, code: error.code, message: error.message, field: error.field, headers: headers)
    }

    /// The HTTP face of a store error: a database that cannot answer is `503 store_unavailable` with `Retry-After`, a
    /// full disk `507 storage_full`; nothing about the database's address or the driver's words reaches the client.
    init?(_ error: StoreError) {
        switch error {
        case .unavailable, .closed, .databaseUnavailable:
            self.init(.serviceUnavailable, code: "store_unavailable",
                      message: "Keywarden cannot reach its database right now; nothing was changed. Try again shortly.",
                      headers: [.retryAfter: "\(StoreError.retryAfterSeconds)"])
        case .storageFull:
            self.init(.init(code: 507, reasonPhrase: "Insufficient Storage"), code: "storage_full",
                      message: "The disk holding Keywarden's database is full; nothing was written. Ask the operator to free space.")
        case .lockHeld(let operation):
            self.init(.conflict, code: error.code, message: "Another \(operation) is running; wait for it to finish.")
        case .unstorableText:
            self.init(.badRequest, code: error.code, message: "A value holds a character that cannot be stored or searched (such as NUL); nothing was changed.")
        default:
            return nil
        }
    }

    static func notFound(_ what: String = "resource") -> APIError {
        APIError(.notFound, code: "not_found", message: "The \(what) was not found.")
    }

    static let internalError = APIError(.internalServerError, code: "internal", message: "Something went wrong on our side; the error was logged.")
}
