import Foundation
import Testing
@testable import KeywardenCore

/// The pure parts of budgets and rate limits: periods, windows, thresholds.
@Suite("Budget model")
struct BudgetModelTests {
    @Test("a budget's period is the calendar month in UTC, whatever the time of day or the year's length")
    func monthlyPeriods() throws {
        let formatter = ISO8601DateFormatter()
        let cases: [(String, String, String)] = [
            ("2026-12-31T23:59:59Z", "2026-12", "2027-01-01T00:00:00Z"),
            ("2028-02-29T12:00:00Z", "2028-02", "2028-03-01T00:00:00Z"),
            ("2027-01-01T00:00:00Z", "2027-01", "2027-02-01T00:00:00Z"),
        ]
        for (at, key, end) in cases {
            let period = BudgetPeriod(containing: try #require(formatter.date(from: at)))
            #expect(period.key == key && formatter.string(from: period.end) == end, "\(at)")
        }
    }

    @Test("the calendar arithmetic agrees with Foundation's calendar over four centuries, leap years and negative times included")
    func calendarArithmetic() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = try #require(TimeZone(identifier: "UTC"))
        var seconds = -2_208_988_800  // 1900-01-01
        while seconds < 13_000_000_000 {  // beyond 2380
            let date = Date(timeIntervalSince1970: Double(seconds))
            let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: date)
            let day = UTCDay(containing: date)
            #expect([day.year, day.month, day.day, day.second / 3600, day.second % 3600 / 60]
                    == [parts.year, parts.month, parts.day, parts.hour, parts.minute].map { $0 ?? -1 }, "\(date)")
            #expect(UTCDay.daysSinceEpoch(year: day.year, month: day.month, day: day.day) * 86_400 + day.second == seconds)
            seconds += 3_901_517  // ~45 days and some hours: every month and hour over the years
        }
    }

    @Test("a rate window is the UTC minute, with the seconds left until the next one")
    func minuteWindows() throws {
        let window = RateWindow(containing: Date(timeIntervalSince1970: 1_764_547_259.4))  // 2025-12-01T00:00:59.4Z
        #expect(window.key == "2025-12-01T00:00" && window.secondsLeft == 1)
        let start = RateWindow(containing: Date(timeIntervalSince1970: 1_764_547_260))
        #expect(start.key == "2025-12-01T00:01" && start.secondsLeft == 60)
    }

    @Test("thresholds: each of 80, 95 and 100 % once, lowest first, none twice, a jump announces every one it passes")
    func thresholds() {
        #expect(BudgetThreshold.reached(spent: 79, limit: 100, above: 0) == [])
        #expect(BudgetThreshold.reached(spent: 80, limit: 100, above: 0) == [80])
        #expect(BudgetThreshold.reached(spent: 96, limit: 100, above: 80) == [95])
        #expect(BudgetThreshold.reached(spent: 250, limit: 100, above: 0) == [80, 95, 100])
        #expect(BudgetThreshold.reached(spent: 250, limit: 100, above: 100) == [])
        #expect(BudgetThreshold.reached(spent: 1, limit: 0, above: 0) == [80, 95, 100], "a zero limit is reached by any spending")
        #expect(BudgetThreshold.reached(spent: Int.max, limit: BudgetLimits.maximumMilliCredits, above: 0) == [80, 95, 100], "no overflow at the edges")
    }

    @Test("a call's source picks its budget: the platform's for its keys and the managed default, the workspace's for its own")
    func scopes() {
        #expect(BudgetScope(.platform) == .platform && BudgetScope(.managed) == .platform && BudgetScope(.byok) == .byok)
    }
}

@Suite("Budget cycles")
struct BudgetCycleTests {
    /// 2026-12-01T10:00:00Z, a Tuesday.
    let tuesday = Date(timeIntervalSince1970: 1_796_119_200)

    func day(_ text: String) -> Date { Date(timeIntervalSince1970: ISO8601DateFormatter().date(from: text + "T00:00:00Z")!.timeIntervalSince1970) }

