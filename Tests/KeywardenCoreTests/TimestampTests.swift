import Foundation
import Testing
import KeywardenCore

@Suite("Stored times")
struct TimestampTests {
    @Test("a stored time parses back to the same text, and agrees with Foundation's ISO 8601 parser")
    func roundTrip() throws {
        let foundation = ISO8601DateFormatter()
        foundation.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            // Any millisecond between 1970 and 2200.
            let date = Date(timeIntervalSince1970: Double(UInt64.random(in: 0..<7_258_118_400_000, using: &generator)) / 1000)
            let text = Timestamp.string(date)
            let parsed = try #require(Timestamp.date(text), "\(text)")
            #expect(Timestamp.string(parsed) == text)
            let reference = try #require(foundation.date(from: text))
            #expect(abs(parsed.timeIntervalSince(reference)) < 0.0005, "\(text)")
        }
        #expect(Timestamp.date("2026-11-22T14:57:00Z") == Date(timeIntervalSince1970: 1_795_359_420))
        #expect(Timestamp.date("2024-02-29T23:59:59.999Z").map(Timestamp.string) == "2024-02-29T23:59:59.999Z")
    }

    @Test("text that is not a stored time is not a date")
    func rejects() {
        for text in ["", "2026-11-22", "2026-11-22T14:57:00.123", "2026-11-22 14:57:00.123Z", "2026-13-22T14:57:00.123Z",
                     "2026-11-22T24:00:00.000Z", "2026-11-22T14:57:00.12xZ", "２026-11-22T14:57:00.123Z", "2026-11-22T14:57:00+01:00"] {
            #expect(Timestamp.date(text) == nil, "\(text)")
        }
    }
}
