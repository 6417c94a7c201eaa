import Foundation
import KeywardenCore

/// Turns a vendor's answer (or the lack of one) into a status. Pure: tested with plain values,
/// shared by verification and the gateway's failover.
public enum ResponseClassifier {
    /// The longest vendor message kept.
    public static let maximumMessageLength = 300

    /// Classifies an HTTP answer.
    ///
    /// A `Retry-After` is read by ``RetryAfter`` (any hostile form falls back to `nil`) and clamped to `maximumRetryAfter` seconds.
    public static func classify(httpStatus: Int, body: Data, retryAfterHeader: String?, scrubber: SecretScrubber, now: Date = Date(),
                                maximumRetryAfter: Int = 3600) -> (VerificationStatus, String, Int?) {
        let error = VendorError.parse(body)
        let vendorMessage = error.message.map { clean($0, scrubber: scrubber) }
        func say(_ fallback: String) -> String { vendorMessage.map { "\($0)" } ?? fallback }
        if (200..<300).contains(httpStatus) {
            return (.valid, "The key works.", nil)
        }
        if error.meansQuotaExhausted, [400, 401, 402, 403, 429].contains(httpStatus) {
            return (.quotaExceeded, say("The account has no quota left (\(httpStatus))."), nil)
        }
        switch httpStatus {
        case 401:
            return (.invalid, say("The vendor rejected the key (401)."), nil)
        case 403:
            return (.noPermission, say("The key is not allowed to do this (403)."), nil)
        case 402:
            return (.quotaExceeded, say("Payment required (402)."), nil)
        case 429:
            let wait = RetryAfter.seconds(retryAfterHeader, now: now, maximum: maximumRetryAfter)
            return (.rateLimited, say("Rate limited (429)."), wait)
        case 404:
            return (.unreachable, "The vendor answered 404 Not Found: check the base URL and the API version." + (vendorMessage.map { " \($0)" } ?? ""), nil)
        case 408:
            return (.unreachable, say("The vendor timed out (408)."), nil)
        case 500...599:
            return (.unreachable, "The vendor had an error (\(httpStatus)); try again later." + (vendorMessage.map { " \($0)" } ?? ""), nil)
        default:
            return (.invalid, say("The vendor refused the request (\(httpStatus))."), nil)
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
