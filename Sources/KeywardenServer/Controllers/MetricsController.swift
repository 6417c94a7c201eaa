import Hummingbird
import KeywardenCore
import KeywardenVault
import NIOCore
import Prometheus

/// `GET /metrics`: Prometheus' text format. Series carry provider, source and status; never a
/// workspace, a key or a secret. With `KEYWARDEN_METRICS_TOKEN`, only a scraper that presents it
/// (`Authorization: Bearer …`) is answered.
struct MetricsController {
    let registry: PrometheusCollectorRegistry
    let token: Secret?

    func addRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("metrics") { request, _ -> Response in
            if let token {
                guard let presented = AuthenticationMiddleware.bearerToken(request), Secret(presented) == token else {
                    throw KeywardenError(.unauthenticated, code: "unauthorized", message: "Send the metrics token as a bearer token.")
                }
            }
            var bytes: [UInt8] = []
            registry.emit(into: &bytes)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }
}
