import Hummingbird
import KeywardenCore
import KeywardenStore
import KeywardenVault
import Logging

/// Gives every failure the one error shape: typed errors answer for themselves, Hummingbird's own
/// errors (unknown route, body too large) are translated, anything else is logged and answered 500
/// without detail.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as StoreError where PagesController.isPage(request.uri.path) && APIError(error) != nil {
            // A page the database cannot serve says so as a page.
            return WebResponse.storeError(APIError.answering(error, logger: context.logger))
        } catch {
            throw APIError.answering(error, logger: context.logger)
        }
    }
}

extension APIError {
    /// The one error shape for any failure: typed errors answer for themselves, Hummingbird's own errors (unknown
    /// route, body too large) are translated, anything else is logged and answered 500 without detail.
    static func answering(_ error: any Error, logger: Logger) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as KeywardenError:
            return APIError(error)
        case let error as StoreError:
            guard let answer = APIError(error) else {
                logger.error("unhandled store error", metadata: ["error_code": "\(error.code)"])
                return .internalError
            }
            logger.warning("store error", metadata: ["error": "\(error)"])
            return answer
        case let error as VaultError:
            if case .customerKeyRevoked = error {
                logger.notice("a workspace's own KMS key refuses Keywarden", metadata: ["error": "\(error)"])
                return APIError(.forbidden, code: error.code,
                                message: "This workspace's keys are sealed under its own KMS key, and access to that key has been revoked by the customer; nothing was changed. Restore Keywarden's access to the key to use them again.")
            }
            if case .custodyUnavailable = error {
                // The device's own words (which setting or code to check) are for the operator's log, not the client.
                logger.warning("the master key's device cannot be used", metadata: ["error": "\(error)"])
                return APIError(.serviceUnavailable, code: error.code,
                                message: "The key that opens these secrets (Keywarden's master key in its device, or the workspace's own KMS key) cannot be used right now; nothing was changed. Try again shortly.",
                                headers: [.retryAfter: "\(StoreError.retryAfterSeconds)"])
            }
            logger.error("a stored secret does not open", metadata: ["error": "\(error)"])
            return APIError(.internalServerError, code: "secret_unreadable",
                            message: "A stored secret could not be opened with this instance's master key; the error was logged.")
        case let error as HTTPError:
            return APIError(error.status, code: code(for: error.status),
                            message: message(for: error))
        case let error as any HTTPResponseError:
            // Hummingbird's and NIO's own errors (a body over the limit is NIOTooManyBytesError).
            return APIError(error.status, code: code(for: error.status),
                            message: message(for: error.status))
        default:
            logger.error("unhandled error", metadata: ["error_type": "\(type(of: error))"])
            return .internalError
        }
    }

    /// The stable code of a status Hummingbird or NIO answered with.
    private static func code(for status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: return "not_found"
        case .methodNotAllowed: return "method_not_allowed"
        case .contentTooLarge: return "body_too_large"
        case .badRequest: return "bad_request"
        case .unauthorized: return "unauthorized"
        case .forbidden: return "forbidden"
        case .unsupportedMediaType: return "unsupported_media_type"
        default: return status.code >= 500 ? "internal" : "error"
        }
    }

    /// The message of a Hummingbird error: its own text, but for the statuses answered in Keywarden's words.
    private static func message(for error: HTTPError) -> String {
        switch error.status {
        case .notFound, .contentTooLarge: return message(for: error.status)
        default: return error.body ?? error.status.reasonPhrase
        }
    }

    /// Keywarden's words for a status.
    private static func message(for status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: return "No such route."
        case .contentTooLarge: return "The request body is larger than \(KeywardenRequestContext.maximumBodySize / 1024) KiB."
        default: return status.reasonPhrase
        }
    }
}
