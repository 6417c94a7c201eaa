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
        // By hand: String(format:) goes through Foundation's formatter, and every usage row has a time.
        func pad(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
        }
        return pad(Int(parts.tm_year) + 1900, 4) + "-" + pad(Int(parts.tm_mon) + 1, 2) + "-" + pad(Int(parts.tm_mday), 2)
            + "T" + pad(Int(parts.tm_hour), 2) + ":" + pad(Int(parts.tm_min), 2) + ":" + pad(Int(parts.tm_sec), 2) + "." + pad(millis, 3) + "Z"
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
