import Foundation
import KeywardenCore

/// Turns a vendor's answer (or the lack of one) into a status. Pure: tested with plain values,
/// shared by verification and the gateway's failover.
public enum ResponseClassifier {
    /// The longest vendor message kept.
    public static let maximumMessageLength = 300

    /// Classifies an HTTP answer.
    public static func classify(httpStatus: Int, body: Data, retryAfterHeader: String?, scrubber: SecretScrubber, now: Date = Date()) -> (VerificationStatus, String, Int?) {
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
            let wait = retryAfter(retryAfterHeader, now: now)
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

    /// Seconds to wait from a `Retry-After` header (delta seconds or an HTTP date).
    public static func retryAfter(_ header: String?, now: Date = Date()) -> Int? {
        guard let header = header?.trimmingCharacters(in: .whitespaces), !header.isEmpty else { return nil }
        if let seconds = Double(header) { return max(0, Int(seconds.rounded(.up))) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: header) else { return nil }
        return max(0, Int(date.timeIntervalSince(now).rounded(.up)))
    }

    /// A vendor message made safe to store and show: secrets removed, one line, cut short.
    public static func clean(_ message: String, scrubber: SecretScrubber) -> String {
        let oneLine = scrubber.scrub(message).replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
        let trimmed = oneLine.trimmingCharacters(in: .whitespaces)
        guard trimmed.count > maximumMessageLength else { return trimmed }
        return String(trimmed.prefix(maximumMessageLength - 1)) + "…"
    }
}
