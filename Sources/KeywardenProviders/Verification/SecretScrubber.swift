/// Removes secrets from what a vendor sent back (some vendors echo all or part of a key in their errors).
///
/// The rule: any run of 8 or more consecutive bytes of a secret, in any of the forms a vendor may echo it
/// in, is removed; a secret (or a form of it) shorter than 8 bytes but at least 4 is removed where it
/// appears whole. Each maximal removed run becomes one `[redacted]`. The forms are:
/// - the secret as sent (its UTF-8 bytes);
/// - JSON-escaped as encoders write it inside a string: `\"`, `\\`, `/` or `\/`, `\b \f \n \r \t` or
///   `\u00XX` for control characters, non-ASCII as itself or as `\uXXXX` (surrogate pairs above the BMP),
///   Go's HTML-safe `\u003c \u003e \u0026`; hex digits lower- or upper-case;
/// - URL-encoded: every byte outside the unreserved characters as `%XX` (upper- or lower-case hex), space
///   as `%20` or `+`; also with `/`, and with JavaScript's `!'()*`, left as they are;
/// - base64, standard and URL-safe alphabets, at the three byte offsets the secret can start at inside a
///   longer encoded text (only the characters that depend on the secret alone); the standard alphabet
///   also with `/` JSON-escaped, and with `+` `/` percent-encoded.
///
/// Every 8-byte window of every form is packed into a `UInt64` (8 bytes fit exactly, so a match is exact)
/// and put in a hash table once, in `init`; `scrub` slides an 8-byte window over the text and looks each
/// one up, so it is linear in the text whatever the secrets' length. A removed run that would cut a UTF-8
/// character is widened to the whole character, so valid UTF-8 stays valid.
public struct SecretScrubber: Sendable {
    /// The secrets that count (at least 4 characters).
    let secrets: [String]
    /// Every 8-byte window of every form of every secret.
    let windows: WindowTable
    /// Forms shorter than 8 bytes, matched whole: index `length - 4` holds the forms of that length.
    let shortForms: [WindowTable?]

    static let replacement = Array("[redacted]".utf8)

    public init(secrets: [String]) {
        self.secrets = secrets.filter { $0.count >= 4 }
        var windows = Set<UInt64>()
        var short: [Set<UInt64>] = Array(repeating: [], count: 4)
        for secret in self.secrets {
            for form in Self.forms(of: Array(secret.utf8)) {
                if form.count >= 8 {
                    var window: UInt64 = 0
                    for (index, byte) in form.enumerated() {
                        window = window << 8 | UInt64(byte)
                        if index >= 7 { windows.insert(window) }
                    }
                } else if form.count >= 4 {
                    short[form.count - 4].insert(form.reduce(0) { $0 << 8 | UInt64($1) })
                }
            }
        }
        self.windows = WindowTable(windows)
        self.shortForms = short.map { $0.isEmpty ? nil : WindowTable($0) }
    }

    /// The text with each secret, and any long fragment of one, replaced by `[redacted]`.
    public func scrub(_ text: String) -> String {
        guard !secrets.isEmpty else { return text }
        let bytes = Array(text.utf8)
        let scrubbed = scrub(bytes: bytes)
        return scrubbed.count == bytes.count && scrubbed == bytes ? text : String(decoding: scrubbed, as: UTF8.self)
    }

    /// The bytes with each secret, and any long fragment of one, replaced by `[redacted]`; they need not be
    /// valid UTF-8. Bytes without a secret come back unchanged.
    public func scrub(bytes: [UInt8]) -> [UInt8] {
        guard !secrets.isEmpty, bytes.count >= 4 else { return bytes }
        let runs = matches(in: bytes)
        guard !runs.isEmpty else { return bytes }
        return Self.replacing(widenedToCharacters(runs, in: bytes), in: bytes)
    }

    // MARK: Matching

    /// The marked runs (first and last byte, inclusive), in order, disjoint and not touching.
    func matches(in bytes: [UInt8]) -> [ClosedRange<Int>] {
        var runs = RunList()
        let shortLengths = shortForms.indices.filter { shortForms[$0] != nil }.map { $0 + 4 }
        bytes.withUnsafeBufferPointer { text in
            windows.withLookup { containsWindow in
                var window: UInt64 = 0
                for index in 0..<text.count {
                    window = window << 8 | UInt64(text[index])
                    if index >= 7, containsWindow(window) { runs.add(index - 7, index) }
                    for length in shortLengths where index >= length - 1 {
                        let mask: UInt64 = (1 << UInt64(length * 8)) - 1
                        if shortForms[length - 4]!.contains(window & mask) { runs.add(index - length + 1, index) }
                    }
                }
            }
        }
        return runs.runs
    }

