import Foundation
import KeywardenCore
import Testing
@testable import KeywardenStore

@Suite("RFC 3339 times and days")
struct RFC3339Tests {
    @Test("days and times on the calendar are read, with offsets, fractions and a leap second")
    func read() throws {
        let day: Double = 1_795_305_600  // 2026-11-22
        let cases: [(String, Double)] = [
            ("1970-01-01", 0), ("2026-11-22", day),
            ("2026-11-22T14:57:00Z", day + 53_820), ("2026-11-22t14:57:00.25z", day + 53_820.25),
            ("2026-11-22T14:57:00+02:00", day + 46_620), ("2026-11-22T14:57:00-00:30", day + 55_620),
            ("2024-02-29T00:00:00Z", 1_709_164_800), ("2000-02-29", 951_782_400), ("2016-12-31T23:59:60Z", 1_483_228_800),
            ("9999-12-31", 253_402_214_400), ("0001-01-01", -62_135_596_800),
        ]
        for (text, seconds) in cases {
            #expect(RFC3339.date(text)?.timeIntervalSince1970 == seconds, "\(text)")
        }
    }

    @Test("dates off the calendar, sloppy spellings and other formats are refused, never normalised")
    func refused() {
        for text in ["2026-02-30", "2023-02-29", "2100-02-29", "2026-04-31", "2026-13-01", "2026-00-10", "2026-11-00", "2026-1-22",
                     "2026-11-22T24:00:00Z", "2026-11-22T10:60:00Z", "2026-11-22T10:00:61Z", "2026-11-22T10:00:00", "2026-11-22T10:00Z",
                     "2026-11-22T10:00:00+0200", "2026-11-22T10:00:00+02", "2026-11-22T10:00:00+24:00", "2026-11-22T10:00:00+02:60",
                     "2026-11-22 10:00:00Z", "2026-11-22T10:00:00.Z", "2026-11-22T10:00:00.1234567890Z", "+2026-11-22T10:00:00Z",
                     "20261122", "2026-11-22Z", "2026-11-22T1:00:00Z", "２０２６-11-22", "", "2026-11-22T10:00:00ZZ"] {
            #expect(RFC3339.date(text) == nil, "\(text)")
        }
    }
}

@Suite("Usage bounds")
struct UsageBoundTests {
    @Test("the last documented day as an upper bound means no bound (its end is past what timestamps say); the day before is a bound")
    func lastDay() throws {
        #expect(try UsageQuery.time("9999-12-31", field: "to", endOfDay: true) == nil)
        #expect(try UsageQuery.time("9999-12-30", field: "to", endOfDay: true) == Date(timeIntervalSince1970: 253_402_300_800 - 86_400))
        #expect(try UsageQuery.time("9999-12-31", field: "from", endOfDay: false) == Date(timeIntervalSince1970: 253_402_300_800 - 86_400))
        #expect(throws: KeywardenError.self) { try UsageQuery.time("10000-01-01", field: "to", endOfDay: true) }
    }
}
