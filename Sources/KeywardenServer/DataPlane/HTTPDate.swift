#if canImport(Glibc)
import Glibc
#endif

/// The HTTP `Date` header's value (IMF-fixdate, RFC 9110: `Mon, 07 Dec 2026 08:36:34 GMT`).
enum HTTPDate {
    /// The value for `seconds` since 1970.
    static func string(seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday) % 7]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon) % 12]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }

    /// The value made once a second (one per connection's handler, so it needs no lock).
    struct Cache {
        private var second = -1
        private var value = ""

        /// The value for now.
        mutating func now() -> String {
            var spec = timespec()
            clock_gettime(CLOCK_REALTIME, &spec)
            let current = Int(spec.tv_sec)
            if current != second {
                second = current
                value = HTTPDate.string(seconds: current)
            }
            return value
        }
    }
}
