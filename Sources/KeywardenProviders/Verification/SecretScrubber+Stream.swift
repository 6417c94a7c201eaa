extension SecretScrubber {
    /// Scrubs a text that arrives in parts, with the same result as ``SecretScrubber/scrub(bytes:)`` on the whole.
    ///
    /// A part is passed on at once except for its last few bytes when they could still begin a match (at most 7 bytes
    /// of a form, or an escape cut in two): a server-sent event, which ends in a blank line, is never held back.
    public struct Stream: Sendable {
        /// What to pass on for a part.
        public enum Passed: Equatable, Sendable {
            /// The part's first `count` bytes, unchanged (the rest is held back).
            case prefix(Int)
            /// These bytes instead.
            case bytes([UInt8])
        }

        private var matcher: Matcher
        /// Bytes read but not passed on yet, from offset `base`.
        private var held: [UInt8] = []
        private var base = 0
        /// Whether `[redacted]` has been written for the first run, whose bytes are still being left out.
        private var insideRun = false
        /// Where the last run left out ended (a run right after it adds no second `[redacted]`).
        private var lastRunEnd = -2

        init(_ scrubber: SecretScrubber) {
            matcher = Matcher(scrubber)
        }

        /// Reads the next part; returns what can be passed on now.
        public mutating func feed<Bytes: Collection<UInt8>>(_ part: Bytes) -> Passed {
            if matcher.scrubber.isEmpty { return .prefix(part.count) }
            if held.isEmpty, matcher.runs.runs.isEmpty, !insideRun,
               let clean = part.withContiguousStorageIfAvailable({ passClean($0) }) {
                if let clean { return .prefix(clean) }
            }
            held.append(contentsOf: part)
            return .bytes(readHeld(finishing: false))
        }

        /// The rest, once the text has ended.
        public mutating func finish() -> [UInt8] {
            if matcher.scrubber.isEmpty { return [] }
            return readHeld(finishing: true)
        }

        /// Reads a part in place when nothing is held: the number of its first bytes that pass unchanged, when it held
        /// no match (its tail is then held); `nil` when it did.
        private mutating func passClean(_ part: UnsafeBufferPointer<UInt8>) -> Int? {
            let before = matcher
            matcher.scan(part, base: base, finishing: false)
            guard matcher.runs.runs.isEmpty else {
                matcher = before
                return nil
            }
            let passed = max(0, matcher.settled - base)
            held = Array(part[passed...])
            base += passed
            return passed
        }

        /// Reads what is held and returns what is final, runs replaced.
        private mutating func readHeld(finishing: Bool) -> [UInt8] {
            held.withUnsafeBufferPointer { matcher.scan($0, base: base, finishing: finishing) }
            let end = base + held.count
            let limit = finishing ? end : min(matcher.settled, end)
            let widens = matcher.scrubber.widens
            var output: [UInt8] = []
            var cursor = base
            func byte(_ offset: Int) -> UInt8 { held[offset - base] }
            while cursor < limit {
                guard let run = matcher.runs.runs.first else {
                    output.append(contentsOf: held[(cursor - base)..<(limit - base)])
                    cursor = limit
                    break
                }
                if insideRun {
                    // Left out up to the run's end, and (when forms are not ASCII) the rest of a character it cuts.
                    guard run.upperBound < limit else { cursor = limit; break }
                    var last = run.upperBound
                    if widens {
                        guard finishing || last + 3 < matcher.position else { cursor = last + 1; break }
                        while last + 1 < end, last - run.upperBound < 3, SecretScrubber.isContinuation(byte(last + 1)) { last += 1 }
                    }
                    matcher.runs.runs.removeFirst()
                    insideRun = false
                    lastRunEnd = last
                    cursor = last + 1
                    continue
                }
                var start = max(run.lowerBound, cursor)
                if widens { start = SecretScrubber.widenedStart(start, floor: cursor, byte: byte) }
                guard start < limit else {
                    output.append(contentsOf: held[(cursor - base)..<(limit - base)])
                    cursor = limit
                    break
                }
                output.append(contentsOf: held[(cursor - base)..<(start - base)])
                if start != lastRunEnd + 1 { output.append(contentsOf: SecretScrubber.replacement) }
                insideRun = true
                cursor = start
            }
            held.removeFirst(min(held.count, cursor - base))
            base = cursor
            return output
        }
    }
}
