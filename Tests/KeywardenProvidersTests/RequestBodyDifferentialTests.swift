import Foundation
import KeywardenTestSupport
import Testing
@testable import KeywardenProviders

/// The meter and a reference reader fed the same generated bodies: Python's `json` (as the vendors' Python SDKs and
/// servers read JSON: the last of a repeated member wins), made strict by a pairs hook. Every body the check lets
/// through unread-proof must read the same to both — the model, the stream switches, the output limit — so a body is
/// only ever forwarded, for a call the platform pays for, when Keywarden read it as the vendor will.
@Suite("Request bodies against a reference JSON reader")
struct RequestBodyDifferentialTests {
    /// A JSON string literal of random text: plain, escaped, non-ASCII, surrogate pairs, now and then a lone surrogate.
    static func string(_ random: inout SeededGenerator) -> String {
        var text = "\""
        for _ in 0..<random.next(below: 8) {
            text += random.pick(["a", "Z", " ", "é", "日", "\\n", "\\\"", "\\\\", "\\u0041", "\\u00e9", "\\ud83d\\ude00", "😀", "\\/",
                                 random.chance(10) ? "\\ud800" : "x", random.chance(5) ? "\\udfff" : "y"])
        }
        return text + "\""
    }

    static func number(_ random: inout SeededGenerator) -> String {
        random.pick(["0", "1", "7", "-3", "4096", "12.0", "1e3", "2.5", "1E2", "100000", "9007199254740993", "1e999", "-1e400", "0.5e1"])
    }

    /// A member name, now and then spelled so that some parsers take it for another.
    static func name(_ base: String, _ random: inout SeededGenerator) -> String {
        guard random.chance(15) else { return base }
        switch random.next(below: 4) {
        case 0: return base.uppercased()
        case 1: return base.replacingOccurrences(of: "s", with: "\u{17F}")
        case 2: return base.prefix(1) + "\\u00" + String(base.utf8.dropFirst().first.map { String($0, radix: 16) } ?? "61") + base.dropFirst(2)
        default: return base.capitalized
        }
    }

    static func value(_ random: inout SeededGenerator, depth: Int) -> String {
        switch random.next(below: depth > 3 ? 4 : 6) {
        case 0: return string(&random)
        case 1: return number(&random)
        case 2: return random.pick(["true", "false", "null"])
        case 3: return string(&random)
        case 4: return "[" + (0..<random.next(below: 3)).map { _ in value(&random, depth: depth + 1) }.joined(separator: ",") + "]"
        default: return "{" + (0..<random.next(below: 3)).map { _ in "\"k\(random.next(below: 3))\":" + value(&random, depth: depth + 1) }.joined(separator: ",") + "}"
        }
    }

    /// A request body: the members the meter reads (model, stream, stream_options, output limits, n), messages, noise;
    /// with now and then a member repeated, a folded name, a hazardous number or string.
    static func body(_ random: inout SeededGenerator) -> [UInt8] {
        var members: [String] = []
        func add(_ base: String, _ value: String) { members.append("\"\(name(base, &random))\":\(value)") }
        if random.chance(90) { add("model", random.chance(85) ? string(&random) : number(&random)) }
        if random.chance(60) { add("stream", random.pick(["true", "false", "\"true\"", "1"])) }
        if random.chance(40) { add("stream_options", "{\"\(name("include_usage", &random))\":\(random.pick(["true", "false"]))" + (random.chance(10) ? ",\"include_usage\":true" : "") + "}") }
        for limit in ["max_tokens", "max_completion_tokens", "max_output_tokens"] where random.chance(30) { add(limit, number(&random)) }
        if random.chance(20) { add("generationConfig", "{\"maxOutputTokens\":\(number(&random))}") }
        if random.chance(10) { add("generationConfig", "{\"candidateCount\":\(random.pick(["1", "2", "4"])),\"maxOutputTokens\":\(number(&random))}") }
        if random.chance(20) { add("n", random.pick(["1", "2", "3"])) }
        add("messages", "[{\"role\":\"user\",\"content\":\(string(&random))}]")
        for _ in 0..<random.next(below: 3) { add("extra\(random.next(below: 4))", value(&random, depth: 1)) }
        if random.chance(20), let repeated = members.randomElement(using: &random) { members.append(repeated) }
        members.shuffle(using: &random)
        var text = "{" + members.joined(separator: random.pick([",", ", ", ",\n"])) + "}"
        if random.chance(5) { text = " \n" + text + "\n" }
        var bytes = Array(text.utf8)
        if random.chance(3) { bytes = [0xEF, 0xBB, 0xBF] + bytes }
        return bytes
    }

