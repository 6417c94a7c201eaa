import Foundation

/// Times as stored: ISO 8601 in UTC with milliseconds (`2026-11-22T14:57:00.123Z`), which sorts as text on every engine.
public enum Timestamp {
    /// Formats a date for storage.
    public static func string(_ date: Date) -> String {
        let milliseconds = (date.timeIntervalSince1970 * 1000).rounded(.down)
        let seconds = Int64(milliseconds / 1000)
        let millis = Int(Int64(milliseconds) - seconds * 1000)
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis
        )
    }

    /// Parses a stored time.
    public static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    /// Now, formatted for storage.
    public static var now: String { string(Date()) }
}
