import Foundation
import PropertyBased
import Testing
@testable import KeywardenCore

/// The checked helpers every number from outside goes through: they never trap, and they agree with exact arithmetic.
@Suite("Untrusted numbers")
struct UntrustedNumberTests {
    /// Characters of numbers and of the things people and vendors send instead.
    static let alphabet = Array("0123456789-+.eExXabcfinNA ,:")

    @Test("every Int reads back as itself; any digit string agrees with Int's own parser, or clamps to the right bound")
    func integers() async {
        await propertyCheck(input: Gen.int()) { value in
            #expect(UntrustedNumber.integer(String(value)) == value)
            #expect(UntrustedNumber.integer(String(value), clampedTo: -1000...1000) == min(max(value, -1000), 1000))
        }
        let signs = ["", "-", "+"]
        await propertyCheck(count: 500, input: Gen.int(in: 0...2), Gen.int(in: 0...9).array(of: 1...40)) { signIndex, digits in
            let sign = signs[signIndex]
            let text = sign + digits.map(String.init).joined()
            let exact = Int(text)
            #expect(UntrustedNumber.integer(text) == exact, "\(text)")
            let clamped = UntrustedNumber.integer(text, clampedTo: 0...3600)
            if let exact {
                #expect(clamped == min(max(exact, 0), 3600))
            } else {
                #expect(clamped == (sign == "-" ? 0 : 3600), "\(text)")
            }
        }
    }

