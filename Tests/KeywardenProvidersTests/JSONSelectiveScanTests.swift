import Foundation
import KeywardenCore
import Testing
@testable import KeywardenProviders

/// Reading only the members a caller needs (``JSONScan/members(_:_:only:)``), the usage reader and request facts built on
/// it, and their ASCII byte searches, pinned to the code they replaced over a generated corpus.
@Suite("JSON read for named members only: same answers as the full read")
struct JSONSelectiveScanTests {
    /// Member names: wanted ones, others, escaped and non-ASCII spellings (`"mod\u0065l"`, a Kelvin sign `String`
    /// equates with `K`, é composed and decomposed), and more than enough to pass the list of seen names.
    static let names = [
        "model", "usage", "message", "response", "usageMetadata", "modelVersion", "model_id", "stream", "stream_options", "text", "input",
        "prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "tokens", "include_usage", "promptTokenCount",
        "candidatesTokenCount", "thoughtsTokenCount", "cache_read_input_tokens", "cache_creation_input_tokens", "id", "object", "choices",
        #"mod\u0065l"#, #"usag\u0065"#, "\u{212A}ey", "Key", "caf\u{E9}", "cafe\u{301}", #"caf\u00e9"#, "mod\\\"el", "", " model", "Model",
    ] + (0..<24).map { "n\($0)" }

    static let values = [
        "1", "-7", "12.0", "1e3", "\"gpt-5.4-mini\"", "\"h\u{E9}llo \u{1F600}\"", "\"a\u{301}\"", "true", "false", "null", "[1,{\"a\":2}]",
        "{}", #"{"prompt_tokens":12,"completion_tokens":4}"#, #"{"input_tokens":25,"output_tokens":1,"cache_read_input_tokens":9}"#,
        #"{"usage":{"input_tokens":3},"model":"claude"}"#, #"{"usage":{"prompt_tokens":2,"prompt_tokens":3}}"#, #"{"tokens":{"input_tokens":5}}"#,
        #"{"include_usage":true}"#, #"{"promptTokenCount":7,"candidatesTokenCount":3,"thoughtsTokenCount":2}"#, #"{"x":1,"x":2}"#,
        #"{"mod\u0065l":"escaped"}"#, "99999999999999999999",
    ]

