import Testing
@testable import KeywardenCore

/// The byte walk of ``EndpointRule/plainPath(_:)``, the upper-case method check and the chat completions `model` default
/// parsed once, each pinned to the code they replaced (kept here as the oracle) over a generated corpus.
@Suite("Endpoint rules: fast paths agree with the character walk")
struct EndpointRuleFastPathTests {
    /// The pieces paths are made of: the bytes the judgement looks for, ASCII words, and characters that are not ASCII
    /// (a combining mark that joins the `/` or `?` before it, a prepended mark, CR LF, the Kelvin sign, an emoji).
    static let pieces = [
        "/", "/", "/", "?", ".", "..", "...", "%", "%2e", "\\", ";", "#", "&", "=", "*", ":", " ", "a", "v1", "chat", "completions",
        "models", "gemini-2.5-flash:generateContent", "messages", "é", "e\u{301}", "\u{301}", "\r\n", "\r", "\n", "\t", "\u{600}",
        "\u{212A}", "😀", "\u{0}", "\u{7F}",
    ]

    /// Deterministic strings: a `/` first most of the time, then up to nine pieces.
    static func corpus(count: Int = 20_000) -> [String] {
        var random = SplitMix(seed: 0x5EED)
        var out = ["", "/", "?", "/?", "/a?", "/a?\u{301}", "/a/?\u{301}x", "/v1/chat/completions", "/v1/chat/completions?x=1",
                   "/v1/./x", "/v1/../x", "/v1/.../x", "/v1//x", "//", "/./", "/..", "/...", "/.", "/a.", "/.a", "/a\r\n/b", "/\u{301}v1"]
        for _ in 0..<count {
            var text = random.next(below: 8) == 0 ? "" : "/"
            for _ in 0..<random.next(below: 10) { text += pieces[random.next(below: pieces.count)] }
            out.append(text)
        }
        return out
    }

    /// The character walk as it was, before the byte fast path.
    static func referencePlainPath(_ pathAndQuery: String) -> Substring? {
        let path = pathAndQuery.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path.hasPrefix("/"), !path.contains(where: { $0 == "%" || $0 == "\\" || $0 == ";" || $0 == "#" }) else { return nil }
        for segment in path.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            if segment.isEmpty || segment == "." || segment == ".." { return nil }
        }
        return path
    }

    /// ``EndpointRule/allows(method:path:)`` as it was, upper-casing every method.
    static func referenceAllows(_ rule: EndpointRule, method: String, path: Substring) -> Bool {
        guard let segments = rule.segments else { return true }
        guard method.uppercased() == rule.method else { return false }
        let actual = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        guard actual.count == segments.count else { return false }
        return zip(segments, actual).allSatisfy { EndpointRule.matches($1, pieces: $0) }
    }

    /// ``ProviderDefinition/callDefaults(method:pathAndQuery:)`` as it was, parsing the chat completions rule per call.
    static func referenceCallDefaults(_ provider: ProviderDefinition, method: String, pathAndQuery: String) -> [CallDefault] {
        guard !provider.callDefaults.isEmpty || provider.chatCompletions != nil, let path = referencePlainPath(pathAndQuery) else { return [] }
        var matching = provider.callDefaults.filter { referenceAllows($0.endpoint, method: method, path: path) }
        if let endpoint = provider.chatCompletions, method == "POST", path == endpoint.path[...],
           let rule = EndpointRule("POST \(endpoint.path)") {
            matching.append(CallDefault(endpoint: rule, target: .member("model"), source: .defaultModel))
        }
        return matching
    }

    @Test("plainPath: the same path, or none, for every string of the corpus (ASCII or not)")
    func plainPathAgrees() {
        var judgedOnBytes = 0
        for text in Self.corpus() {
            let expected = Self.referencePlainPath(text)
            let actual = EndpointRule.plainPath(text)
            #expect(actual.map(String.init) == expected.map(String.init), "\(Array(text.unicodeScalars))")
            #expect(actual?.startIndex == expected?.startIndex && actual?.endIndex == expected?.endIndex, "\(Array(text.unicodeScalars))")
            if ASCIIPath.judge(text) != .notASCII { judgedOnBytes += 1 }
        }
        // Both walks are exercised.
        #expect(judgedOnBytes > 1_000)
    }

    @Test("a rule allows the same calls, whatever the method's case or script")
    func allowsAgrees() throws {
        let rules = try ["*", "POST /v1/chat/completions", "GET /v1/models/*", "POST /v1beta/models/*:generateContent", "DELETE /a/*/b*c*d"]
            .map { try #require(EndpointRule($0)) }
        let methods = ["POST", "post", "Post", "GET", "get", "DELETE", "", "P0ST", "POST ", "ＰＯＳＴ", "po\u{17F}t", "ß", "\u{131}", "GEt"]
        var paths = Self.corpus(count: 3_000).compactMap(Self.referencePlainPath)
        paths += ["/v1/chat/completions", "/v1/models/gpt-4o", "/v1beta/models/x:generateContent", "/a/x/bXcYd", "/a/x/bcd"].map { $0[...] }
        for rule in rules {
            for method in methods {
                for path in paths {
                    #expect(rule.allows(method: method, path: path) == Self.referenceAllows(rule, method: method, path: path), "\(rule) \(method) \(path)")
                }
            }
        }
    }

    @Test("callDefaults: the same defaults for every catalog provider, method and path; the model default parsed once")
    func callDefaultsAgree() throws {
        let catalog = try ProviderCatalog.load()
        var paths = Self.corpus(count: 2_000)
        for provider in catalog.providers {
            if let chat = provider.chatCompletions { paths += [chat.path, chat.path + "?x=1", chat.path + "/", chat.path.uppercased()] }
            for rule in provider.callDefaults { paths += [String(rule.endpoint.description.drop { $0 != " " }.dropFirst())] }
        }
        var matched = 0
        for provider in catalog.providers {
            if let chat = provider.chatCompletions {
                #expect(chat.modelDefault == EndpointRule("POST \(chat.path)").map { CallDefault(endpoint: $0, target: .member("model"), source: .defaultModel) })
            }
            for method in ["POST", "post", "GET", "PUT"] {
                for path in paths {
                    let actual = provider.callDefaults(method: method, pathAndQuery: path)
                    #expect(actual == Self.referenceCallDefaults(provider, method: method, pathAndQuery: path), "\(provider.id) \(method) \(path)")
                    matched += actual.isEmpty ? 0 : 1
                }
            }
        }
        #expect(matched > 10)
        // A chat completions path that is no rule gives no default, as before.
        #expect(ChatCompletionsEndpoint(path: "v1/chat").modelDefault == nil && ChatCompletionsEndpoint(path: "/a b").modelDefault == nil)
    }
}

/// A small deterministic generator (SplitMix64), so a failing corpus is the same on every run.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(below bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
