import Foundation
import KeywardenCore

/// Why a call to the AWS KMS failed. Descriptions name the problem and what to check; they never contain a plaintext, a
/// data key, a secret access key or a ciphertext.
public enum KMSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A setting or an argument is missing or invalid; `setting` names the environment variable (or the parameter).
    case configuration(setting: String, problem: String)
    /// The KMS could not be reached: connection refused, DNS failure, connect timeout, connection lost.
    case unreachable(reason: String)
    /// No complete answer came within the call's deadline.
    case deadlineExceeded(after: Duration)
    /// The call was cancelled by its caller before an answer came.
    case cancelled
    /// The KMS refused the credentials or the signature, or the key's policy refuses the caller.
    case accessDenied(KMSVendorError)
    /// The key is disabled, pending deletion or otherwise not usable in its state.
    case keyDisabled(KMSVendorError)
    /// The key (id, ARN or alias) does not exist.
    case keyNotFound(KMSVendorError)
    /// The ciphertext does not open: tampered, from another key, or a different encryption context.
    case invalidCiphertext(KMSVendorError)
    /// The KMS asked us to slow down (ThrottlingException, HTTP 429).
    case throttled(KMSVendorError)
    /// The KMS failed on its side (HTTP 5xx, KMSInternalException).
    case vendorFailure(KMSVendorError)
    /// The KMS refused the request for another reason (a validation error, a limit, a key of the wrong usage).
    case rejected(KMSVendorError)
    /// The answer is not one the API gives: not JSON, a field missing or not base64, a plaintext of the wrong length,
    /// a body over the size bound.
    case malformedAnswer(detail: String)

    /// A stable code for logs and tests.
    public var code: String {
        switch self {
        case .configuration: return "kms_configuration"
        case .unreachable: return "kms_unreachable"
        case .deadlineExceeded: return "kms_deadline_exceeded"
        case .cancelled: return "kms_cancelled"
        case .accessDenied: return "kms_access_denied"
        case .keyDisabled: return "kms_key_disabled"
        case .keyNotFound: return "kms_key_not_found"
        case .invalidCiphertext: return "kms_invalid_ciphertext"
        case .throttled: return "kms_throttled"
        case .vendorFailure: return "kms_vendor_failure"
        case .rejected: return "kms_request_rejected"
        case .malformedAnswer: return "kms_malformed_answer"
        }
    }

    /// Whether the same call may succeed if tried again later (the KMS was away, slow, busy or failing).
    public var isTransient: Bool {
        switch self {
        case .unreachable, .deadlineExceeded, .throttled, .vendorFailure: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .configuration(let setting, let problem):
            return "the KMS configuration is not usable: \(setting) \(problem)"
        case .unreachable(let reason):
            return "the KMS is unreachable (\(reason)); check KEYWARDEN_MASTER_KEY_KMS_ENDPOINT, AWS_REGION and the network"
        case .deadlineExceeded(let after):
            return "the KMS did not answer within \(after)"
        case .cancelled:
            return "the KMS call was cancelled"
        case .accessDenied(let vendor):
            return "the KMS refused access (\(vendor)); check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the key's policy"
        case .keyDisabled(let vendor):
            return "the KMS key is disabled or not usable in its state (\(vendor))"
        case .keyNotFound(let vendor):
            return "the KMS key does not exist (\(vendor)); check KEYWARDEN_MASTER_KEY_KMS_KEY_ID and the region"
        case .invalidCiphertext(let vendor):
            return "the KMS could not open the ciphertext (\(vendor)): another key, another encryption context, or tampered bytes"
        case .throttled(let vendor):
            return "the KMS is throttling requests (\(vendor))"
        case .vendorFailure(let vendor):
            return "the KMS failed on its side (\(vendor))"
        case .rejected(let vendor):
            return "the KMS rejected the request (\(vendor))"
        case .malformedAnswer(let detail):
            return "the KMS's answer is malformed: \(detail)"
        }
    }
}

/// What the KMS said when it refused a call: the HTTP status, its error type without the `com.amazonaws.kms#` prefix,
/// and its message, cleaned of control characters, of anything the call sent that is secret, and cut to 300 characters.
public struct KMSVendorError: Sendable, Equatable, CustomStringConvertible {
    /// The answer's HTTP status.
    public let status: Int
    /// The error type (`NotFoundException`), or an empty string when the answer named none.
    public let type: String
    /// The KMS's message, cleaned and cut (possibly empty).
    public let message: String