    /// Deterministic objects of 0 to 40 members, some with a name given twice, some broken.
    static func corpus(count: Int = 6_000) -> [[UInt8]] {
        var random = SeededGenerator(state: 0x15_0B)
        var out: [[UInt8]] = (["{}", " { } ", "", "[]", #"{"model":"a","model":"b"}"#, #"{"model":"a","mod\u0065l":"b"}"#,
                              "{\"\u{212A}ey\":1,\"Key\":2}", "{\"caf\u{E9}\":1,\"cafe\u{301}\":2}", #"{"model":"a",}"#] as [String]).map { Array($0.utf8) }
        for _ in 0..<count {
            let size = random.next(below: 4) == 0 ? random.next(below: 41) : random.next(below: 9)
            var members = (0..<size).map { _ in "\"\(names[random.next(below: names.count)])\":\(values[random.next(below: values.count)])" }
            if random.next(below: 5) == 0, let first = members.first { members.append(first) }
            var text = "{" + members.joined(separator: random.next(below: 2) == 0 ? "," : " ,\n ") + "}"
            if random.next(below: 20) == 0 { text.removeLast() }
            out.append(Array(text.utf8))
        }
        return out
    }

    static let nameLists = [UsageReader.answerNames, AnthropicDialect.messageNames, AnthropicDialect.usageNames, OpenAIDialect.usageNames, GeminiDialect.metadataNames,
                            OpenAIDialect.tokensNames, RequestFacts.requestNames, RequestFacts.streamOptionsNames, JSONNames("Key", "n17", "model")]

    @Test("the named members, and nil exactly when the full read is nil (invalid, or any name given twice)")
    func selectiveAgreesWithFull() {
        var plainRead = 0
        for bytes in Self.corpus() {
            let full = JSONScan.members(bytes, 0..<bytes.count)
            for names in Self.nameLists {
                let expected = full?.filter { names.names.contains($0.key) }
                #expect(JSONScan.members(bytes, 0..<bytes.count, only: names) == expected, "\(String(decoding: bytes, as: UTF8.self))")
            }
            if full != nil { plainRead += 1 }
        }
        #expect(plainRead > 1_000)
    }

    /// The usage an answer tells, read as before with every member of every object.
    static func referenceUsage(_ bytes: [UInt8]) -> (UsageCounts, String?) {
        var counts = UsageCounts()
        var model: String?
        func raise(_ field: WritableKeyPath<UsageCounts, Int?>, _ value: Int?) {
            guard let value, (0...UsageTally.maximumCount).contains(value) else { return }
            counts[keyPath: field] = max(counts[keyPath: field] ?? 0, value)
        }
        func numbers(_ usage: JSONObject?) {
            guard let usage else { return }
            let cached = [usage.int("cache_creation_input_tokens"), usage.int("cache_read_input_tokens")]
                .compactMap { $0 }.filter { (0...UsageTally.maximumCount).contains($0) }.reduce(0) { $0.saturatingAdding($1) }
            if let input = usage.int("prompt_tokens") ?? usage.int("input_tokens"), (0...UsageTally.maximumCount).contains(input) {
                raise(\.inputTokens, min(input.saturatingAdding(cached), UsageTally.maximumCount))
            } else if cached > 0 {
                raise(\.inputTokens, min(cached, UsageTally.maximumCount))
            }
            raise(\.outputTokens, usage.int("completion_tokens") ?? usage.int("output_tokens"))
            let tokens = usage.object("tokens")
            raise(\.inputTokens, tokens?.int("input_tokens"))
            raise(\.outputTokens, tokens?.int("output_tokens"))
        }
        guard let answer = JSONObject(bytes) else { return (counts, model) }
        if let name = answer.string("model"), !name.isEmpty { model = name }
        numbers(answer.object("usage"))
        if let message = answer.object("message") {
            numbers(message.object("usage"))
            if let name = message.string("model") { model = name }
        }
        numbers(answer.object("response")?.object("usage"))
        if let metadata = answer.object("usageMetadata") {
            raise(\.inputTokens, metadata.int("promptTokenCount"))
            let candidates = metadata.int("candidatesTokenCount")
            let thoughts = metadata.int("thoughtsTokenCount")
            if candidates != nil || thoughts != nil { raise(\.outputTokens, (candidates ?? 0).saturatingAdding(thoughts ?? 0)) }
        }
        if let version = answer.string("modelVersion") { model = version }
        return (counts, model)
    }

    /// Request facts as they were read, with every member and `String` searches of the path.
    static func referenceFacts(body: [UInt8]?, path: String) -> RequestFacts {
        var facts = RequestFacts()
        if let range = path.range(of: "/models/") {
            let rest = path[range.upperBound...]
            let end = rest.firstIndex { $0 == ":" || $0 == "?" || $0 == "/" } ?? rest.endIndex
            if end > rest.startIndex { facts.model = String(rest[..<end]) }
            if path.contains(":streamGenerateContent") { facts.stream = true }
        }
        guard let body, let request = JSONObject.body(body) else { return facts }
        facts.isJSONObject = true
        // Since the money-path review: a model the path names (Gemini's) is not changed by the body's.
        if facts.model == nil, let model = request.string("model") ?? request.string("model_id") { facts.model = model }
        if let stream = request.bool("stream") { facts.stream = stream }
        facts.streamIncludesUsage = request.object("stream_options")?.bool("include_usage") == true
        if let text = request.string("text") ?? request.string("input") { facts.characters = text.unicodeScalars.count }
        return facts
    }

    @Test("an answer's usage and model, whole or as stream events, are read as before")
    func usageAgrees() {
        for bytes in Self.corpus(count: 3_000) {
            let (counts, model) = Self.referenceUsage(bytes)
            var whole = UsageReader(contentType: "application/json")
            whole.feed(bytes)
            whole.finish()
            #expect(whole.counts == counts && whole.model == model, "\(String(decoding: bytes, as: UTF8.self))")
            // As one event of a stream: a line that mentions no usage is not read.
            guard !bytes.contains(UInt8(ascii: "\n")) else { continue }
            let line = Array("data:".utf8) + bytes
            var stream = UsageReader(contentType: "text/event-stream")
            stream.feed(line + [0x0A])
            stream.finish()
            let (eventCounts, eventModel) = UsageReader.usageMention(in: line) == .none ? (UsageCounts(), nil) : Self.referenceUsage(bytes)
            #expect(stream.counts == eventCounts && stream.model == eventModel, "\(String(decoding: bytes, as: UTF8.self))")
        }
    }

    @Test("request facts are read as before, for bodies of the corpus and paths ASCII or not")
    func factsAgree() {
        let paths = ["/v1/chat/completions", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "/v1beta/models/gemini-2.5-flash:generateContent",
                     "/v1/models/", "/v1/models/x/y", "/v1/models/?x", "/models/m", "/v1/Models/m", "/v1/models/caf\u{E9}:streamGenerateContent",
                     "/v1/models/\u{301}m", "/v1/models\u{301}/m", "/v1/models/m:streamGenerateContent\u{301}", "/v1/models/m\u{600}:x",
                     "/v1/models/m:streamgeneratecontent", ":streamGenerateContent/models/m", "", "/", "/v1/models/m\r\n:x"]
        for (index, body) in Self.corpus(count: 3_000).enumerated() {
            let path = paths[index % paths.count]
            #expect(RequestFacts.read(body: body, path: path) == Self.referenceFacts(body: body, path: path), "\(path) \(String(decoding: body, as: UTF8.self))")
        }
        for path in paths { #expect(RequestFacts.read(body: nil, path: path) == Self.referenceFacts(body: nil, path: path), "\(path)") }
    }

    @Test("an event stream is recognised by its content type as before, in any case or script")
    func eventStreamContentType() {
        for type in ["text/event-stream", "TEXT/EVENT-STREAM", "Text/Event-Stream; charset=utf-8", "application/json", "text/event-stream\u{301}",
                     "text/event-strea", "x text/event-stream", "text/event\u{2011}stream", "te\u{212A}t/event-stream", "", "\u{130}text/event-stream",
                     "text/event-stream\r\n", "text/plain, text/event-stream"] {
            #expect(UsageReader(contentType: type).isEventStream == type.lowercased().contains("text/event-stream"), "\(type)")
        }
        #expect(!UsageReader(contentType: nil).isEventStream)
    }
}

extension SeededGenerator {
    /// A number in `0..<bound`.
    mutating func next(below bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