    @Test("a month from a billing day runs from that day to the same day next month, across years; the 1st keeps the calendar month's key")
    func anchoredMonths() {
        let fifteenth = BudgetCycle.month(startDay: 15)
        let before = BudgetPeriod(containing: tuesday, cycle: fifteenth)
        #expect(before.start == day("2026-11-15") && before.end == day("2026-12-15") && before.key == "2026-11-15m")
        let after = BudgetPeriod(containing: day("2026-12-20"), cycle: fifteenth)
        #expect(after.start == day("2026-12-15") && after.end == day("2027-01-15"))
        let january = BudgetPeriod(containing: day("2027-01-03"), cycle: fifteenth)
        #expect(january.start == day("2026-12-15") && january.end == day("2027-01-15"))
        let calendar = BudgetPeriod(containing: tuesday, cycle: .calendarMonth)
        #expect(calendar == BudgetPeriod(containing: tuesday) && calendar.key == "2026-12" && calendar.end == day("2027-01-01"))
        // The instant a period ends belongs to the next one.
        #expect(BudgetPeriod(containing: day("2026-12-15"), cycle: fifteenth).start == day("2026-12-15"))
        #expect(BudgetPeriod(containing: day("2026-12-15").addingTimeInterval(-0.001), cycle: fifteenth).end == day("2026-12-15"))
    }

    @Test("weeks run from Monday, days from midnight, in UTC; the keys of different cycles never meet")
    func weeksAndDays() {
        let week = BudgetPeriod(containing: tuesday, cycle: .week)
        #expect(week.start == day("2026-11-30") && week.end == day("2026-12-07") && week.key == "2026-11-30w")
        #expect(BudgetPeriod(containing: day("2026-11-30"), cycle: .week).start == day("2026-11-30"), "Monday starts its own week")
        #expect(BudgetPeriod(containing: day("2026-12-06").addingTimeInterval(86_399), cycle: .week).start == day("2026-11-30"), "Sunday ends it")
        #expect(BudgetPeriod(containing: day("1969-12-29"), cycle: .week).start == day("1969-12-29"), "before 1970 too")
        let today = BudgetPeriod(containing: tuesday, cycle: .day)
        #expect(today.start == day("2026-12-01") && today.end == day("2026-12-02") && today.key == "2026-12-01d")
        let keys = [BudgetCycle.calendarMonth, .month(startDay: 2), .week, .day].map { BudgetPeriod(containing: day("2026-12-01"), cycle: $0).key }
        #expect(Set(keys).count == 4, "\(keys)")
    }

    @Test("a cycle reads only month, month:1…28, week and day, and writes what it reads")
    func cycleText() {
        for text in ["month", "month:2", "month:28", "week", "day"] { #expect(BudgetCycle(text: text)?.text == text) }
        #expect(BudgetCycle(text: "month:1") == .calendarMonth)
        for bad in ["", "Month", "month:0", "month:29", "month:-1", "month:", "month:1.5", "month:9223372036854775808", "year", "week ", "daily"] {
            #expect(BudgetCycle(text: bad) == nil, "\(bad)")
        }
        #expect(BudgetCycle.week.currentPeriodName == "this week" && BudgetCycle.day.currentPeriodName == "today")
    }
}

@Suite("Effective limits")
struct EffectiveLimitsTests {
    @Test("each limit is the workspace's, else its plan's, else (platform budget only) the platform's default; the period likewise")
    func overlay() {
        let plan = Plan(name: "pro", budget: BudgetLimits(platform: 500_000, byok: 9_000), rateLimits: RateLimits(requestsPerMinute: 60), budgetCycle: .week)
        let mixed = EffectiveLimits(own: BudgetLimits(byok: 1_000), ownRates: RateLimits(tokensPerMinute: 10), plan: plan, defaultPlatformBudget: 7)
        #expect(mixed.budget == BudgetLimits(platform: 500_000, byok: 1_000) && mixed.platformSource == .plan && mixed.byokSource == .workspace)
        #expect(mixed.rateLimits == RateLimits(requestsPerMinute: 60, tokensPerMinute: 10) && mixed.cycle == .week)
        let bare = EffectiveLimits(own: BudgetLimits(), ownRates: RateLimits(), ownCycle: .day, plan: nil, defaultPlatformBudget: 7)
        #expect(bare.budget == BudgetLimits(platform: 7) && bare.source(of: .platform) == .platformDefault && bare.source(of: .byok) == nil)
        #expect(bare.cycle == .day && bare.rateLimits.isEmpty)
        #expect(EffectiveLimits(own: BudgetLimits(), ownRates: RateLimits(), plan: nil, defaultPlatformBudget: nil).cycle == .calendarMonth)
    }
}
