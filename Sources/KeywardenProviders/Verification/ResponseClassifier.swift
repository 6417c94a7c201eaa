import Foundation
import KeywardenCore

/// Turns a vendor's answer (or the lack of one) into a status. Pure: tested with plain values,
/// shared by verification and the gateway's failover.
public enum ResponseClassifier {
    /// The longest vendor message kept.
    public static let maximumMessageLength = 300

    /// What an answer says of the key: its status, the vendor's words (cleaned), and how long to wait before it is
    /// tried again, when the vendor said (its `Retry-After`, else the delay its body gives).
    public struct Classification: Sendable, Equatable {
        public var status: VerificationStatus
        public var message: String
        public var retryAfter: Duration?

        /// The wait in whole seconds, rounded up (what a `Retry-After` header or a status hint can say).
        public var retryAfterSeconds: Int? {
            retryAfter.map { wait in
                let (seconds, attoseconds) = wait.components
                return Int(clamping: seconds) + (attoseconds > 0 ? 1 : 0)
            }
        }
    }

    /// Classifies an HTTP answer, by the vendor's structured fields first (OpenAI's `insufficient_quota` against
    /// `rate_limit_exceeded`, Anthropic's `overloaded_error`, Google's quota ids and `RetryInfo`) and its words only
    /// when those say nothing.
    ///
    /// A `Retry-After` is read by ``RetryAfter`` (any hostile form falls back to `nil`); without one, a delay in the body
    /// is used. Either is clamped to `maximumRetryAfter` seconds.
    public static func classify(httpStatus: Int, body: Data, retryAfterHeader: String?, scrubber: SecretScrubber, now: Date = Date(),
                                maximumRetryAfter: Int = 3600) -> Classification {
        let error = VendorError.parse(body)
        let vendorMessage = error.message.map { clean($0, scrubber: scrubber) }
        func say(_ fallback: String) -> String { vendorMessage.map { "\($0)" } ?? fallback }
        func answer(_ status: VerificationStatus, _ message: String, _ wait: Duration? = nil) -> Classification {
            Classification(status: status, message: message, retryAfter: wait)
        }
        if (200..<300).contains(httpStatus) {
            return answer(.valid, "The key works.")
        }
        let throttle = error.throttle
        if throttle == .quotaExhausted, [400, 401, 402, 403, 429].contains(httpStatus) {
            return answer(.quotaExceeded, say("The account has no quota left (\(httpStatus))."))
        }
        switch httpStatus {
        case 401:
            return answer(.invalid, say("The vendor rejected the key (401)."))
        case 403 where error.refusesModel:
            // The request's model, not the key: another key may serve it; this one serves everything else as before.
            return answer(.modelNotFound, say("The key may not use this model (403)."))
        case 403:
            return answer(.noPermission, say("The key is not allowed to do this (403)."))
        case 402:
            return answer(.quotaExceeded, say("Payment required (402)."))
        case 429:
            let header = RetryAfter.seconds(retryAfterHeader, now: now, maximum: maximumRetryAfter).map { Duration.seconds($0) }
            let wait = header ?? error.retryDelay.map { min($0, .seconds(max(0, maximumRetryAfter))) }
            return answer(.rateLimited, say("Rate limited (429)."), wait)
        case 404:
            return answer(.unreachable, "The vendor answered 404 Not Found: check the base URL and the API version." + (vendorMessage.map { " \($0)" } ?? ""))
        case 408:
            return answer(.unreachable, say("The vendor timed out (408)."))
        case 500...599:
            let overloaded = throttle == .overloaded ? "The vendor is overloaded (\(httpStatus)); try again later." : "The vendor had an error (\(httpStatus)); try again later."
            return answer(.unreachable, overloaded + (vendorMessage.map { " \($0)" } ?? ""))
        default:
            return answer(.invalid, say("The vendor refused the request (\(httpStatus))."))
        }
    }

    /// A vendor message made safe to store and show: secrets removed, one line, cut short.
    public static func clean(_ message: String, scrubber: SecretScrubber) -> String {
        // Cut before any per-byte work: a vendor's message may be megabytes; what is kept is 300 characters.
        let capped = message.utf8.count > 4 * maximumMessageLength ? String(decoding: message.utf8.prefix(4 * maximumMessageLength), as: UTF8.self) : message
        let oneLine = scrubber.scrub(capped).replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
        let trimmed = oneLine.trimmingCharacters(in: .whitespaces)
        guard trimmed.count > maximumMessageLength else { return trimmed }
        return String(trimmed.prefix(maximumMessageLength - 1)) + "…"
    }
}
