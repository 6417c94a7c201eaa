import Hummingbird
import NIOCore
import Prometheus

/// `GET /metrics`: Prometheus' text format. Series carry provider, source and status; never a
/// workspace, a key or a secret.
struct MetricsController {
    let registry: PrometheusCollectorRegistry

    func addRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("metrics") { _, _ -> Response in
            var bytes: [UInt8] = []
            registry.emit(into: &bytes)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }
}
