import Foundation

/// A vendor's `Retry-After` header, read as RFC 9110 §10.2.3 allows (delta-seconds or an HTTP-date),
/// without trusting it: any other form (`inf`, `nan`, `1e999`, `-5`, `1.5`, garbage) is `nil`, so the caller
/// falls back to its default, and every value is clamped into `0...maximum`.
public enum RetryAfter {
    /// Seconds to wait, clamped into `0...maximum`; `nil` when the header says nothing usable.
    public static func seconds(_ header: String?, now: Date = Date(), maximum: Int) -> Int? {
        guard let header else { return nil }
        let text = header.trimmingSpacesAndTabs
        guard !text.isEmpty, text.utf8.count <= 64 else { return nil }
        let bound = max(0, maximum)
        if text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            // delta-seconds = 1*DIGIT: thirty digits is a very long wait, clamped, not a trap.
            return UntrustedNumber.integer(text, clampedTo: 0...bound)
        }
        guard let date = HTTPDate.parse(text) else { return nil }
        return UntrustedNumber.integer(date.timeIntervalSince(now), clampedTo: 0...bound, rounding: .up)
    }
}

/// HTTP-dates (RFC 9110 §5.6.7): the preferred IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) and the two
/// obsolete forms a recipient must accept (RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`, asctime
/// `Sun Nov  6 08:49:37 1994`). Parsed by hand: no formatter, no locale, nothing that can trap.
public enum HTTPDate {
    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// The date, or `nil` when the text is not an HTTP-date.
    public static func parse(_ text: String) -> Date? {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        var day: Int?, month: Int?, year: Int?, clock: String?
        if words.count == 6, words[0].hasSuffix(","), words[5] == "GMT" {
            // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
            day = twoDigits(words[1]); month = monthNumber(words[2]); year = UntrustedNumber.integer(words[3]); clock = words[4]
            guard words[3].utf8.count == 4 else { return nil }
        } else if words.count == 4, words[0].hasSuffix(","), words[3] == "GMT" {
            // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT (a two-digit year is taken as 19xx or 20xx, nearest to now)
            let parts = words[1].split(separator: "-").map(String.init)
            guard parts.count == 3, parts[2].utf8.count == 2, let short = UntrustedNumber.integer(parts[2]), short >= 0 else { return nil }
            day = twoDigits(parts[0]); month = monthNumber(parts[1]); year = short < 70 ? 2000 + short : 1900 + short; clock = words[2]
        } else if words.count == 5 {
            // asctime: Sun Nov  6 08:49:37 1994
            month = monthNumber(words[1]); day = UntrustedNumber.integer(words[2]); clock = words[3]; year = UntrustedNumber.integer(words[4])
            guard words[2].utf8.count <= 2, words[4].utf8.count == 4 else { return nil }
        } else {
            return nil
        }
        guard let day, let month, let year, let clock, (1...31).contains(day), (1...9999).contains(year) else { return nil }
        let hms = clock.split(separator: ":", omittingEmptySubsequences: false)
        guard hms.count == 3, hms.allSatisfy({ $0.utf8.count == 2 }),
              let hour = UntrustedNumber.integer(hms[0]), let minute = UntrustedNumber.integer(hms[1]), let second = UntrustedNumber.integer(hms[2]),
              (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        return Date(timeIntervalSince1970: Double(days * 86_400 + hour * 3600 + minute * 60 + second))
    }

    static func twoDigits(_ text: String) -> Int? {
        guard text.utf8.count == 2 else { return nil }
        return UntrustedNumber.integer(text)
    }

    static func monthNumber(_ text: String) -> Int? {
        months.firstIndex(of: text.lowercased()).map { $0 + 1 }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm); small inputs only.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
