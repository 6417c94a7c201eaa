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

/// A budget's period: the calendar month, in UTC.
public struct BudgetPeriod: Sendable, Equatable {
    /// `YYYY-MM`, the key spending is counted under.
    public let key: String
    public let start: Date
    /// The first instant of the next period.
    public let end: Date

    /// The month that contains `date`.
    public init(containing date: Date) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? TimeZone(secondsFromGMT: 0) ?? .current
        let parts = calendar.dateComponents([.year, .month], from: date)
        let start = calendar.date(from: DateComponents(year: parts.year, month: parts.month, day: 1)) ?? date
        self.start = start
        self.end = calendar.date(byAdding: .month, value: 1, to: start) ?? start.addingTimeInterval(31 * 86_400)
        self.key = String(format: "%04d-%02d", parts.year ?? 1970, parts.month ?? 1)
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
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let minuteStart = seconds - ((seconds % 60) + 60) % 60
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? TimeZone(secondsFromGMT: 0) ?? .current
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: Date(timeIntervalSince1970: Double(minuteStart)))
        key = String(format: "%04d-%02d-%02dT%02d:%02d", parts.year ?? 1970, parts.month ?? 1, parts.day ?? 1, parts.hour ?? 0, parts.minute ?? 0)
        secondsLeft = max(1, minuteStart + 60 - seconds)
    }
}
