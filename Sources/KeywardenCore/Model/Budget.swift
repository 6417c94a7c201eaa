import Foundation

/// Who a budget caps: the platform's bill (calls its keys or the managed default pay for) or the workspace's own keys.
public enum BudgetScope: String, Codable, Sendable, CaseIterable {
    /// Calls paid by the platform: the `platform` and `managed` sources.
    case platform
    /// Calls paid by the workspace's own keys (an optional limit of its own).
    case byok

    /// The budget a call paid from `source` counts against.
    public init(_ source: KeySource) {
        self = source == .byok ? .byok : .platform
    }
}

/// A workspace's spending limits per period, in thousandths of a credit; `nil` is no limit.
public struct BudgetLimits: Sendable, Equatable, Codable {
    public var platform: Int?
    public var byok: Int?

    public init(platform: Int? = nil, byok: Int? = nil) {
        self.platform = platform
        self.byok = byok
    }

    public subscript(scope: BudgetScope) -> Int? {
        switch scope {
        case .platform: return platform
        case .byok: return byok
        }
    }

    /// The largest limit accepted: a trillion credits.
    public static let maximumMilliCredits = 1_000_000_000_000_000
}

/// How a budget's periods run, in UTC: months from a billing day (the 1st: calendar months), weeks from Monday, or days.
public enum BudgetCycle: Sendable, Equatable, Codable {
    /// Months starting on `startDay` (1…28) at 00:00 UTC.
    case month(startDay: Int)
    /// Weeks starting on Monday at 00:00 UTC.
    case week
    /// Days starting at 00:00 UTC.
    case day

    /// Calendar months: the default.
    public static let calendarMonth = BudgetCycle.month(startDay: 1)

    /// Reads `month`, `month:15`, `week` or `day`; `nil` for anything else.
    public init?(text: String) {
        switch text {
        case "month": self = .calendarMonth
        case "week": self = .week
        case "day": self = .day
        default:
            guard text.hasPrefix("month:"), let day = UntrustedNumber.integer(String(text.dropFirst(6))), (1...28).contains(day) else { return nil }
            self = .month(startDay: day)
        }
    }

    /// As ``init(text:)`` reads it.
    public var text: String {
        switch self {
        case .month(let day): day == 1 ? "month" : "month:\(day)"
        case .week: "week"
        case .day: "day"
        }
    }

    /// The words a message uses for the current period: "this month", "this week", "today".
    public var currentPeriodName: String {
        switch self {
        case .month: "this month"
        case .week: "this week"
        case .day: "today"
        }
    }

    /// Reads a period a client sent in `field`; a `400` naming the field when it does not read.
    public static func parse(_ text: String, field: String) throws(KeywardenError) -> BudgetCycle {
        guard let cycle = BudgetCycle(text: text) else {
            throw KeywardenError.invalid(field, "\(field) is month, month:D (a billing day from 1 to 28), week or day.")
        }
        return cycle
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let cycle = BudgetCycle(text: text) else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a budget period")) }
        self = cycle
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }
}

/// A budget's period: by default the calendar month, in UTC.
public struct BudgetPeriod: Sendable, Equatable {
    /// The key spending is counted under: `YYYY-MM` for a calendar month (as before cycles existed), else the first
    /// day and the cycle's letter (`2026-11-15m`, `2026-11-30w`, `2026-12-01d`), so periods of two cycles never share a key.
    public let key: String
    public let start: Date
    /// The first instant of the next period.
    public let end: Date

    /// The period of `cycle` that contains `date`.
    public init(containing date: Date, cycle: BudgetCycle = .calendarMonth) {
        let today = UTCDay(containing: date)
        let todayNumber = UTCDay.daysSinceEpoch(year: today.year, month: today.month, day: today.day)
        func instant(_ days: Int) -> Date { Date(timeIntervalSince1970: Double(days) * 86_400) }
        func name(_ days: Int) -> String {
            let day = UTCDay(containing: instant(days))
            return UTCDay.pad(day.year, 4) + "-" + UTCDay.pad(day.month, 2) + "-" + UTCDay.pad(day.day, 2)
        }
        switch cycle {
        case .month(let startDay):
            var (year, month) = (today.year, today.month)
            if today.day < startDay { (year, month) = month == 1 ? (year - 1, 12) : (year, month - 1) }
            let (nextYear, nextMonth) = month == 12 ? (year + 1, 1) : (year, month + 1)
            let first = UTCDay.daysSinceEpoch(year: year, month: month, day: startDay)
            start = instant(first)
            end = instant(UTCDay.daysSinceEpoch(year: nextYear, month: nextMonth, day: startDay))
            key = startDay == 1 ? UTCDay.pad(year, 4) + "-" + UTCDay.pad(month, 2) : name(first) + "m"
        case .week:
            // 1970-01-01 was a Thursday: Monday is three days before it.
            let sinceMonday = ((todayNumber + 3) % 7 + 7) % 7
            let first = todayNumber - sinceMonday
            start = instant(first)
            end = instant(first + 7)
            key = name(first) + "w"
        case .day:
            start = instant(todayNumber)
            end = instant(todayNumber + 1)
            key = name(todayNumber) + "d"
        }
    }
}

/// A UTC calendar date from a time, by arithmetic (no `Calendar`: a call's budget check reads it).
struct UTCDay {
    let year: Int
    let month: Int
    let day: Int
    /// Seconds since midnight.
    let second: Int

    init(containing date: Date) {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        second = seconds - days * 86_400
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = doy - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    }

    /// Days from 1970-01-01 to a date (days_from_civil).
    static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}

/// The shares of a budget announced before the wall (once per period each): 80 %, 95 %, 100 %.
public enum BudgetThreshold {
    public static let percents = [80, 95, 100]

    /// The thresholds reached by spending `after` (of `limit`) that are above `announced` (the highest already announced),
    /// lowest first.
    public static func reached(spent after: Int, limit: Int, above announced: Int) -> [Int] {
        guard limit > 0 else { return after > 0 ? percents.filter { $0 > announced } : [] }
        // In Double: exact for any spending below 2^53 thousandths, and no overflow at the limits' bound.
        return percents.filter { percent in percent > announced && Double(after) * 100 >= Double(limit) * Double(percent) }
    }
}

/// A workspace's rate limits on the platform's keys (and the managed default), per minute; `nil` is no limit.
public struct RateLimits: Sendable, Equatable, Codable {
    public var requestsPerMinute: Int?
    public var tokensPerMinute: Int?

    public init(requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
    }

    public var isEmpty: Bool { requestsPerMinute == nil && tokensPerMinute == nil }

    /// The largest limit accepted.
    public static let maximum = 1_000_000_000
}

/// A rate limit's window: the minute (UTC) a call falls in.
public struct RateWindow: Sendable, Equatable {
    /// `YYYY-MM-DDTHH:MM`.
    public let key: String
    /// Whole seconds until the next window opens (1…60), for `Retry-After`.
    public let secondsLeft: Int

    public init(containing date: Date) {
        let day = UTCDay(containing: date)
        key = UTCDay.pad(day.year, 4) + "-" + UTCDay.pad(day.month, 2) + "-" + UTCDay.pad(day.day, 2) + "T"
            + UTCDay.pad(day.second / 3600, 2) + ":" + UTCDay.pad(day.second % 3600 / 60, 2)
        secondsLeft = 60 - day.second % 60
    }
}
