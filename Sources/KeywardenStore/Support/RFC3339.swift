import Foundation

/// Strict reading of a day (`2026-11-22`) or an RFC 3339 time (`2026-11-22T14:57:00Z`, `…T14:57:00.5+02:00`):
/// four-digit year, a date that is on the calendar, hours 00–23, seconds up to 60 (a leap second), 1 to 9
/// fraction digits, and `Z` or a `±hh:mm` offset (`T` and `Z` in either case, as RFC 3339 allows). Anything
/// else is refused: `2026-02-30`, `T24:00:00`, `+0200` and one-digit fields are not quietly normalised.
/// What the OpenAPI document's `from`/`to` pattern describes.
public enum RFC3339 {
    public static func date(_ text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count == 10 || (b.count >= 20 && b.count <= 35) else { return nil }
        func number(_ start: Int, _ length: Int) -> Int? {
            guard start + length <= b.count else { return nil }
            var value = 0
            for byte in b[start..<start + length] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        let dash = UInt8(ascii: "-"), colon = UInt8(ascii: ":")
        guard let year = number(0, 4), b[4] == dash, let month = number(5, 2), b[7] == dash, let day = number(8, 2),
              (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year) else { return nil }
        let midnight = daysFromCivil(year: year, month: month, day: day) * 86_400
        if b.count == 10 { return Date(timeIntervalSince1970: Double(midnight)) }
        guard b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"),
              let hour = number(11, 2), b[13] == colon, let minute = number(14, 2), b[16] == colon, let second = number(17, 2),
              hour < 24, minute < 60, second <= 60 else { return nil }
        var index = 19
        var fraction = 0.0
        if b[index] == UInt8(ascii: ".") {
            let start = index + 1
            var end = start
            while end < b.count, b[end] >= 0x30, b[end] <= 0x39 { end += 1 }
            guard (1...9).contains(end - start), let digits = number(start, end - start) else { return nil }
            fraction = Double(digits) / pow(10, Double(end - start))
            index = end
        }
        guard index < b.count else { return nil }
        let offset: Int
        switch b[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            guard index + 1 == b.count else { return nil }
            offset = 0
        case UInt8(ascii: "+"), dash:
            guard index + 6 == b.count, let hours = number(index + 1, 2), b[index + 3] == colon, let minutes = number(index + 4, 2),
                  hours < 24, minutes < 60 else { return nil }
            offset = (b[index] == dash ? -1 : 1) * (hours * 3600 + minutes * 60)
        default:
            return nil
        }
        return Date(timeIntervalSince1970: Double(midnight + hour * 3600 + minute * 60 + second - offset) + fraction)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
