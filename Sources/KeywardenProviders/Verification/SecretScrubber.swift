/// Removes secrets from what a vendor sent back (some vendors echo all or part of a key, in a body or a header).
///
/// The rule: any run of 8 or more consecutive bytes of a secret, in any spelling a client may decode back to it, is
/// removed; a secret shorter than 8 bytes but at least 4 is removed where it appears whole. Each maximal removed run
/// becomes one `[redacted]`. The text is read twice at once, in one pass:
/// - as it is, and
/// - decoded: every JSON escape (`\"`, `\/`, `\n`, `\u00e9`, a surrogate pair `\ud83d\ude00`, upper- or lower-case
///   hex) and every percent-escape (`%2F`, `%2f`) read as the character it stands for, so a secret written with
///   any mix of escaped and plain characters is found.
///
/// In both readings the scrubber looks for the secret as sent, all upper-case, all lower-case, with spaces as `+`
/// (a form's encoding), and base64-encoded (standard and URL-safe alphabets, at the three byte offsets the secret
/// can start at inside a longer encoded text: only the characters that depend on the secret alone). Base64 written
/// with JSON or percent escapes (`\/`, `%2B`) is found through the decoded reading. Not found: a secret encoded
/// twice (percent-escapes of JSON escapes), other encodings (HTML entities, hex), or cut into pieces shorter than
/// 8 bytes: scrubbing guards against a vendor's echo, not against a vendor that sets out to hide the key.
///
/// Every 8-byte window of every form is packed into a `UInt64` (8 bytes fit exactly, so a match is exact) and put in
/// a hash table once, in `init`; the scrubber slides an 8-byte window over each reading and looks it up only when
/// the window's 8 bytes all occur in some form, so it is linear in the text whatever the secrets' length. A removed
/// run that would cut a UTF-8 character is widened to the whole character, so valid UTF-8 stays valid.
///
/// ``scrub(bytes:)`` reads a whole text; ``stream()`` reads one that arrives in parts (a secret split across two
/// parts included) and holds back only the few bytes at a part's end that could still begin a match.
public struct SecretScrubber: Sendable {
    /// The secrets that count (at least 4 characters).
    let secrets: [String]
    /// Every 8-byte window of every form of every secret.
    let windows: WindowTable
    /// Forms shorter than 8 bytes, matched whole: index `length - 4` holds the forms of that length.
    let shortForms: [WindowTable?]
    /// The lengths that have short forms.
    let shortLengths: [Int]
    /// The bytes that occur in some form: a match never spans another byte.
    let alphabet: ByteSet
    /// Whether a form holds a byte outside ASCII (a match may then begin or end inside a UTF-8 character).
    let widens: Bool

    static let replacement = Array("[redacted]".utf8)

    public init(secrets: [String]) {
        let secrets = secrets.filter { $0.count >= 4 }
        self.secrets = secrets
        // A secret that holds another ("Bearer <key>" holds the key) adds only windows that hold fewer than 8 bytes of
        // that one (or do not hold a short one whole), which the rule does not ask for; they would also make common text
        // ("Bearer ", a space) look like a key, and every byte of prose cost a lookup.
        let distinct = Array(Set(secrets.map { Array($0.utf8) }))
        let covering = distinct.filter { secret in
            !distinct.contains { other in
                other.count >= 4 && other.count < secret.count && secret.withUnsafeBufferPointer { ASCIIText.firstIndex(of: other, in: $0) != nil }
            }
        }
        let forms = covering.flatMap { Self.forms(of: $0) }
        var windows = WindowTable(capacity: forms.reduce(0) { $0 + max(0, $1.count - 7) })
        var short: [Set<UInt64>] = Array(repeating: [], count: 4)
        var alphabet = ByteSet()
        var widens = false
        for form in forms {
            var window: UInt64 = 0
            for (index, byte) in form.enumerated() {
                alphabet.insert(byte)
                if byte >= 0x80 { widens = true }
                window = window << 8 | UInt64(byte)
                if index >= 7 { windows.insert(window) }
            }
            if (4..<8).contains(form.count) { short[form.count - 4].insert(window) }
        }
        self.windows = windows
        self.shortForms = short.map { $0.isEmpty ? nil : WindowTable($0) }
        self.shortLengths = short.indices.filter { !short[$0].isEmpty }.map { $0 + 4 }
        self.alphabet = alphabet
        self.widens = widens
    }

    /// Whether there is nothing to look for.
    public var isEmpty: Bool { secrets.isEmpty }