    /// Runs widened so that none starts or ends inside a UTF-8 character (at most 3 bytes each way), merged again.
    func widenedToCharacters(_ runs: [ClosedRange<Int>], in bytes: [UInt8]) -> [ClosedRange<Int>] {
        func isContinuation(_ byte: UInt8) -> Bool { byte & 0xC0 == 0x80 }
        var result: [ClosedRange<Int>] = []
        result.reserveCapacity(runs.count)
        for run in runs {
            var start = run.lowerBound, end = run.upperBound
            if isContinuation(bytes[start]) {
                var back = start
                while back > 0, start - back < 3, isContinuation(bytes[back]) { back -= 1 }
                if bytes[back] >= 0xC0 { start = back }  // the lead byte of the character cut
            }
            while end + 1 < bytes.count, end - run.upperBound < 3, isContinuation(bytes[end + 1]) { end += 1 }
            if let last = result.last, start <= last.upperBound + 1 {
                result[result.count - 1] = last.lowerBound...max(last.upperBound, end)
            } else {
                result.append(start...end)
            }
        }
        return result
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
            var start = start
            // `end` never decreases, so only the runs at the tail can overlap; each is merged at most once.
            while let last = runs.last, last.upperBound + 1 >= start {
                start = min(start, last.lowerBound)
                runs.removeLast()
            }
            runs.append(start...end)
        }
    }
}

/// A set of `UInt64`s with a cheap exact lookup: open addressing with linear probing, at most half full.
struct WindowTable: Sendable {
    private let slots: [UInt64]
    private let shift: UInt64
    /// Zero marks an empty slot, so whether zero is in the set is kept apart.
    private let containsZero: Bool

    init(_ values: Set<UInt64>) {
        var bits = 4
        while (1 << bits) < values.count * 2 { bits += 1 }
        var slots = [UInt64](repeating: 0, count: 1 << bits)
        let shift = UInt64(64 - bits)
        let mask = slots.count - 1
        for value in values where value != 0 {
            var slot = Self.slot(of: value, shift: shift)
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = value
        }
        self.slots = slots
        self.shift = shift
        self.containsZero = values.contains(0)
    }

