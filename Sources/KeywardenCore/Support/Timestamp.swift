import Foundation

/// Times as stored: ISO 8601 in UTC with milliseconds (`2026-11-22T14:57:00.123Z`), which sorts as text on every engine.
public enum Timestamp {
    /// Formats a date for storage.
    public static func string(_ date: Date) -> String {
        // To the microsecond first: a parsed `…05.956Z` is held as 5.955999… and must not become `.955`.
        let milliseconds = ((date.timeIntervalSince1970 * 1_000_000).rounded() / 1000).rounded(.down)
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

    /// Parses a stored time (`2026-11-22T14:57:00.123Z`, or without the milliseconds).
    public static func date(_ text: String) -> Date? {
        // By hand as well: every stored row has two or three times, and a Foundation formatter per parse
        // (or a shared one behind a lock) showed on the gateway's profile when snapshots were rebuilt.
        let bytes = Array(text.utf8)
        guard bytes.count == 24 || bytes.count == 20, bytes[4] == 0x2D, bytes[7] == 0x2D, bytes[10] == 0x54,
              bytes[13] == 0x3A, bytes[16] == 0x3A, bytes[bytes.count - 1] == 0x5A else { return nil }
        func number(_ start: Int, _ length: Int) -> Int? {
            var value = 0
            for byte in bytes[start..<start + length] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var millis = 0
        if bytes.count == 24 {
            guard bytes[19] == 0x2E, let value = number(20, 3) else { return nil }
            millis = value
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        return Date(timeIntervalSince1970: Double(Int64(seconds) * 1000 + Int64(millis)) / 1000)
    }

    /// Now, formatted for storage.
    public static var now: String { string(Date()) }
}
