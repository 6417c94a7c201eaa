extension SecretScrubber {
    /// Reads a text three ways in one pass — as it is, with its JSON escapes undone, and with its percent-escapes undone —
    /// and marks the runs where a form of a secret appears in any of them.
    ///
    /// Each decoded reading undoes one kind of escape only, as a client does (a JSON parser leaves `%41` alone, a URL
    /// decoder leaves `\u0041`), so a key hidden by mixing the kinds is still found by the reading that undoes the kind
    /// its client will. Offsets are absolute (from the first byte of the whole text), so a text can be read in parts:
    /// ``scan(_:base:finishing:)`` reads as far as it can and stops before an escape whose end has not arrived yet.
    struct Matcher {
        let scrubber: SecretScrubber
        private let alphabet: ByteSet
        private let hasShortForms: Bool
        /// The runs marked so far (absolute offsets, inclusive).
        var runs = RunList()
        /// The offset of the next byte to read.
        private(set) var position = 0
        private var plain = Reading()
        private var json = DecodedReading()
        private var percent = DecodedReading()

        /// One reading's last 8 bytes, and how many of them (up to 8) occur in a form.
        struct Reading {
            var window: UInt64 = 0
            var length = 0
        }

        /// A decoded reading: its window, and where each of its last 8 bytes began in the text.
        struct DecodedReading {
            var reading = Reading()
            /// The source offsets where the last 8 decoded bytes began (a ring, indexed by `count`).
            var starts: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
            var count = 0
            /// Bytes since the last one an escape produced: from 8 on, this reading is the plain one, and is not kept
            /// (it is set from the plain one when the next escape comes).
            var sinceEscape = 8
            /// The offset after the escape this reading last undid (source bytes before it are read already).
            var resumeAt = 0

            var isPlain: Bool { sinceEscape >= 8 }

            func start(ofDecoded index: Int) -> Int {
                switch index & 7 {
                case 0: return starts.0
                case 1: return starts.1
                case 2: return starts.2
                case 3: return starts.3
                case 4: return starts.4
                case 5: return starts.5
                case 6: return starts.6
                default: return starts.7
                }
            }

            mutating func setStart(_ offset: Int, ofDecoded index: Int) {
                switch index & 7 {
                case 0: starts.0 = offset
                case 1: starts.1 = offset
                case 2: starts.2 = offset
                case 3: starts.3 = offset
                case 4: starts.4 = offset
                case 5: starts.5 = offset
                case 6: starts.6 = offset
                default: starts.7 = offset
                }
            }

            /// Takes the plain reading's state, its last 8 bytes one source byte each, ending before `position`.
            mutating func become(_ plain: Reading, at position: Int) {
                reading = plain
                count = 8
                starts = (position - 8, position - 7, position - 6, position - 5, position - 4, position - 3, position - 2, position - 1)
            }

            /// The first offset a match this reading finds later could begin at.
            func earliestStart(_ position: Int) -> Int {
                isPlain || reading.length == 0 ? position : start(ofDecoded: count - min(reading.length, 7))
            }
        }

        init(_ scrubber: SecretScrubber) {
            self.scrubber = scrubber
            alphabet = scrubber.alphabet
            hasShortForms = !scrubber.shortLengths.isEmpty
        }

        /// The first offset a match found later could begin at: bytes before it are final.
        var settled: Int {
            let plainStart = position - min(plain.length, 7)
            let earliest = min(plainStart, json.earliestStart(position), percent.earliestStart(position))
            return max(0, earliest - (scrubber.widens ? 3 : 0))
        }

        /// Reads `bytes` (the text from offset `base` on) from ``position`` to their end, or to an escape cut by their
        /// end unless `finishing` (then it is read as plain bytes).
        mutating func scan(_ bytes: UnsafeBufferPointer<UInt8>, base: Int, finishing: Bool) {
            scrubber.windows.withLookup { windows in scan(bytes, base: base, finishing: finishing, windows: windows) }
        }

        private mutating func scan(_ bytes: UnsafeBufferPointer<UInt8>, base: Int, finishing: Bool, windows: WindowTable.Lookup) {
            let end = base + bytes.count
            while position < end {
                if json.isPlain, percent.isPlain, json.resumeAt <= position, percent.resumeAt <= position {
                    // The common case, plain text: one reading, kept in registers, up to the next `\` or `%`.
                    var window = plain.window, length = plain.length, index = position - base
                    while index < bytes.count {
                        let byte = bytes[index]
                        if byte == 0x5C || byte == 0x25 { break }
                        window = window << 8 | UInt64(byte)
                        length = alphabet.contains(byte) ? min(length + 1, 8) : 0
                        if length == 8, windows.contains(window) { runs.add(base + index - 7, base + index) }
                        if hasShortForms, length >= 4 { noteShortForms(window, length: length, end: base + index) { base + index - $0 + 1 } }
                        index += 1
                    }
                    plain = Reading(window: window, length: length)
                    position = base + index
                    guard index < bytes.count else { return }
                }
                // Near an escape. A decoded reading that is the plain one stays untouched (it is set from the plain one
                // when an escape of its kind comes); one that differs is fed every byte until it is the plain one again.
                let index = position - base
                let byte = bytes[index]
                var jsonEscape = Escape.plain, percentEscape = Escape.plain
                if byte == 0x5C, json.resumeAt <= position {
                    jsonEscape = Self.jsonEscape(bytes, at: index, finishing: finishing)
                }
                if byte == 0x25, percent.resumeAt <= position {
                    percentEscape = Self.percentEscape(bytes, at: index, finishing: finishing)
                }
                if case .incomplete = jsonEscape { return }
                if case .incomplete = percentEscape { return }
                let jsonDecodes = jsonEscape.isDecoded, percentDecodes = percentEscape.isDecoded
                if jsonDecodes, json.isPlain { json.become(plain, at: position) }
                if percentDecodes, percent.isPlain { percent.become(plain, at: position) }
                readPlain(byte, at: position, windows)
                let context = Context(alphabet: alphabet, scrubber: scrubber, hasShortForms: hasShortForms, windows: windows)
                if jsonDecodes || !json.isPlain || json.resumeAt > position {
                    Self.feed(byte, escape: jsonEscape, at: position, into: &json, runs: &runs, context)
                }
                if percentDecodes || !percent.isPlain || percent.resumeAt > position {
                    Self.feed(byte, escape: percentEscape, at: position, into: &percent, runs: &runs, context)
                }
                position += 1
            }
        }

        /// What feeding a reading needs besides the reading.
        struct Context {
            let alphabet: ByteSet
            let scrubber: SecretScrubber
            let hasShortForms: Bool
            let windows: WindowTable.Lookup
        }

        /// Feeds a decoded reading the byte at `position`, or what the escape that begins there stands for; a byte
        /// inside an escape the reading already undid is skipped.
        @inline(__always)
        private static func feed(_ byte: UInt8, escape: Escape, at position: Int, into reading: inout DecodedReading, runs: inout RunList,
                                 _ context: Context) {
            guard reading.resumeAt <= position else { return }
            if case .decoded(let length, var units, let count) = escape {
                let last = position + length - 1
                for _ in 0..<count {
                    reading.sinceEscape = 0
                    readDecoded(UInt8(truncatingIfNeeded: units >> 24), start: position, end: last, into: &reading, runs: &runs, context)
                    units <<= 8
                }
                reading.resumeAt = position + length
            } else {
                reading.sinceEscape = min(reading.sinceEscape + 1, 8)
                readDecoded(byte, start: position, end: position, into: &reading, runs: &runs, context)
            }
        }

        @inline(__always)
        private mutating func readPlain(_ byte: UInt8, at offset: Int, _ windows: WindowTable.Lookup) {
            plain.window = plain.window << 8 | UInt64(byte)
            plain.length = alphabet.contains(byte) ? min(plain.length + 1, 8) : 0
            if plain.length == 8, windows.contains(plain.window) { runs.add(offset - 7, offset) }
            guard hasShortForms, plain.length >= 4 else { return }
            noteShortForms(plain.window, length: plain.length, end: offset) { offset - $0 + 1 }
        }

        /// Marks a short form that ends the window (of `length` bytes that occur in forms), ending at `end`; `start`
        /// gives where a form of a given length began.
        private mutating func noteShortForms(_ window: UInt64, length available: Int, end: Int, start: (Int) -> Int) {
            Self.noteShortForms(window, length: available, end: end, runs: &runs, scrubber: scrubber, start: start)
        }

        private static func noteShortForms(_ window: UInt64, length available: Int, end: Int, runs: inout RunList, scrubber: SecretScrubber,
                                           start: (Int) -> Int) {
            for length in scrubber.shortLengths where available >= length {
                if scrubber.shortForms[length - 4]?.contains(window & Self.mask(length)) == true { runs.add(start(length), end) }
            }
        }

        @inline(__always)
        private static func readDecoded(_ byte: UInt8, start: Int, end: Int, into decoded: inout DecodedReading, runs: inout RunList,
                                        _ context: Context) {
            decoded.setStart(start, ofDecoded: decoded.count)
            decoded.count &+= 1
            decoded.reading.window = decoded.reading.window << 8 | UInt64(byte)
            decoded.reading.length = context.alphabet.contains(byte) ? min(decoded.reading.length + 1, 8) : 0
            // Without an escape among the last 8 bytes, the plain reading has looked this window up already.
            guard decoded.reading.length >= 4, !decoded.isPlain else { return }
            if decoded.reading.length == 8, context.windows.contains(decoded.reading.window) {
                runs.add(decoded.start(ofDecoded: decoded.count - 8), end)
            }
            guard context.hasShortForms else { return }
            let ring = decoded
            noteShortForms(decoded.reading.window, length: decoded.reading.length, end: end, runs: &runs, scrubber: context.scrubber) {
                ring.start(ofDecoded: ring.count - $0)
            }
        }

        @inline(__always)
        static func mask(_ length: Int) -> UInt64 { (1 << UInt64(length * 8)) - 1 }

        // MARK: Escapes

        enum Escape {
            /// Not an escape: the byte is itself.
            case plain
            /// The escape's end has not arrived.
            case incomplete
            /// `length` source bytes stand for `count` bytes (at most 4), packed from the top of `units`.
            case decoded(length: Int, units: UInt32, count: Int)

            var isDecoded: Bool {
                if case .decoded = self { return true }
                return false
            }
        }

        /// What the `%` at `index` stands for in a URL.
        static func percentEscape(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int, finishing: Bool) -> Escape {
            guard bytes.count - index >= 3 else { return finishing ? .plain : .incomplete }
            guard let high = JSONScan.hexValue(bytes[index + 1]), let low = JSONScan.hexValue(bytes[index + 2]) else { return .plain }
            return .decoded(length: 3, units: UInt32(high << 4 | low) << 24, count: 1)
        }

        /// What the `\` at `index` stands for in a JSON string.
        static func jsonEscape(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int, finishing: Bool) -> Escape {
            let available = bytes.count - index
            guard available >= 2 else { return finishing ? .plain : .incomplete }
            let simple: UInt8
            switch bytes[index + 1] {
            case 0x22: simple = 0x22
            case 0x5C: simple = 0x5C
            case 0x2F: simple = 0x2F
            case UInt8(ascii: "b"): simple = 0x08
            case UInt8(ascii: "f"): simple = 0x0C
            case UInt8(ascii: "n"): simple = 0x0A
            case UInt8(ascii: "r"): simple = 0x0D
            case UInt8(ascii: "t"): simple = 0x09
            case UInt8(ascii: "u"):
                guard available >= 6 else { return finishing ? .plain : .incomplete }
                guard let unit = JSONScan.fourHexDigits(bytes, at: index + 2, end: bytes.count) else { return .plain }
                var scalar = unit
                var length = 6
                if (0xD800..<0xDC00).contains(unit) {
                    guard available >= 12 else { return finishing ? .plain : .incomplete }
                    guard bytes[index + 6] == 0x5C, bytes[index + 7] == UInt8(ascii: "u"), let low = JSONScan.fourHexDigits(bytes, at: index + 8, end: bytes.count),
                          (0xDC00..<0xE000).contains(low) else { return .plain }
                    scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    length = 12
                } else if (0xDC00..<0xE000).contains(unit) {
                    return .plain
                }
                return utf8(scalar, length: length)
            default:
                return .plain
            }
            return .decoded(length: 2, units: UInt32(simple) << 24, count: 1)
        }

        /// A scalar's UTF-8 bytes, packed from the top.
        static func utf8(_ scalar: UInt32, length: Int) -> Escape {
            switch scalar {
            case 0..<0x80:
                return .decoded(length: length, units: scalar << 24, count: 1)
            case 0x80..<0x800:
                return .decoded(length: length, units: (0xC0 | scalar >> 6) << 24 | (0x80 | scalar & 0x3F) << 16, count: 2)
            case 0x800..<0x10000:
                return .decoded(length: length, units: (0xE0 | scalar >> 12) << 24 | (0x80 | scalar >> 6 & 0x3F) << 16
                    | (0x80 | scalar & 0x3F) << 8, count: 3)
            default:
                return .decoded(length: length, units: (0xF0 | scalar >> 18) << 24 | (0x80 | scalar >> 12 & 0x3F) << 16
                    | (0x80 | scalar >> 6 & 0x3F) << 8 | (0x80 | scalar & 0x3F), count: 4)
            }
        }
    }
}