    @Test("anything that is not a plain decimal integer is refused, never trapped on")
    func garbage() async {
        let alphabet = Self.alphabet
        await propertyCheck(count: 2000, input: Gen.int(in: 0...(alphabet.count - 1)).array(of: 0...40)) { indices in
            let text = String(indices.map { alphabet[$0] })
            let value = UntrustedNumber.integer(text)
            if let value { #expect(String(value) == text || "+" + String(value) == text || text.hasPrefix("-0") || text.hasPrefix("0") || text.hasPrefix("+0")) }
            _ = UntrustedNumber.decimal(text)
            _ = RetryAfter.seconds(text, maximum: 3600).map { #expect((0...3600).contains($0)) }
            do {
                if let parsed = try NumberField.parse(text, field: "page", in: 1...100_000) { #expect((1...100_000).contains(parsed)) }
            } catch let error as KeywardenError {
                #expect(error.field == "page" && error.kind == .invalid)
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
        for text in ["inf", "-inf", "nan", "NaN", "1e999", "-1e999", "0x10", "1.5", " 7", "7 ", "", "-", "+", "123456789012345678901234567890"] {
            #expect(UntrustedNumber.integer(text) == nil, "\(text)")
        }
        #expect(UntrustedNumber.decimal("inf") == nil && UntrustedNumber.decimal("nan") == nil && UntrustedNumber.decimal("1e999") == nil)
        #expect(UntrustedNumber.decimal("0x1p3") == nil && UntrustedNumber.decimal("0.25") == 0.25)
    }

    @Test("doubles become Ints only when they fit; clamping never traps, even on nan and the infinities")
    func doubles() async {
        let specials: [Double] = [.nan, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 9.223372036854775807e18,
                                  -9.223372036854775808e18, 1e300, -0.0, .leastNonzeroMagnitude]
        func check(_ value: Double) {
            if let exact = UntrustedNumber.integer(value) {
                #expect(Double(exact) == value.rounded(.toNearestOrAwayFromZero))
            } else {
                #expect(!value.isFinite || abs(value) >= 9.2e18)
            }
            let clamped = UntrustedNumber.integer(value, clampedTo: 0...3600)
            #expect(value.isNaN ? clamped == nil : (0...3600).contains(clamped ?? -1))
            _ = UntrustedNumber.duration(seconds: value)
        }
        for value in specials { check(value) }
        await propertyCheck(count: 1000, input: Gen.double(in: -1e30...1e30)) { check($0) }
        await propertyCheck(count: 1000, input: Gen.double(in: -1e4...1e4)) { check($0) }
    }

    @Test("saturating arithmetic equals exact arithmetic clamped to Int's bounds")
    func saturating() async {
        func check(_ a: Int, _ b: Int) {
            let sum = Int128(a) + Int128(b)
            #expect(Int128(a.saturatingAdding(b)) == min(max(sum, Int128(Int.min)), Int128(Int.max)))
            let product = Int128(a) * Int128(b)
            #expect(Int128(a.saturatingMultiplied(by: b)) == min(max(product, Int128(Int.min)), Int128(Int.max)))
        }
        let edges = [Int.max, Int.min, Int.max - 1, Int.min + 1, 0, 1, -1, 2, -2]
        for a in edges { for b in edges { check(a, b) } }
        await propertyCheck(count: 2000, input: Gen.int(), Gen.int()) { check($0, $1) }
        await propertyCheck(count: 500, input: Gen.int(), Gen.int(in: -3...3)) { check($0, $1) }
    }

    @Test("Retry-After: every form RFC 9110 allows is read, every other form is nil, all clamped")
    func retryAfter() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(RetryAfter.seconds("7", now: now, maximum: 3600) == 7)
        #expect(RetryAfter.seconds(" 7 ", now: now, maximum: 3600) == 7)
        #expect(RetryAfter.seconds("0", now: now, maximum: 3600) == 0)
        #expect(RetryAfter.seconds("123456789012345678901234567890", now: now, maximum: 3600) == 3600)
        #expect(RetryAfter.seconds("99999999999999999999999999999999999999999999", now: now, maximum: 60) == 60)
        #expect(RetryAfter.seconds("Fri, 15 Jan 2027 08:00:42 GMT", now: Date(timeIntervalSince1970: 1_800_000_000), maximum: 3600) == 42)
        #expect(RetryAfter.seconds("Friday, 15-Jan-27 08:00:42 GMT", now: Date(timeIntervalSince1970: 1_800_000_000), maximum: 3600) == 42)
        #expect(RetryAfter.seconds("Fri Jan 15 08:00:42 2027", now: Date(timeIntervalSince1970: 1_800_000_000), maximum: 3600) == 42)
        #expect(RetryAfter.seconds("Sun, 06 Nov 1994 08:49:37 GMT", now: now, maximum: 3600) == 0)
        #expect(RetryAfter.seconds("Fri, 31 Dec 9999 23:59:59 GMT", now: now, maximum: 3600) == 3600)
        for hostile in ["inf", "nan", "1e999", "-5", "garbage", "1.5", "0x10", "", "Fri, 32 Dec 2027 00:00:00 GMT", "Fri, 15 Jan 2027 25:00:00 GMT"] {
            #expect(RetryAfter.seconds(hostile, now: now, maximum: 3600) == nil, "\(hostile)")
        }
        #expect(HTTPDate.daysFromCivil(year: 1970, month: 1, day: 1) == 0 && HTTPDate.daysFromCivil(year: 2000, month: 3, day: 1) == 11_017)
    }
}

@Suite("Endpoint rules, field patterns, rate limits")
struct GuardRuleTests {
    @Test("an endpoint rule matches its method and path, with * inside one segment; unplain paths match nothing")
    func endpointRules() throws {
        let rules = try ["POST /v1/chat/completions", "GET /v1/models/*", "POST /v1beta/models/*:generateContent"].map { try #require(EndpointRule($0)) }
        #expect(EndpointRule.allows(rules, method: "POST", pathAndQuery: "/v1/chat/completions?x=1"))
        #expect(EndpointRule.allows(rules, method: "post", pathAndQuery: "/v1/chat/completions"))
        #expect(EndpointRule.allows(rules, method: "GET", pathAndQuery: "/v1/models/gpt-4o"))
        #expect(EndpointRule.allows(rules, method: "POST", pathAndQuery: "/v1beta/models/gemini-2.5-flash:generateContent?alt=sse"))
        for (method, path) in [("GET", "/v1/chat/completions"), ("DELETE", "/v1/models/ft:x"), ("GET", "/v1/models"), ("GET", "/v1/models/a/b"),
                               ("POST", "/v1beta/models/x:batchGenerateContent"), ("POST", "/v1/chat/completions/../../files"),
                               ("POST", "/v1/chat/completions/%2e%2e/files"), ("POST", "//v1/chat/completions"), ("POST", "/v1/chat/completions;x=1"),
                               ("POST", "/v1/./chat/completions"), ("POST", "v1/chat/completions"), ("POST", "/v1\\chat/completions"),
                               ("POST", "/v1beta/models/%3AgenerateContent")] {
            #expect(!EndpointRule.allows(rules, method: method, pathAndQuery: path), "\(method) \(path)")
        }
        let all = try #require(EndpointRule("*"))
        #expect(EndpointRule.allows([all], method: "DELETE", pathAndQuery: "/anything/at/all"))
        #expect(!EndpointRule.allows([all], method: "GET", pathAndQuery: "/v1/../admin") && !EndpointRule.allows([all], method: "GET", pathAndQuery: "/%2e%2e/admin"))
        for bad in ["", "GET", "FETCH /x", "GET x", "GET /a /b"] { #expect(EndpointRule(bad) == nil, "\(bad)") }
    }

    @Test("a field pattern admits only its class and length: a region cannot carry a host, a path or a line")
    func fieldPatterns() throws {
        let region = try #require(FieldPattern("[a-z0-9-]{1,40}"))
        #expect(region.matches("westeurope") && region.matches("us-east-2"))
        for bad in ["", "evil.com#", "127.0.0.1", "a/b", "a@b", "West", "a b", "a\nb", String(repeating: "a", count: 41), "ü"] {
            #expect(!region.matches(bad), "\(bad)")
        }
        for bad in ["a-z", "[a-z]", "[a-z]{0}", "[]{1,2}", "[a-z]{5,1}", "[a-z]{1,99999}", "[z-a]{1,2}"] { #expect(FieldPattern(bad) == nil, "\(bad)") }
    }

    @Test("a rate limiter allows its limit per window, then answers with a wait, per subject")
    func rateLimiter() {
        let limiter = RateLimiter(.init(limit: 3, per: .seconds(60)))
        let start = ContinuousClock.now
        #expect((0..<3).allSatisfy { _ in limiter.acquire("a", now: start) == nil })
        let wait = limiter.acquire("a", now: start)
        #expect(wait != nil && (1...60).contains(wait ?? 0))
        #expect(limiter.acquire("b", now: start) == nil)
        #expect(limiter.acquire("a", now: start + .seconds(121)) == nil)
    }
}
