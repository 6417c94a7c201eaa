/// An error a client caused or must know about, with a stable `snake_case` code.
///
/// Services throw it; the server turns its kind into a status. Messages are for people and never
/// contain a secret.
public struct KeywardenError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The family of the error, which decides the HTTP status.
    public enum Kind: Sendable, Equatable {
        /// The request is malformed or a value is invalid (400).
        case invalid
        /// No valid credentials (401).
        case unauthenticated
        /// Authenticated, but not allowed (403).
        case forbidden
        /// No such thing, or not yours (404).
        case notFound
        /// The request conflicts with the current state (409).
        case conflict
        /// The body is larger than allowed (413).
        case tooLarge
        /// Well-formed but cannot be processed as asked (422).
        case unprocessable
        /// Too many of these lately; try again after ``KeywardenError/retryAfter`` seconds (429).
        case tooManyRequests
    }

    public let kind: Kind
    public let code: String
    public let message: String
    /// The request field at fault, when there is one.
    public let field: String?
    /// For ``Kind/tooManyRequests``: seconds until trying again may succeed.
    public let retryAfter: Int?

    public init(_ kind: Kind, code: String, message: String, field: String? = nil, retryAfter: Int? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.field = field
        self.retryAfter = retryAfter
    }

    /// Too many of an action in a short time (a noisy Test button, sign-in attempts).
    public static func rateLimited(_ what: String, retryAfter: Int) -> KeywardenError {
        KeywardenError(.tooManyRequests, code: "rate_limited", message: "Too many \(what) in a short time; try again in \(retryAfter) s.", retryAfter: retryAfter)
    }

    public var description: String { "\(code): \(message)" }

    /// A value failed validation.
    public static func invalid(_ field: String, _ message: String, code: String = "invalid_field") -> KeywardenError {
        KeywardenError(.invalid, code: code, message: message, field: field)
    }

    /// Whether the trouble is in what was asked (a form shows it beside the fields), not in who asked or what exists:
    /// a page re-renders a form for these only, so a refusal is never answered with another page's contents.
    public var isAboutInput: Bool {
        switch kind {
        case .invalid, .conflict, .tooLarge, .unprocessable: return true
        case .unauthenticated, .forbidden, .notFound, .tooManyRequests: return false
        }
    }

    /// A required value is missing.
    public static func missing(_ field: String, _ message: String? = nil) -> KeywardenError {
        KeywardenError(.invalid, code: "missing_field", message: message ?? "\(field) is required.", field: field)
    }

    /// The thing does not exist, or belongs to someone else.
    public static func notFound(_ what: String) -> KeywardenError {
        KeywardenError(.notFound, code: "not_found", message: "The \(what) was not found.")
    }

    /// The principal may not do this.
    public static let forbidden = KeywardenError(.forbidden, code: "forbidden", message: "This token is not allowed to do that.")

    /// The provider is not in the catalog.
    public static func unknownProvider(_ id: String, field: String = "provider") -> KeywardenError {
        KeywardenError(.invalid, code: "unknown_provider", message: "There is no provider '\(id)' in the catalog.", field: field)
    }
}
