import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// The floors under the gateway's cost, for `Benchmarks/gateway-cost.sh`: what Hummingbird alone costs per call (a
/// fixed answer), and what Hummingbird with AsyncHTTPClient costs when they only pass a call through, streaming the
/// answer back as the gateway does, with nothing of Keywarden's own (no token, no resolution, no vault, no metering).
///
/// `keywarden-bench floors --upstream http://127.0.0.1:PORT [--port P]` prints `listening PORT`, then serves
/// `POST /hello` (a fixed chat completion) and `POST /pass/…` (forwarded to the upstream's `/…`).
func floorsServer(upstream: String, port: Int) async throws {
    var logger = Logger(label: "floors")
    logger.logLevel = .warning
    var configuration = HTTPClient.Configuration()
    configuration.decompression = .disabled
    configuration.redirectConfiguration = .disallow
    configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 512)
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    let completion = ByteBuffer(string: #"{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"gpt-5.4-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello, benchmark."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16}}"#)

    let router = Router()
    router.post("hello") { request, _ -> Response in
        _ = try await request.body.collect(upTo: 1 << 20)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: completion))
    }
    router.post("pass/**") { request, _ -> Response in
        let body = try await request.body.collect(upTo: 4 << 20)
        var outbound = HTTPClientRequest(url: upstream + String(request.uri.path.dropFirst("/pass".count)))
        outbound.method = .POST
        for field in request.headers where field.name == .contentType || field.name == .authorization || field.name.rawName.hasPrefix("X-Bench") {
            outbound.headers.add(name: field.name.rawName, value: field.value)
        }
        outbound.body = .bytes(body)
        let answer = try await client.execute(outbound, deadline: .now() + .seconds(60))
        var headers = HTTPFields()
        for (name, value) in answer.headers where name.lowercased() == "content-type" {
            if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
        }
        return Response(status: .init(code: Int(answer.status.code)), headers: headers, body: ResponseBody { writer in
            for try await chunk in answer.body { try await writer.write(chunk) }
            try await writer.finish(nil)
        })
    }
    let app = Application(
        router: router,
        configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "floors"),
        onServerRunning: { channel in
            FileHandle.standardOutput.write(Data("listening \(channel.localAddress?.port ?? 0)\n".utf8))
        },
        logger: logger
    )
    try await app.runService()
    try await client.shutdown()
}
