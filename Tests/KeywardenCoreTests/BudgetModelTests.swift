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
