import Foundation

/// Numbers that come from outside Keywarden, read without ever trapping.
///
/// Swift traps on integer overflow and on converting `inf`, `nan` or a huge `Double` to `Int`. Every number a
/// request, a form, a header, an environment variable or a vendor's answer carries goes through these
/// helpers: they answer `nil` (not a number, or not in range) or clamp, and never trap. API callers wrap
/// them in ``NumberField`` to get a clear 400 naming the field.
public enum UntrustedNumber {
    /// A decimal integer: an optional sign, then ASCII digits only (no spaces, fraction, exponent or
    /// `0x`); `nil` when the text is not one or its value does not fit in `Int`.
    public static func integer<Text: StringProtocol>(_ text: Text) -> Int? {
        switch scan(text) {
        case .value(let value): return value
        case .overflow, .invalid: return nil
        }
    }

    /// A decimal integer clamped into `range`: a value too large for `Int` (30 digits) or beyond the range
    /// becomes the nearest bound; `nil` only when the text is not a decimal integer.
    public static func integer<Text: StringProtocol>(_ text: Text, clampedTo range: ClosedRange<Int>) -> Int? {
        switch scan(text) {
        case .value(let value): return min(max(value, range.lowerBound), range.upperBound)
        case .overflow(let negative): return negative ? range.lowerBound : range.upperBound
        case .invalid: return nil
        }
    }

    /// A finite decimal number (`1`, `0.25`, `1e3`); `nil` for `inf`, `nan`, hexadecimal floats and anything
    /// that is not a number.
    public static func decimal<Text: StringProtocol>(_ text: Text) -> Double? {
        let bytes = Array(text.utf8)
        // Only digits, one sign, a point and an exponent: Double("inf"), Double("nan") and Double("0x1p3") parse.
        guard !bytes.isEmpty, bytes.count <= 64,
              bytes.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D || $0 == 0x2B || $0 == 0x65 || $0 == 0x45 }),
              let value = Double(String(decoding: bytes, as: UTF8.self)), value.isFinite
        else { return nil }
        return value
    }

    /// A `Double` as an `Int`, rounded by `rule`; `nil` for `nan`, infinities and values beyond `Int`.
    public static func integer(_ value: Double, rounding rule: FloatingPointRoundingRule = .toNearestOrAwayFromZero) -> Int? {
        guard value.isFinite else { return nil }
        let rounded = value.rounded(rule)
        // 2^63 is exactly representable; every Double below it converts.
        guard rounded >= -9_223_372_036_854_775_808.0, rounded < 9_223_372_036_854_775_808.0 else { return nil }
        return Int(rounded)
    }

    /// A `Double` as an `Int` clamped into `range` (rounded by `rule`); `nil` only for `nan`.
    public static func integer(_ value: Double, clampedTo range: ClosedRange<Int>, rounding rule: FloatingPointRoundingRule = .up) -> Int? {
        guard !value.isNaN else { return nil }
        if value <= Double(range.lowerBound) { return range.lowerBound }
        if value >= Double(range.upperBound) { return range.upperBound }
        return integer(value, rounding: rule).map { min(max($0, range.lowerBound), range.upperBound) } ?? range.upperBound
    }

    /// A number of seconds from configuration (`0.5`, `30`) within `range`, as a `Duration`.
    public static func seconds<Text: StringProtocol>(_ text: Text, in range: ClosedRange<Double>) -> Duration? {
        guard let value = decimal(text), range.contains(value) else { return nil }
        return duration(seconds: value)
    }

    /// Seconds as a `Duration`, to the microsecond; `nil` for non-finite or negative values beyond about 292,000 years.
    public static func duration(seconds value: Double) -> Duration? {
        guard let microseconds = integer(value * 1_000_000) else { return nil }
        return .microseconds(microseconds)
    }

    enum Scan {
        case value(Int)
        case overflow(negative: Bool)
        case invalid
    }

    static func scan<Text: StringProtocol>(_ text: Text) -> Scan {
        var negative = false
        var value = 0
        var digits = 0
        var first = true
        for byte in text.utf8 {
            defer { first = false }
            if first, byte == 0x2D || byte == 0x2B {
                negative = byte == 0x2D
                continue
            }
            guard byte >= 0x30, byte <= 0x39 else { return .invalid }
            digits += 1
            let digit = Int(byte - 0x30)
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            if overflow1 || overflow2 {
                // Keep scanning so "12x" after many digits is still invalid, not an overflow.
                return text.utf8.dropFirst(1).allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) ? .overflow(negative: negative) : .invalid
            }
            value = next
        }
        return digits > 0 ? .value(value) : .invalid
    }
}

/// A number a client sent (a query parameter, a form field, a JSON number), checked against its range with
/// a clear error (400, naming the field) when it is not a whole number or out of range.
public enum NumberField {
    /// Parses `text` as a whole number in `range`; `nil` when the text is absent or empty.
    public static func parse(_ text: String?, field: String, in range: ClosedRange<Int>, code: String = "invalid_field") throws(KeywardenError) -> Int? {
        guard let text, !text.isEmpty else { return nil }
        guard let value = UntrustedNumber.integer(text) else {
            throw KeywardenError.invalid(field, "\(field) must be a whole number from \(range.lowerBound) to \(range.upperBound).", code: code)
        }
        return try check(value, field: field, in: range, code: code)
    }

    /// Checks a decoded number against `range`.
    @discardableResult
    public static func check(_ value: Int, field: String, in range: ClosedRange<Int>, code: String = "invalid_field") throws(KeywardenError) -> Int {
        guard range.contains(value) else {
            throw KeywardenError.invalid(field, "\(field) must be a whole number from \(range.lowerBound) to \(range.upperBound).", code: code)
        }
        return value
    }
}

extension Int {
    /// The sum, or the nearest bound of `Int` when it would overflow.
    public func saturatingAdding(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        guard overflow else { return sum }
        return other > 0 ? .max : .min
    }

    /// The product, or the nearest bound of `Int` when it would overflow.
    public func saturatingMultiplied(by other: Int) -> Int {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        guard overflow else { return product }
        return (self < 0) == (other < 0) ? .max : .min
    }
}
