/// The `Server-Timing` header of a gateway answer (W3C Server Timing): `kw;dur=0.212, upstream;dur=41.870`.
///
/// `kw` is Keywarden's own time until the response head, `upstream` the time spent waiting for vendors (their
/// response heads, and the bodies of failed attempts), both in milliseconds with microsecond precision.
enum ServerTiming {
    static func header(own: Duration, upstream: Duration) -> String {
        "kw;dur=" + milliseconds(own) + ", upstream;dur=" + milliseconds(upstream)
    }

    /// `1.234` for 1,234 µs; never negative.
    static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 else { return "0.000" }
        let micros = seconds.multipliedReportingOverflow(by: 1_000_000)
        guard !micros.overflow else { return String(seconds) + "000.000" }
        let total = micros.partialValue.addingReportingOverflow(attoseconds / 1_000_000_000_000)
        let value = total.overflow ? micros.partialValue : total.partialValue
        let fraction = String(value % 1000)
        return String(value / 1000) + "." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}