    @inline(__always)
    static func slot(of value: UInt64, shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (value &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    func contains(_ value: UInt64) -> Bool {
        withLookup { $0(value) }
    }

    /// Runs `body` with a lookup function that reads the table without copying or bounds checks.
    func withLookup<Result>(_ body: ((UInt64) -> Bool) -> Result) -> Result {
        slots.withUnsafeBufferPointer { slots in
            let mask = slots.count - 1
            return body { value in
                if value == 0 { return containsZero }
                var slot = Self.slot(of: value, shift: shift)
                while true {
                    let stored = slots[slot]
                    if stored == value { return true }
                    if stored == 0 { return false }
                    slot = (slot + 1) & mask
                }
            }
        }
    }
}

// MARK: The forms a vendor may echo a secret in

extension SecretScrubber {
    /// The secret as sent and in each encoding a vendor may echo it in, without duplicates.
    static func forms(of secret: [UInt8]) -> [[UInt8]] {
        var forms: [[UInt8]] = [secret]
        var seen: Set<[UInt8]> = [secret]
        func add(_ form: [UInt8]) {
            if seen.insert(form).inserted { forms.append(form) }
        }
        // A secret of unreserved ASCII characters only is the same in JSON and in a URL.
        if secret.contains(where: { !isUnreserved($0) }) {
            for slash in [false, true] {
                for upper in [false, true] {
                    for asciiOnly in [false, true] {
                        for htmlSafe in [false, true] {
                            add(jsonEscaped(secret, escapingSlash: slash, upperHex: upper, asciiOnly: asciiOnly, htmlSafe: htmlSafe))
                        }
                    }
                }
            }
            for upper in [false, true] {
                for plusForSpace in [false, true] {
                    for alsoSafe in [[], Array("/".utf8), Array("!'()*".utf8)] {
                        add(percentEncoded(secret, upperHex: upper, plusForSpace: plusForSpace, alsoSafe: alsoSafe))
                    }
                }
            }
        }
        for offset in 0..<3 {
            let standard = base64Interior(secret, offset: offset, alphabet: base64Standard)
            add(standard)
            add(base64Interior(secret, offset: offset, alphabet: base64URLSafe))
            if standard.contains(UInt8(ascii: "/")) {
                add(jsonEscaped(standard, escapingSlash: true, upperHex: false, asciiOnly: false, htmlSafe: false))
            }
            if standard.contains(UInt8(ascii: "/")) || standard.contains(UInt8(ascii: "+")) {
                for upper in [false, true] { add(percentEncoded(standard, upperHex: upper, plusForSpace: false, alsoSafe: [])) }
            }
        }
        return forms
    }

    /// ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986).
    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    static func hexDigits(_ value: UInt32, count: Int, upper: Bool) -> [UInt8] {
        let digits = Array((upper ? "0123456789ABCDEF" : "0123456789abcdef").utf8)
        return (0..<count).reversed().map { digits[Int(value >> (UInt32($0) * 4) & 0xF)] }
    }

    /// The secret inside a JSON string, as an encoder writes it.
    static func jsonEscaped(_ bytes: [UInt8], escapingSlash: Bool, upperHex: Bool, asciiOnly: Bool, htmlSafe: Bool) -> [UInt8] {
        func unicodeEscape(_ unit: UInt32) -> [UInt8] { Array(#"\u"#.utf8) + hexDigits(unit, count: 4, upper: upperHex) }
        var output: [UInt8] = []
        let scalars = String(decoding: bytes, as: UTF8.self).unicodeScalars
        for scalar in scalars {
            switch scalar.value {
            case 0x22: output += Array(#"\""#.utf8)
            case 0x5C: output += Array(#"\\"#.utf8)
            case 0x2F where escapingSlash: output += Array(#"\/"#.utf8)
            case 0x08: output += Array(#"\b"#.utf8)
            case 0x0C: output += Array(#"\f"#.utf8)
            case 0x0A: output += Array(#"\n"#.utf8)
            case 0x0D: output += Array(#"\r"#.utf8)
            case 0x09: output += Array(#"\t"#.utf8)
            case 0..<0x20: output += unicodeEscape(scalar.value)
            case 0x3C where htmlSafe, 0x3E where htmlSafe, 0x26 where htmlSafe, 0x2028 where htmlSafe, 0x2029 where htmlSafe:
                output += unicodeEscape(scalar.value)
            case 0x80... where asciiOnly:
                for unit in String(scalar).utf16 { output += unicodeEscape(UInt32(unit)) }
            default: output += Array(String(scalar).utf8)
            }
        }
        return output
    }

    /// The secret percent-encoded: every byte outside the unreserved characters (and `alsoSafe`) as `%XX`.
    static func percentEncoded(_ bytes: [UInt8], upperHex: Bool, plusForSpace: Bool, alsoSafe: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        for byte in bytes {
            if isUnreserved(byte) || alsoSafe.contains(byte) {
                output.append(byte)
            } else if plusForSpace, byte == UInt8(ascii: " ") {
                output.append(UInt8(ascii: "+"))
            } else {
                output.append(UInt8(ascii: "%"))
                output += hexDigits(UInt32(byte), count: 2, upper: upperHex)
            }
        }
        return output
    }

    static let base64Standard = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let base64URLSafe = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// The characters of base64(`offset` bytes ‖ secret ‖ more bytes) that depend on the secret alone: a
    /// character encodes input bits 6k..<6k+6, which must all lie inside the secret's bits.
    static func base64Interior(_ secret: [UInt8], offset: Int, alphabet: [UInt8]) -> [UInt8] {
        let firstBit = offset * 8, endBit = firstBit + secret.count * 8
        var output: [UInt8] = []
        var character = (firstBit + 5) / 6
        while character * 6 + 6 <= endBit {
            var value = 0
            for bit in character * 6..<character * 6 + 6 {
                let index = bit - firstBit
                value = value << 1 | Int(secret[index / 8] >> (7 - UInt8(index % 8)) & 1)
            }
            output.append(alphabet[value])
            character += 1
        }
        return output
    }
}
