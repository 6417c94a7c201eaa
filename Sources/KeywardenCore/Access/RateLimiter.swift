import Synchronization

/// Limits noisy actions per subject (a workspace, a client address, a key): at most `limit` in any `window`,
/// counted in a sliding window of two fixed halves. Over the limit, the caller answers 429 with the returned wait;
/// nothing is queued, so a burst of Test presses never delays a real alert.
///
/// In memory and per instance: a bound on noise, not an accounting.
public final class RateLimiter: Sendable {
    /// What a limited action may do.
    public struct Rule: Sendable, Equatable {
        public let limit: Int
        public let window: Duration

        public init(limit: Int, per window: Duration) {
            self.limit = max(1, limit)
            self.window = window > .zero ? window : .seconds(1)
        }
    }

    private struct Count {
        var windowStart: ContinuousClock.Instant
        var current: Int
        var previous: Int
    }

    public let rule: Rule
    /// Subjects remembered at most; the oldest are forgotten first (a flood of new subjects cannot grow memory).
    let capacity: Int
    private let counts = Mutex<[String: Count]>([:])

    public init(_ rule: Rule, capacity: Int = 100_000) {
        self.rule = rule
        self.capacity = capacity
    }

    /// Counts one action of `subject`: `nil` when allowed, else the whole seconds to wait.
    public func acquire(_ subject: String, now: ContinuousClock.Instant = .now) -> Int? {
        counts.withLock { counts in
            var count = counts[subject] ?? Count(windowStart: now, current: 0, previous: 0)
            let elapsed = now - count.windowStart
            if elapsed >= rule.window * 2 {
                count = Count(windowStart: now, current: 0, previous: 0)
            } else if elapsed >= rule.window {
                count = Count(windowStart: count.windowStart + rule.window, current: 0, previous: count.current)
            }
            // The previous window weighs by how much of it still overlaps the sliding window.
            let into = Double((now - count.windowStart) / rule.window)
            let estimate = Double(count.previous) * max(0, 1 - into) + Double(count.current)
            guard estimate + 1 <= Double(rule.limit) else {
                let remaining = rule.window - (now - count.windowStart)
                counts[subject] = count
                return max(1, Int(remaining.components.seconds) + (remaining.components.attoseconds > 0 ? 1 : 0))
            }
            count.current += 1
            if counts.count >= capacity, counts[subject] == nil {
                // Forget the subjects whose windows ended; if that is not enough, the tenth that started longest ago
                // (never everyone: a flood of new subjects must not reset the counts of those being limited).
                counts = counts.filter { now - $0.value.windowStart < rule.window * 2 }
                if counts.count >= capacity {
                    let oldest = counts.sorted { $0.value.windowStart < $1.value.windowStart }.prefix(max(1, capacity / 10)).map(\.key)
                    for key in oldest { counts[key] = nil }
                }
            }
            counts[subject] = count
            return nil
        }
    }
}
