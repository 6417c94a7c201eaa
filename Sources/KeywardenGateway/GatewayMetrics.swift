import Prometheus
import Synchronization

/// The gateway's Prometheus series, labelled by provider and source (never by workspace or key).
public struct GatewayMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// Series already made, by their labels: the registry's own lookup builds names and label sets on every call.
    private let calls = CallSeries()

    final class CallSeries: Sendable {
        let series = Mutex<[SeriesKey: (Counter, DurationHistogram)]>([:])
        let counters = Mutex<[SeriesKey: Counter]>([:])
    }

    /// A series' labels as a key: hashed as they are, no string built per call.
    struct SeriesKey: Hashable {
        let provider: String
        let source: String
        /// The status class (2 for 2xx) or the token direction (0 input, 1 output).
        let detail: Int
    }

    /// A counter made once per key and reused.
    private func counter(_ key: SeriesKey, make: () -> Counter) -> Counter {
        calls.counters.withLock { counters in
            if let made = counters[key] { return made }
            let made = make()
            counters[key] = made
            return made
        }
    }
    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
        .seconds(10), .seconds(30), .seconds(60), .seconds(120),
    ]

    private let overheadHistogram: DurationHistogram

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        overheadHistogram = registry.makeDurationHistogram(
            descriptor: .init(namespace: "keywarden", subsystem: "gateway", metricName: "overhead", unitName: "seconds",
                              helpText: "Keywarden's own time per gateway call until the response head, without the vendors' time."),
            buckets: Self.overheadBuckets
        )
    }

    func call(provider: String, source: String, status: Int, duration: Duration) {
        let key = SeriesKey(provider: provider, source: source, detail: status / 100)
        let (counter, histogram) = calls.series.withLock { series in
            if let made = series[key] { return made }
            let statusClass = "\(status / 100)xx"
            let made = (
                registry.makeCounter(
                    descriptor: .init(namespace: "keywarden", subsystem: "gateway", metricName: "requests", unitName: "total", helpText: "Gateway calls by provider, source and status class."),
                    labels: [("provider", provider), ("source", source), ("status", statusClass)]
                ),
                registry.makeDurationHistogram(
                    descriptor: .init(namespace: "keywarden", subsystem: "gateway", metricName: "request_duration", unitName: "seconds", helpText: "Gateway call latency, until the last byte."),
                    labels: [("provider", provider), ("source", source)], buckets: Self.latencyBuckets
                )
            )
            series[key] = made
            return made
        }
        counter.increment()
        histogram.record(duration)
    }

    /// Keywarden's own time per gateway call until the response head, without the time spent waiting for vendors.
    func overhead(_ duration: Duration) {
        overheadHistogram.record(duration)
    }

    static let overheadBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
    ]

    func failover(provider: String, reason: String) {
        registry.makeCounter(
            descriptor: .init(namespace: "keywarden", subsystem: "gateway", metricName: "failovers", unitName: "total", helpText: "Keys given up on during a call, by reason."),
            labels: [("provider", provider), ("reason", reason)]
        ).increment()
    }

    func tokens(provider: String, source: String, input: Int?, output: Int?) {
        if let input, input > 0 { tokens(provider: provider, source: source, direction: 0, count: input) }
        if let output, output > 0 { tokens(provider: provider, source: source, direction: 1, count: output) }
    }

    private func tokens(provider: String, source: String, direction: Int, count: Int) {
        counter(SeriesKey(provider: provider, source: source, detail: direction)) {
            registry.makeCounter(
                descriptor: .init(namespace: "keywarden", subsystem: "gateway", metricName: "tokens", unitName: "total", helpText: "Tokens the vendors reported, by direction."),
                labels: [("provider", provider), ("source", source), ("direction", direction == 0 ? "input" : "output")]
            )
        }.increment(by: Int64(count))
    }

    /// Usage rows (and budget holds to give back) waiting to be written.
    func usageBuffered(rows: Int, releases: Int) {
        registry.makeGauge(
            descriptor: .init(namespace: "keywarden", subsystem: "usage", metricName: "rows_buffered", unitName: "", helpText: "Usage rows waiting to be written to the database.")
        ).set(Int64(rows))
        registry.makeGauge(
            descriptor: .init(namespace: "keywarden", subsystem: "budget", metricName: "releases_pending", unitName: "", helpText: "Budget holds waiting to be given back (the database refused them so far).")
        ).set(Int64(releases))
    }

    func usageDropped(_ count: Int) {
        registry.makeCounter(
            descriptor: .init(namespace: "keywarden", subsystem: "usage", metricName: "rows_dropped", unitName: "total", helpText: "Usage rows dropped because the database refused them for too long.")
        ).increment(by: Int64(count))
    }
}