    /// Python's reading of each body: strict (a repeated or case-folded member, a non-finite number, a lone surrogate
    /// or anything it refuses makes it unreadable), and what it reads (the last of a repeated member winning).
    static let reference = #"""
import json, sys, base64, math

def fold(name):
    name = name.translate({0x17F: "s", 0x212A: "k", 0x212B: "\u00e5", 0x131: "i", 0x130: "i"})
    return "".join(c for c in name.lower() if c not in "_-")

class Unreadable(Exception):
    pass

METERED = {"model": str, "model_id": str, "stream": bool, "stream_options": dict, "max_tokens": int, "max_completion_tokens": int,
           "max_output_tokens": int, "generationConfig": dict, "generation_config": dict, "n": int, "text": str, "input": object}
GENERATION = {"maxOutputTokens": int, "max_output_tokens": int, "candidateCount": int, "candidate_count": int}
NESTED = {"stream_options": {"include_usage": bool}, "generationConfig": GENERATION, "generation_config": GENERATION}

class Obj(dict):
    pass

def strict_pairs(pairs):
    names = [key for key, _ in pairs]
    if len(set(names)) != len(names):
        raise Unreadable("duplicate")
    if any(any(ord(c) < 0x20 for c in key) for key in names):
        raise Unreadable("control")
    obj = Obj(pairs)
    obj.names = names
    return obj

def metered_context(obj, schema):
    folds = {}
    for key in schema:
        folds.setdefault(fold(key), []).append(key)
    seen = {}
    for key in obj.names:
        loose = fold(key)
        f = loose if loose in folds else key
        if f in seen:
            raise Unreadable("loose duplicate")
        if loose in folds and key not in folds[loose]:
            raise Unreadable("spelled otherwise")
        seen[f] = key
    if schema is METERED:
        for one, other in (("model", "model_id"), ("text", "input")):
            if one in obj and other in obj:
                raise Unreadable("aliases")
    for key, kind in schema.items():
        if key not in obj or obj[key] is None or kind is object:
            continue
        value = obj[key]
        if kind is int:
            if as_int(value) is None:
                raise Unreadable("type")
        elif kind is bool:
            if not isinstance(value, bool):
                raise Unreadable("type")
        elif not isinstance(value, kind):
            raise Unreadable("type")
        if key in NESTED and isinstance(value, dict):
            metered_context(value, NESTED[key])

def no_constant(text):
    raise Unreadable("constant")

def finite(text):
    value = float(text)
    if math.isinf(value):
        raise Unreadable("inf")
    return value

def has_lone_surrogate(value):
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    return False

def as_int(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2 ** 53:
        return int(value)
    return None

for line in sys.stdin:
    raw = base64.b64decode(line.strip())
    out = {}
    try:
        if raw.startswith(b"\xef\xbb\xbf"):
            raise Unreadable("bom")
        strict = json.loads(raw.decode("utf-8"), object_pairs_hook=strict_pairs, parse_constant=no_constant, parse_float=finite)
        if not isinstance(strict, dict) or has_lone_surrogate(strict):
            raise Unreadable("shape")
        metered_context(strict, METERED)
        out["readable"] = True
    except (Unreadable, ValueError, RecursionError):
        out["readable"] = False
    try:
        body = json.loads(raw.decode("utf-8-sig"))
    except Exception:
        body = None
    if isinstance(body, dict):
        model = body.get("model") if isinstance(body.get("model"), str) else (body.get("model_id") if isinstance(body.get("model_id"), str) else None)
        out["model"] = model if model is None or not has_lone_surrogate(model) else "<lone>"
        out["stream"] = body.get("stream") if isinstance(body.get("stream"), bool) else None
        options = body.get("stream_options")
        out["include_usage"] = isinstance(options, dict) and options.get("include_usage") is True
        limits = [as_int(body.get(k)) for k in ("max_completion_tokens", "max_tokens", "max_output_tokens")]
        choices = [as_int(body.get("n"))]
        for name in ("generationConfig", "generation_config"):
            config = body.get(name)
            if isinstance(config, dict):
                limits += [as_int(config.get("maxOutputTokens")), as_int(config.get("max_output_tokens"))]
                choices += [as_int(config.get(k)) for k in ("candidateCount", "candidate_count")]
        limits = [v for v in limits if v is not None and v >= 0]
        choices = [v for v in choices if v is not None]
        n = max(choices) if choices else 1
        out["max_output"] = max(limits) * min(max(n, 1), 128) if limits else None
    print(json.dumps(out))
"""#

    @Test("every generated body the check passes reads the same to the meter and to the reference reader; those it refuses include every one the reference finds hazardous")
    func meterAgreesWithTheReference() throws {
        var random = SeededGenerator(state: 0x5EED_2026_1206)
        let bodies = (0..<1500).map { _ in Self.body(&random) }
        // Files, not pipes: the reference reads one and writes the other (no handlers, no threads of our own).
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kw-json-reference-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("reference.py"), input = directory.appendingPathComponent("bodies"),
            output = directory.appendingPathComponent("answers")
        try Self.reference.write(to: script, atomically: true, encoding: .utf8)
        try Data((bodies.map { Data($0).base64EncodedString() }.joined(separator: "\n") + "\n").utf8).write(to: input)
        let reference = try ChildProcess.run("/bin/sh", ["-c", "python3 \"$0\" < \"$1\" > \"$2\"", script.path, input.path, output.path])
        try #require(reference.status == 0, "\(reference.stderr)")
        let answer = try Data(contentsOf: output)
        let answers = String(decoding: answer, as: UTF8.self).split(separator: "\n").map {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] ?? [:]
        }
        try #require(answers.count == bodies.count)

        var passed = 0, refused = 0, disagreements: [String] = []
        for (body, reference) in zip(bodies, answers) {
            let readable = RequestBodyCheck.check(body) == .readable
            let referenceReadable = reference["readable"] as? Bool ?? false
            let shown = String(decoding: body, as: UTF8.self)
            guard readable else {
                refused += 1
                continue
            }
            passed += 1
            // What the check passes, the reference reads without a hazard…
            if !referenceReadable { disagreements.append("passed, but the reference finds it hazardous: \(shown)") }
            // …and the meter reads as the vendor will.
            let facts = RequestFacts.read(body: body, path: "/v1/chat/completions")
            if facts.model != (reference["model"] as? String) { disagreements.append("model \(facts.model ?? "nil") vs \(reference["model"] ?? "nil"): \(shown)") }
            let referenceStream = reference["stream"] as? Bool ?? false
            if facts.stream != referenceStream { disagreements.append("stream \(facts.stream) vs \(referenceStream): \(shown)") }
            if facts.streamIncludesUsage != (reference["include_usage"] as? Bool ?? false) { disagreements.append("include_usage: \(shown)") }
            let limit = RequestFacts.maxOutputTokens(body: body)
            if limit != (reference["max_output"] as? Int) { disagreements.append("output limit \(limit.map(String.init) ?? "nil") vs \(reference["max_output"] ?? "nil"): \(shown)") }
        }
        // Every body the reference finds hazardous is refused by the check (it may refuse more: it is the stricter).
        for (body, reference) in zip(bodies, answers) where !(reference["readable"] as? Bool ?? false) {
            if RequestBodyCheck.check(body) == .readable { disagreements.append("hazardous to the reference, passed: \(String(decoding: body, as: UTF8.self))") }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements, first: \(disagreements.prefix(5))")
        // The generator makes both kinds, in numbers.
        #expect(passed > 300 && refused > 300, "passed \(passed), refused \(refused)")
    }
}

private extension SeededGenerator {
    /// True `percent` times in a hundred.
    mutating func chance(_ percent: Int) -> Bool { next(below: 100) < percent }

    /// One of `items`, which is not empty.
    mutating func pick<T>(_ items: [T]) -> T { items[next(below: items.count)] }
}