    /// The text with each secret, and any long fragment of one, replaced by `[redacted]`.
    public func scrub(_ text: String) -> String {
        guard !secrets.isEmpty else { return text }
        return scrubbedIfNeeded(text.utf8).map { String(decoding: $0, as: UTF8.self) } ?? text
    }

    /// The bytes with each secret, and any long fragment of one, replaced by `[redacted]`; they need not be
    /// valid UTF-8. Bytes without a secret come back unchanged.
    public func scrub(bytes: [UInt8]) -> [UInt8] {
        scrubbedIfNeeded(bytes) ?? bytes
    }

    /// The bytes with each secret, and any long fragment of one, replaced by `[redacted]`; `nil` when they hold none
    /// (the caller keeps what it has, uncopied).
    public func scrubbedIfNeeded<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> [UInt8]? {
        guard !secrets.isEmpty, bytes.count >= 4 else { return nil }
        var copy: [UInt8]?
        let runs = bytes.withContiguousStorageIfAvailable { matches(in: $0) } ?? {
            copy = Array(bytes)
            return copy!.withUnsafeBufferPointer { matches(in: $0) }
        }()
        guard !runs.isEmpty else { return nil }
        let all = copy ?? Array(bytes)
        return Self.replacing(widens ? widenedToCharacters(runs, in: all) : runs, in: all)
    }

    /// A scrubber for a text that arrives in parts.
    public func stream() -> Stream { Stream(self) }

    // MARK: Matching

    /// The marked runs (first and last byte, inclusive), in order, disjoint and not touching.
    func matches(in bytes: UnsafeBufferPointer<UInt8>) -> [ClosedRange<Int>] {
        var matcher = Matcher(self)
        matcher.scan(bytes, base: 0, finishing: true)
        return matcher.runs.runs
    }

    /// Runs widened so that none starts or ends inside a UTF-8 character (at most 3 bytes each way), merged again.
    func widenedToCharacters(_ runs: [ClosedRange<Int>], in bytes: [UInt8]) -> [ClosedRange<Int>] {
        var result: [ClosedRange<Int>] = []
        result.reserveCapacity(runs.count)
        for run in runs {
            let start = Self.widenedStart(run.lowerBound, floor: 0) { bytes[$0] }
            var end = run.upperBound
            while end + 1 < bytes.count, end - run.upperBound < 3, Self.isContinuation(bytes[end + 1]) { end += 1 }
            if let last = result.last, start <= last.upperBound + 1 {
                result[result.count - 1] = last.lowerBound...max(last.upperBound, end)
            } else {
                result.append(start...end)
            }
        }
        return result
    }

    static func isContinuation(_ byte: UInt8) -> Bool { byte & 0xC0 == 0x80 }

    /// A run's start moved back to the lead byte of the character it cuts (at most 3 bytes, not before `floor`).
    static func widenedStart(_ start: Int, floor: Int, byte: (Int) -> UInt8) -> Int {
        guard isContinuation(byte(start)) else { return start }
        var back = start
        while back > floor, start - back < 3, isContinuation(byte(back)) { back -= 1 }
        return byte(back) >= 0xC0 ? back : start
    }

    /// The bytes with each run replaced by `[redacted]`.
    static func replacing(_ runs: [ClosedRange<Int>], in bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var next = 0
        for run in runs {
            output.append(contentsOf: bytes[next..<run.lowerBound])
            output.append(contentsOf: replacement)
            next = run.upperBound + 1
        }
        output.append(contentsOf: bytes[next...])
        return output
    }

    /// Marked runs, added in order of their last byte; overlapping or touching runs are merged.
    struct RunList {
        var runs: [ClosedRange<Int>] = []

        mutating func add(_ start: Int, _ end: Int) {
            var start = start, end = end
            // Ends never decrease, so only the runs at the tail can overlap; each is merged at most once.
            while let last = runs.last, last.upperBound + 1 >= start {
                start = min(start, last.lowerBound)
                end = max(end, last.upperBound)
                runs.removeLast()
            }
            runs.append(start...end)
        }
    }
}

/// A set of bytes: a 256-bit map, read without branches.
struct ByteSet: Sendable {
    private var low: (UInt64, UInt64) = (0, 0)
    private var high: (UInt64, UInt64) = (0, 0)

    mutating func insert(_ byte: UInt8) {
        let bit = UInt64(1) << UInt64(byte & 63)
        switch byte >> 6 {
        case 0: low.0 |= bit
        case 1: low.1 |= bit
        case 2: high.0 |= bit
        default: high.1 |= bit
        }
    }

    @inline(__always)
    func contains(_ byte: UInt8) -> Bool {
        let pair = byte < 128 ? low : high
        let word = byte & 64 == 0 ? pair.0 : pair.1
        return word >> UInt64(byte & 63) & 1 == 1
    }
}