    /// The longest vendor message kept.
    public static let messageLimit = 300

    /// A vendor error as given (``classify(status:errorType:body:redacting:)`` cleans what it reads from an answer).
    public init(status: Int, type: String, message: String) {
        self.status = status
        self.type = type
        self.message = message
    }

    public var description: String {
        let name = type.isEmpty ? "HTTP \(status)" : "\(type), HTTP \(status)"
        return message.isEmpty ? name : "\(name): \(message)"
    }

    /// The error an answer with a status other than 200 stands for: by its `__type` (JSON), `<Code>` (the XML some
    /// front ends answer with) or `X-Amzn-ErrorType` header, else by its status.
    static func classify(status: Int, errorType: String? = nil, body: [UInt8], redacting secrets: [String]) -> KMSError {
        let (bodyType, rawMessage) = parse(body)
        let type = clean(shapeName(bodyType.isEmpty ? errorType ?? "" : bodyType), limit: 100, redacting: secrets)
        let vendor = KMSVendorError(status: status, type: type, message: clean(rawMessage, limit: messageLimit, redacting: secrets))
        switch type {
        case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignatureException",
             "SignatureDoesNotMatch", "InvalidClientTokenId", "MissingAuthenticationTokenException", "ExpiredTokenException":
            return .accessDenied(vendor)
        case "DisabledException", "KMSInvalidStateException", "KeyUnavailableException":
            return .keyDisabled(vendor)
        case "NotFoundException":
            return .keyNotFound(vendor)
        case "InvalidCiphertextException", "IncorrectKeyException":
            return .invalidCiphertext(vendor)
        case "ThrottlingException", "ThrottlingError", "RequestLimitExceeded":
            return .throttled(vendor)
        case "KMSInternalException", "DependencyTimeoutException", "InternalFailure", "ServiceUnavailable":
            return .vendorFailure(vendor)
        default:
            break
        }
        switch status {
        case 401, 403: return .accessDenied(vendor)
        case 404: return .keyNotFound(vendor)
        case 429: return .throttled(vendor)
        case 500...: return .vendorFailure(vendor)
        default: return .rejected(vendor)
        }
    }

    /// An error type as the AWS JSON protocols write it, reduced to its name: what follows a `#`
    /// (`com.amazonaws.kms#NotFoundException`), what precedes a `:` (`UnrecognizedClientException:http://internal…`).
    static func shapeName(_ type: String) -> String {
        let afterHash = type.firstIndex(of: "#").map { type[type.index(after: $0)...] } ?? type[...]
        return String(afterHash.prefix { $0 != ":" }).trimmingCharacters(in: .whitespaces)
    }

    /// The error type and message of a JSON (`__type`, `message` or `Message`) or XML (`<Code>`, `<Message>`) body.
    static func parse(_ body: [UInt8]) -> (type: String, message: String) {
        if let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] {
            let type = object["__type"] as? String ?? object["code"] as? String ?? ""
            let message = object["message"] as? String ?? object["Message"] as? String ?? ""
            return (type, message)
        }
        let text = String(decoding: body.prefix(8192), as: UTF8.self)
        func element(_ name: String) -> String {
            guard let open = text.range(of: "<\(name)>"), let close = text.range(of: "</\(name)>", range: open.upperBound..<text.endIndex)
            else { return "" }
            return String(text[open.upperBound..<close.lowerBound])
        }
        return (element("Code"), element("Message"))
    }

    /// `text` with every occurrence of a secret replaced, control characters made spaces, and cut to `limit` characters.
    static func clean(_ text: String, limit: Int, redacting secrets: [String]) -> String {
        var text = text
        // Shorter ones would blank ordinary words of the message; a secret that short is not one a KMS wraps.
        for secret in secrets where secret.count >= 4 {
            text = text.replacingOccurrences(of: secret, with: Secret.redacted)
        }
        let printable = String(String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : $0 }))
        return printable.count > limit ? String(printable.prefix(limit)) + "…" : printable
    }
}
