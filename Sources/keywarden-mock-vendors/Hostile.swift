import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle

/// Hostile answers, chosen by a marker in the key like the other behaviours (see the table in
/// `MockVendors.swift`), so tests can check that Keywarden survives a vendor that misbehaves on the wire.
/// Each error body uses OpenAI's error shape, whatever the family.
extension MockVendor {
    /// The `Retry-After` values of `hostileretry1` … `hostileretry12`, sent byte for byte.
    static let hostileRetryAfterValues = [
        "inf", "nan", "1e999", "-5", "123456789012345678901234567890", "Sun, 06 Nov 1994 08:49:37 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT", "garbage", "1.5", "0x10", " 7 ", "99999999999999999999999999999999999999999999",
    ]

    /// The size of a `hugeerror` body.
    static let hugeErrorSize = 4 * 1024 * 1024

    /// The hostile answer a key asks for, or `nil` for the ordinary behaviours.
    func hostileAnswer(key: String, ordinary: () async throws -> Response) async throws -> Response? {
        if let range = key.range(of: "hostileretry") {
            return hostileRetry(Int(key[range.upperBound...].prefix { $0.isNumber }))
        }
        if key.contains("hugeerror") { return hugeError(key: key, status: key.contains("hugeerror500") ? 500 : 401) }
        if key.contains("badutf8") { return badUTF8(key: key) }
        if let range = key.range(of: "echoheaders") {
            return echoInHeaders(key, status: Int(key[range.upperBound...].prefix { $0.isNumber }) ?? 200)
        }
        if key.contains("echostream") { return echoInStream(key) }
        if key.contains("widetext") { return wideText(key) }
        if key.contains("echokey") { return echoKey(key) }
        if key.contains("neverendingstream") { return neverEndingStream() }
        if key.contains("floodstream") { return floodStream() }
        if key.contains("neverendingheaders") {
            // Hummingbird always finishes a head: the endless one is the raw listener's (`--vendor hostile-raw`).
            return json(421, ["error": ["message": "neverendingheaders is served by the hostile-raw listener (--vendor hostile-raw), not by the \(name) mock", "type": "invalid_request_error", "code": "mock_usage"]])
        }
        if key.contains("gzipsurprise") {
            return try await gzipSurprise(try await ordinary(), compressed: !key.contains("gzipsurprisefake"))
        }
        return nil
    }

    /// A 429 whose `Retry-After` is the `index`-th (from 1) hostile value; a 400 naming the range otherwise.
    func hostileRetry(_ index: Int?) -> Response {
        let values = Self.hostileRetryAfterValues
        guard let index, values.indices.contains(index - 1) else {
            return json(400, ["error": ["message": "hostileretry<N> takes N from 1 to \(values.count)", "type": "invalid_request_error", "code": "mock_usage"]])
        }
        var answer = json(429, ["error": ["message": "Rate limit reached for requests.", "type": "requests", "param": NSNull(), "code": "rate_limit_exceeded"]])
        // Leniently, so the surrounding spaces of " 7 " go on the wire as they are.
        answer.headers.append(.init(name: .retryAfter, lenientValue: Array(values[index - 1].utf8)))
        return answer
    }