/// A set of `UInt64`s with a cheap exact lookup: open addressing with linear probing, at most half full.
struct WindowTable: Sendable {
    private var slots: [UInt64]
    private let shift: UInt64
    /// Zero marks an empty slot, so whether zero is in the set is kept apart.
    private var containsZero: Bool

    /// An empty table with room for `capacity` values.
    init(capacity: Int) {
        var bits = 4
        while (1 << bits) < capacity * 2 { bits += 1 }
        slots = [UInt64](repeating: 0, count: 1 << bits)
        shift = UInt64(64 - bits)
        containsZero = false
    }

    init(_ values: Set<UInt64>) {
        self.init(capacity: values.count)
        for value in values { insert(value) }
    }

    /// Adds a value (at most `capacity` of them).
    mutating func insert(_ value: UInt64) {
        guard value != 0 else { containsZero = true; return }
        let mask = slots.count - 1
        var slot = Self.slot(of: value, shift: shift)
        slots.withUnsafeMutableBufferPointer { slots in
            while slots[slot] != 0 {
                if slots[slot] == value { return }
                slot = (slot + 1) & mask
            }
            slots[slot] = value
        }
    }

    @inline(__always)
    static func slot(of value: UInt64, shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (value &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    func contains(_ value: UInt64) -> Bool {
        withLookup { $0.contains(value) }
    }

    /// Runs `body` with a view of the table that reads it without copying or bounds checks.
    func withLookup<Result>(_ body: (Lookup) -> Result) -> Result {
        slots.withUnsafeBufferPointer { body(Lookup(slots: $0, shift: shift, containsZero: containsZero)) }
    }

    /// The table, read in place (valid only inside ``withLookup(_:)``).
    struct Lookup {
        let slots: UnsafeBufferPointer<UInt64>
        let shift: UInt64
        let containsZero: Bool

        @inline(__always)
        func contains(_ value: UInt64) -> Bool {
            if value == 0 { return containsZero }
            let mask = slots.count - 1
            var slot = WindowTable.slot(of: value, shift: shift)
            while true {
                let stored = slots[slot]
                if stored == value { return true }
                if stored == 0 { return false }
                slot = (slot + 1) & mask
            }
        }
    }
}

// MARK: The forms a secret is looked for in

extension SecretScrubber {
    /// The secret as sent, in upper and lower case, with spaces as `+`, and base64-encoded; without duplicates.
    /// (JSON and percent escapes are not forms: the decoded reading undoes them.)
    static func forms(of secret: [UInt8]) -> [[UInt8]] {
        var forms: [[UInt8]] = [secret]
        func add(_ form: [UInt8]) {
            if !forms.contains(form) { forms.append(form) }
        }
        add(secret.map { (0x61...0x7A).contains($0) ? $0 - 0x20 : $0 })
        add(secret.map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 })
        add(secret.map { $0 == 0x20 ? UInt8(ascii: "+") : $0 })
        // Base64 forms shorter than 8 characters (of a secret of 4 to 6 bytes) are left out: a few characters of base64 are
        // common in any large base64 text (an image, audio), and would be cut out of it.
        for offset in 0..<3 {
            for alphabet in [base64Standard, base64URLSafe] {
                let form = base64Interior(secret, offset: offset, alphabet: alphabet)
                if form.count >= 8 { add(form) }
            }
        }
        return forms
    }

    static let base64Standard = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let base64URLSafe = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// The characters of base64(`offset` bytes ‖ secret ‖ more bytes) that depend on the secret alone: a
    /// character encodes input bits 6k..<6k+6, which must all lie inside the secret's bits.
    static func base64Interior(_ secret: [UInt8], offset: Int, alphabet: [UInt8]) -> [UInt8] {
        let first = (offset * 8 + 5) / 6, end = (offset + secret.count) * 8 / 6
        guard end > first else { return [] }
        // Encode offset zero bytes ‖ secret ‖ zero padding whole, then keep the characters in first..<end.
        let padded = [UInt8](repeating: 0, count: offset) + secret + [0, 0]
        var output: [UInt8] = []
        output.reserveCapacity(end - first)
        var group = (first / 4) * 3
        var character = (first / 4) * 4
        while character < end {
            let bits = UInt32(padded[group]) << 16 | UInt32(padded[group + 1]) << 8 | UInt32(padded[group + 2])
            for shift in [18, 12, 6, 0] {
                if character >= first, character < end { output.append(alphabet[Int(bits >> UInt32(shift) & 0x3F)]) }
                character += 1
            }
            group += 3
        }
        return output
    }
}
