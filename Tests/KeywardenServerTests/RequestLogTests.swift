import Testing
@testable import KeywardenServer

@Suite("Request log line")
struct RequestLogTests {
    @Test("a duration is written in milliseconds with two decimals, rounded down, as String(format: \"%.2f\") wrote it for these")
    func millisecondsWithTwoDecimals() {
        let cases: [(Duration, String)] = [
            (.zero, "0.00"), (.microseconds(50), "0.05"), (.microseconds(9), "0.00"), (.milliseconds(1), "1.00"),
            (.microseconds(12_340), "12.34"), (.microseconds(12_349), "12.34"), (.microseconds(100_070), "100.07"),
            (.seconds(2), "2000.00"), (.seconds(3600), "3600000.00"), (.nanoseconds(-5), "0.00"),
        ]
        for (duration, text) in cases {
            #expect(RequestLogMiddleware<KeywardenRequestContext>.milliseconds(duration) == text, "\(duration)")
        }
    }
}