    /// Exactly 4 MiB of JSON error, the key echoed near the start and at the very end.
    func hugeError(key: String, status: Int) -> Response {
        let escaped = Self.jsonEscaped(key)
        let head = Array(#"{"error":{"message":"Incorrect API key provided: "#.utf8) + escaped + Array(". ".utf8)
        let tail = Array(" Incorrect API key provided: ".utf8) + escaped
            + Array((status == 401 ? #".","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"# : #".","type":"server_error","param":null,"code":"server_error"}}"#).utf8)
        let sentence = Array("This error message is deliberately huge. ".utf8)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(Self.hugeErrorSize)
        buffer.writeBytes(head)
        var remaining = Self.hugeErrorSize - head.count - tail.count
        while remaining > 0 {
            let part = sentence.prefix(remaining)
            buffer.writeBytes(part)
            remaining -= part.count
        }
        buffer.writeBytes(tail)
        return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }

    /// A 401 labelled UTF-8 JSON whose bytes are not UTF-8, the key among them: whole, and split by a stray byte.
    func badUTF8(key: String) -> Response {
        let bytes = Array(key.utf8)
        let half = bytes.count / 2
        var body = Array(#"{"error":{"message":"Incorrect API key "#.utf8) + [0xFF, 0xFE] + Array(" provided: ".utf8) + bytes
        body += [0x20, 0xC3, 0x28, 0x20, 0xC0, 0xAF, 0x20, 0xED, 0xA0, 0x80, 0x20]  // a bad continuation, an overlong "/", a surrogate
        body += bytes[..<half] + [0x80, 0xBF] + bytes[half...]  // the key cut by stray continuation bytes
        body += Array(#"","type":"invalid_request_error","code":"invalid_api_key"}}"#.utf8) + [0xF0, 0x9F, 0x98]  // a cut-off emoji
        return Response(status: .unauthorized, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// A 401 that echoes the key raw, JSON-escaped (as `JSONSerialization` writes it, `/` as `\/`),
    /// percent-encoded (every byte outside the unreserved characters) and base64-encoded. The raw copy is
    /// written into the JSON unescaped, so a key with `"` or `\` makes the body invalid JSON.
    func echoKey(_ key: String) -> Response {
        let escaped = String(decoding: Self.jsonEscaped(key), as: UTF8.self)
        let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
        let urlEncoded = key.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
        let base64 = Data(key.utf8).base64EncodedString()
        let body = #"{"error":{"message":"Incorrect API key provided: \#(escaped). Sent as \#(urlEncoded) (URL), \#(base64) (base64).","#
            + #""type":"invalid_request_error","code":"invalid_api_key","raw":"\#(key)","json":"\#(escaped)","url":"\#(urlEncoded)","base64":"\#(base64)"}}"#
        return Response(status: .unauthorized, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// An answer with status `status` that echoes the key in its headers (raw in `X-Debug-Key`, percent-encoded in a
    /// `Location` query, base64 in `X-Key-Base64`, upper-case in `X-Key-Upper`, a name that is the key in base64url)
    /// and in its body: a chat completion whose content has the key with every other character JSON-escaped (a 2xx), or
    /// an OpenAI error naming it.
    func echoInHeaders(_ key: String, status: Int) -> Response {
        let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
        let base64URL = Data(key.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        var headers: HTTPFields = [.contentType: "application/json"]
        headers.append(.init(name: HTTPField.Name("X-Debug-Key")!, value: key))
        headers.append(.init(name: .location, value: "https://vendor.example/callback?key=\(key.addingPercentEncoding(withAllowedCharacters: unreserved) ?? "")"))
        headers.append(.init(name: HTTPField.Name("X-Key-Base64")!, value: Data(key.utf8).base64EncodedString()))
        headers.append(.init(name: HTTPField.Name("X-Key-Upper")!, value: key.uppercased()))
        if let name = HTTPField.Name("X-Echo-\(base64URL)") { headers.append(.init(name: name, value: "1")) }
        // A name that is the key's first characters (those a name may hold) in alternating case.
        let alternating = String(key.prefix { $0.isLetter || $0.isNumber || $0 == "-" }.enumerated().map { $0.offset % 2 == 0 ? Character($0.element.uppercased()) : Character($0.element.lowercased()) })
        if let name = HTTPField.Name("X-\(alternating)") { headers.append(.init(name: name, value: "1")) }
        let mixed = Self.halfEscaped(key)
        let body: String
        if (200..<300).contains(status) {
            body = #"{"id":"chatcmpl-echo","object":"chat.completion","created":1763800000,"model":"\#(String(decoding: Self.jsonEscaped(key), as: UTF8.self))","choices":[{"index":0,"message":{"role":"assistant","content":"Your key is \#(mixed)."},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#
        } else {
            body = #"{"error":{"message":"Key \#(mixed) was sent.","type":"invalid_request_error","param":null,"code":"echo"}}"#
        }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// A 200 event stream whose third event's content is the key, half JSON-escaped, its bytes written in two parts
    /// 50 ms apart, cut in the middle of the key (so the gateway sees the key split across two chunks).
    func echoInStream(_ key: String) -> Response {
        let head = #"data: {"id":"chatcmpl-echo","object":"chat.completion.chunk","created":1763800000,"model":"gpt-echo","choices":[{"index":0,"delta":{"content":"Your key is "#
        let mixed = Array(Self.halfEscaped(key).utf8)
        let tail = #""},"finish_reason":null}]}"# + "\n\n"
        let first = #"data: {"id":"chatcmpl-echo","object":"chat.completion.chunk","created":1763800000,"model":"gpt-echo","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"# + "\n\n"
        let last = #"data: {"id":"chatcmpl-echo","object":"chat.completion.chunk","created":1763800000,"model":"gpt-echo","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"# + "\n\ndata: [DONE]\n\n"
        return Response(status: .ok, headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache"], body: ResponseBody { writer in
            try await writer.write(ByteBuffer(string: first))
            try await writer.write(ByteBuffer(bytes: Array(head.utf8) + mixed[..<(mixed.count / 2)]))
            try await Task.sleep(for: .milliseconds(50))
            try await writer.write(ByteBuffer(bytes: Array(mixed[(mixed.count / 2)...]) + Array(tail.utf8)))
            try await Task.sleep(for: .milliseconds(20))
            try await writer.write(ByteBuffer(string: last))
            try await writer.finish(nil)
        })
    }

    /// A 200 chat completion in UTF-16LE (no byte-order mark, no charset) whose content is the key: a client that detects
    /// the encoding (Python's `json.loads` on bytes) reads it; a byte scan for the key does not.
    func wideText(_ key: String) -> Response {
        let text = #"{"id":"chatcmpl-wide","object":"chat.completion","created":1763800000,"model":"gpt-echo","choices":[{"index":0,"message":{"role":"assistant","content":"\#(String(decoding: Self.jsonEscaped(key), as: UTF8.self))"},"finish_reason":"stop"}]}"#
        let bytes = text.utf16.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// The key inside a JSON string with every other character written as a `\u` escape (the rest as `JSONSerialization` writes them).
    static func halfEscaped(_ text: String) -> String {
        var result = ""
        for (index, character) in text.enumerated() {
            if index % 2 == 0 {
                result += String(character).utf16.map { String(format: "\\u%04x", $0) }.joined()
            } else {
                result += String(decoding: jsonEscaped(String(character)), as: UTF8.self)
            }
        }
        return result
    }

    /// A 200 event stream that never ends: one OpenAI-shaped chunk every 100 ms until the client goes away
    /// (or the mock shuts down).
    func neverEndingStream() -> Response {
        Response(status: .ok, headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache"], body: ResponseBody { writer in
            var index = 0
            while !Task.isCancelled, !Task.isShuttingDownGracefully {
                let event = chunk("chatcmpl-neverending", "mock-neverending", delta: ["content": "tick \(index) "], finish: nil)
                try await writer.write(ByteBuffer(string: "data: \(serialize(event))\n\n"))
                index += 1
                try await Task.sleep(for: .milliseconds(100))
            }
            try await writer.finish(nil)
        })
    }

    /// A 200 event stream that never ends and is not paced: OpenAI-shaped chunks of about 16 KiB each, written as fast as
    /// the caller takes them (the writer waits while its connection is full), until it goes away or the mock shuts down.
    func floodStream() -> Response {
        let event = chunk("chatcmpl-flood", "mock-flood", delta: ["content": String(repeating: "flood ", count: 2_730)], finish: nil)
        let part = ByteBuffer(string: "data: \(serialize(event))\n\n")
        return Response(status: .ok, headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache"], body: ResponseBody { writer in
            while !Task.isCancelled, !Task.isShuttingDownGracefully {
                try await writer.write(part)
            }
            try await writer.finish(nil)
        })
    }

    /// The ordinary answer with `Content-Encoding: gzip` the client did not ask for: really gzip (Huffman-coded,
    /// so a key in it is not visible as is), or only labelled so (`gzipsurprisefake`).
    func gzipSurprise(_ answer: Response, compressed: Bool) async throws -> Response {
        let collected = CollectedBody()
        try await answer.body.write(CollectingWriter(collected: collected))
        let plain = Array(collected.buffer.readableBytesView)
        var headers = answer.headers
        headers[.contentLength] = nil
        headers[.contentEncoding] = "gzip"
        return Response(status: answer.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: compressed ? Gzip.compressed(plain) : plain)))
    }

    /// The text inside a JSON string, as `JSONSerialization` writes it.
    static func jsonEscaped(_ text: String) -> [UInt8] {
        guard let data = try? JSONSerialization.data(withJSONObject: [text]) else { return [] }
        return Array(data.dropFirst(2).dropLast(2))  // ["…"]
    }
}

/// A response body read into memory.
final class CollectedBody: @unchecked Sendable {
    var buffer = ByteBuffer()
}

struct CollectingWriter: ResponseBodyWriter {
    let collected: CollectedBody

    mutating func write(_ buffer: ByteBuffer) async throws {
        collected.buffer.writeImmutableBuffer(buffer)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

/// gzip (RFC 1952) with one fixed-Huffman deflate block of literals (RFC 1951 §3.2.6): no LZ77 matching,
/// so it hardly shrinks, but every byte is Huffman-coded, so the plain text (a key in it) cannot be seen in
/// the body. Any gzip reader accepts it; no zlib needed.
enum Gzip {
    static func compressed(_ data: [UInt8]) -> [UInt8] {
        var bits = BitWriter()
        bits.write(1, count: 1)  // BFINAL
        bits.write(1, count: 2)  // BTYPE 01: fixed Huffman codes
        for byte in data {
            if byte < 144 { bits.writeCode(0x30 + UInt32(byte), length: 8) } else { bits.writeCode(0x190 + UInt32(byte) - 144, length: 9) }
        }
        bits.writeCode(0, length: 7)  // end of block
        let header: [UInt8] = [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xFF]  // magic, deflate, no flags, no mtime, unknown OS
        return header + bits.bytes + littleEndian(crc32(data)) + littleEndian(UInt32(truncatingIfNeeded: data.count))
    }

    /// Deflate's bit order: fields least significant bit first, Huffman codes most significant bit first.
    struct BitWriter {
        private(set) var bytes: [UInt8] = []
        private var used = 8

        mutating func write(_ value: UInt32, count: Int) {
            for index in 0..<count {
                if used == 8 { bytes.append(0); used = 0 }
                bytes[bytes.count - 1] |= UInt8((value >> UInt32(index)) & 1) << UInt8(used)
                used += 1
            }
        }

        mutating func writeCode(_ code: UInt32, length: Int) {
            var reversed: UInt32 = 0
            for index in 0..<length { reversed |= ((code >> UInt32(index)) & 1) << UInt32(length - 1 - index) }
            write(reversed, count: length)
        }
    }

    static func littleEndian(_ value: UInt32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }

    static let crcTable: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    static func crc32(_ data: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return ~crc
    }
}
